"""VGMR against a tiny independent reference written from the spec's equations (§2.2, Eq. 2–R).

The reference below reads the refiner's weights but none of its code: it recomputes every step
with plain tensor algebra (``x @ W.T + b``), in eval mode (Dropout off), all modalities present.
"""

from __future__ import annotations

import pytest
import torch
from fusekit_vgmr import DIAGNOSTICS_KEY, ValueGatedModalityRefiner
from fusekit_vgmr.tokens import avg_max_pool
from torch.nn import functional as F

from fusekit import BuildSpec, FusionOutput

B, LATENT = 5, 6
THREE = {"text": (4, 5), "audio": (3,), "video": (3, 2, 2)}  # sequence, vector, feature map
TWO = {"text": (4, 5), "audio": (3,)}


def make_refiner(shapes, **params) -> ValueGatedModalityRefiner:
    torch.manual_seed(0)
    spec = BuildSpec(
        names=tuple(shapes),
        input_shapes=dict(shapes),
        feature_shapes=dict(shapes),
        n_outputs=2,
        task="classification",
    )
    refiner = ValueGatedModalityRefiner(**{"latent_dim": LATENT, **params})
    refiner.build(spec)
    return refiner.eval()


def make_features(shapes, seed=0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {m: torch.randn(B, *shape, generator=generator) for m, shape in shapes.items()}


def run(refiner, features):
    mask = torch.ones(B, len(features), dtype=torch.bool)
    output = FusionOutput(mask=mask)
    with torch.no_grad():
        refined = refiner(features, mask, output)
    return refined, output.diagnostics[DIAGNOSTICS_KEY]


# -- the reference ---------------------------------------------------------------------------
def affine(x, layer):
    return x @ layer.weight.T + layer.bias


def mlp(x, sequential):  # Linear -> GELU -> Linear (the refiner's default activation)
    return affine(F.gelu(affine(x, sequential[0])), sequential[2])


def as_tokens(x):  # (B, d) -> (B, 1, d); (B, T, d); (B, C, H, W) -> (B, H·W, C)
    if x.dim() == 2:
        return x[:, None, :]
    if x.dim() == 4:
        return x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
    return x


def layer_norm(x, norm):  # LayerNorm over the last axis, biased variance
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + norm.eps) * norm.weight + norm.bias


def reference(refiner, features, alpha, beta):
    """X̃_m, G_m, G̃_m per modality from Eq. 2–13 and (C), (R); everything present."""
    names = list(features)
    br = refiner.branches
    X = {m: as_tokens(features[m]) for m in names}  # (B, T_m, d_m)
    H = {m: affine(X[m], br[m].projection) for m in names}  # Eq. 2 (B, T_m, d_p)
    s = {
        m: mlp(torch.cat([H[m].mean(1), H[m].max(1).values], -1), br[m].summary_encoder)
        for m in names
    }  # Eq. 3 (B, d_p)
    out, gates, effective = {}, {}, {}
    for m in names:
        others = [o for o in names if o != m]
        u = sum(s[o] for o in others) / len(others)  # Eq. 5
        parts = [s[m]] + [s[o] for o in others]
        parts += [s[m] * s[o] for o in others]  # Eq. 6 agreement
        parts += [(s[m] - s[o]).abs() for o in others]  # Eq. 6 discrepancy
        r = mlp(torch.cat(parts + [u], -1), br[m].interaction_encoder)  # Eq. 8
        z = mlp(torch.cat([s[m], r], -1), br[m].value_encoder)  # Eq. 9
        g = torch.sigmoid(affine(z, br[m].global_value))  # Eq. 10 (B, 1)
        p = torch.sigmoid(affine(z, br[m].channel_value))  # Eq. 10 (B, d_p)
        g_c, p_c = 2 * g - 1, 2 * p - 1  # Eq. (C)
        logits = affine(X[m], br[m].gate_from_input) + affine(H[m], br[m].gate_from_projection)
        logits = logits + affine(g_c, br[m].gate_from_global_value)[:, None, :]
        logits = logits + affine(p_c, br[m].gate_from_channel_value)[:, None, :]
        G = torch.sigmoid(logits)  # Eq. 11 (B, T_m, d_m)
        G_hat = 1 + alpha * (2 * G - 1)  # Eq. 12
        G_tilde = beta + (1 - beta) * G_hat  # Eq. 13
        out[m] = layer_norm(X[m] * G_tilde, br[m].post[0])  # Eq. (R), Dropout off in eval
        gates[m], effective[m] = G, G_tilde
    return out, gates, effective


def to_refined_layout(tokens, like):
    if like.dim() == 2:
        return tokens[:, 0, :]
    if like.dim() == 4:
        return tokens.permute(0, 2, 1).reshape(like.shape)
    return tokens


def sharpen(refiner, scale=4.0):
    """Non-neutral, feature-varying gates: larger ρ weights, random biases and LayerNorm affine."""
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for branch in refiner.branches.values():
            for layer in branch.gate_layers():
                layer.weight.mul_(scale)
                layer.bias.copy_(torch.randn(layer.bias.shape, generator=generator))
            norm = branch.post[0]
            if isinstance(norm, torch.nn.LayerNorm):
                norm.weight.copy_(1 + 0.5 * torch.randn(norm.weight.shape, generator=generator))
                norm.bias.copy_(0.3 * torch.randn(norm.bias.shape, generator=generator))


# -- tests -----------------------------------------------------------------------------------
@pytest.mark.parametrize("shapes", [TWO, THREE], ids=["M2", "M3"])
@pytest.mark.parametrize("alpha, beta", [(0.5, 0.2), (0.9, 0.05)])
def test_refiner_matches_the_reference_with_a_non_neutral_gate(shapes, alpha, beta):
    refiner = make_refiner(shapes, alpha=alpha, beta=beta)
    sharpen(refiner)
    features = make_features(shapes)
    refined, signals = run(refiner, features)
    expected, gates, effective = reference(refiner, features, alpha, beta)
    for m, x in features.items():
        torch.testing.assert_close(signals.gate[m], gates[m])
        torch.testing.assert_close(signals.effective_gate[m], effective[m])
        torch.testing.assert_close(refined[m], to_refined_layout(expected[m], x))
        # the gate really is non-neutral and varies across features, so the order matters
        assert (effective[m] - 1).abs().max() > 0.1
        assert effective[m].std(dim=-1).min() > 1e-3


def test_refinement_gates_before_post_not_after():
    """Eq. (R): X̃ = Post(X ⊙ G̃). Post(X) ⊙ G̃ (the wrong order) is measurably different here."""
    alpha, beta = 0.5, 0.2
    refiner = make_refiner(THREE, alpha=alpha, beta=beta)
    sharpen(refiner)
    features = make_features(THREE)
    refined, signals = run(refiner, features)
    x = as_tokens(features["text"])  # (B, 4, 5)
    norm = refiner.branches["text"].post[0]
    gated = signals.effective_gate["text"]
    torch.testing.assert_close(refined["text"], layer_norm(x * gated, norm))
    wrong = layer_norm(x, norm) * gated
    assert (refined["text"] - wrong).abs().max() > 0.1


def test_gate_uses_the_centred_value_signals():
    """Eq. (C): ρ^g and ρ^p see 2g − 1 and 2p − 1. With ρ^x = ρ^h = 0 and zero biases, a hand
    computation on g and p from the diagnostics pins the centring."""
    refiner = make_refiner(TWO)
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for branch in refiner.branches.values():
            for layer in (branch.gate_from_input, branch.gate_from_projection):
                layer.weight.zero_()
                layer.bias.zero_()
            for layer in (branch.gate_from_global_value, branch.gate_from_channel_value):
                layer.weight.copy_(3 * torch.randn(layer.weight.shape, generator=generator))
                layer.bias.zero_()
    _, signals = run(refiner, make_features(TWO))
    for m in TWO:
        branch = refiner.branches[m]
        g = signals.global_value[m][:, None]  # (B, 1)
        p = signals.channel_value[m]  # (B, d_p)
        w_g = branch.gate_from_global_value.weight  # (d_m, 1)
        w_p = branch.gate_from_channel_value.weight  # (d_m, d_p)
        expected = torch.sigmoid((2 * g - 1) @ w_g.T + (2 * p - 1) @ w_p.T)  # (B, d_m)
        torch.testing.assert_close(signals.gate[m], expected[:, None, :].expand_as(signals.gate[m]))
        uncentred = torch.sigmoid(g @ w_g.T + p @ w_p.T)
        assert (signals.gate[m][:, 0, :] - uncentred).abs().max() > 0.05


def test_refinement_worked_by_hand():
    """Eq. 12, 13 and (R) on numbers (d_m = 3, α = 1, β = 0, so G̃ = 2G):
    G = (0.25, 0.5, 0.75) -> G̃ = (0.5, 1, 1.5); X = (2, 1, 2) -> X ⊙ G̃ = (1, 1, 3);
    LayerNorm (no affine, eps 0): mean 5/3, deviations (−2/3, −2/3, 4/3), variance 8/9
    -> X̃ = (−1/√2, −1/√2, √2). Without the gate: LN(X) = (1/√2, −√2, 1/√2); in the wrong order
    LN(X) ⊙ G̃ = (1/(2√2), −√2, 3/(2√2))."""
    G = torch.tensor([0.25, 0.5, 0.75])
    refiner = make_refiner({"a": (3,), "b": (2,)}, alpha=1.0, beta=0.0)
    with torch.no_grad():
        for branch in refiner.branches.values():
            for layer in branch.gate_layers():
                layer.weight.zero_()
                layer.bias.zero_()
        a = refiner.branches["a"]
        a.gate_from_input.bias.copy_(torch.log(G / (1 - G)))  # σ(logit) = G
        a.post[0].eps = 0.0
    features = {"a": torch.tensor([2.0, 1.0, 2.0]).expand(B, 3), "b": torch.ones(B, 2)}
    refined, signals = run(refiner, features)
    torch.testing.assert_close(signals.effective_gate["a"][0, 0], torch.tensor([0.5, 1.0, 1.5]))
    root2 = 2**0.5
    torch.testing.assert_close(refined["a"][0], torch.tensor([-1 / root2, -1 / root2, root2]))


def test_avg_max_pool_over_real_steps_on_numbers():
    # row 0: one real step (1, −2) -> avg (1, −2), max (1, −2); row 1: three real steps
    # (0, 3), (3, 0), (6, 6) -> avg (3, 3), max (6, 6); padded steps hold 100
    projected = torch.tensor(
        [[[1.0, -2.0], [100.0, 100.0], [100.0, 100.0]], [[0.0, 3.0], [3.0, 0.0], [6.0, 6.0]]]
    )
    steps = torch.tensor([[True, False, False], [True, True, True]])
    pooled = avg_max_pool(projected, steps)
    torch.testing.assert_close(pooled, torch.tensor([[1.0, -2.0, 1.0, -2.0], [3.0, 3.0, 6.0, 6.0]]))


def test_absent_modality_summary_is_zero():
    refiner = make_refiner(THREE)
    features = make_features(THREE)
    mask = torch.ones(B, 3, dtype=torch.bool)
    mask[:2, 1] = False
    output = FusionOutput(mask=mask)
    with torch.no_grad():
        refiner(features, mask, output)
    summary = output.diagnostics[DIAGNOSTICS_KEY].summary["audio"]
    assert torch.equal(summary[:2], torch.zeros(2, LATENT))
    assert summary[2:].abs().sum() > 0


@pytest.mark.parametrize("flags", [{"use_channel_value": False}, {"use_global_value": False}])
def test_one_value_signal_alone_is_computed_and_used(flags):
    refiner = make_refiner(TWO, **flags)
    sharpen(refiner)
    _, signals = run(refiner, make_features(TWO))
    kept = (
        signals.global_value if flags.get("use_channel_value") is False else signals.channel_value
    )
    assert set(kept) == set(TWO)


def test_without_post_norm_the_output_is_the_gated_input():
    refiner = make_refiner(TWO, post_norm=False)
    sharpen(refiner)
    features = make_features(TWO)
    refined, signals = run(refiner, features)
    x = as_tokens(features["text"])
    torch.testing.assert_close(refined["text"], x * signals.effective_gate["text"])


def test_post_applies_dropout_in_training():
    refiner = make_refiner(TWO, dropout=0.9, gate_init="neutral").train()
    features = {"text": torch.randn(200, 4, 5), "audio": torch.randn(200, 3)}
    mask = torch.ones(200, 2, dtype=torch.bool)
    torch.manual_seed(0)
    refined = refiner(features, mask, FusionOutput(mask=mask))
    zeros = (refined["text"] == 0).float().mean().item()  # 4000 entries, p = 0.9: std 0.005
    assert abs(zeros - 0.9) < 0.03


def test_hidden_sets_the_mlp_width_and_length_one_sequences_keep_their_shape():
    refiner = make_refiner({"text": (1, 5), "audio": (3,)}, hidden=5)
    assert refiner.branches["text"].summary_encoder[0].out_features == 5
    refined, _ = run(refiner, make_features({"text": (1, 5), "audio": (3,)}))
    assert refined["text"].shape == (B, 1, 5)


def test_defaults_are_the_papers_and_the_specs():
    # α = 0.5, β = 0.2 (paper §3.6); d_p = 128, λ_v = 0.1, λ_r = 0.01, γ = 0.05 (spec §6 A1–A4)
    refiner = ValueGatedModalityRefiner()
    assert (refiner.alpha, refiner.beta, refiner.latent_dim) == (0.5, 0.2, 128)
    assert (refiner.lambda_value, refiner.lambda_reg, refiner.reg_floor) == (0.1, 0.01, 0.05)
    assert refiner.dropout == 0.1


def test_signals_carry_the_real_steps_for_the_regulariser():
    refiner = make_refiner(TWO)
    features = make_features(TWO)
    steps = torch.ones(B, 4, dtype=torch.bool)
    steps[:, 2:] = False
    mask = torch.ones(B, 2, dtype=torch.bool)
    output = FusionOutput(mask=mask, steps={"text": steps})
    with torch.no_grad():
        refiner(features, mask, output)
    signals = output.diagnostics[DIAGNOSTICS_KEY]
    assert torch.equal(signals.steps["text"], steps)
    assert signals.steps["audio"] is None  # vectors have no steps
