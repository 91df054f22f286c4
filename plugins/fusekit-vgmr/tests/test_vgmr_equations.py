"""The refiner's equations (paper §3.2–3.7) and the spec's testable properties (§7), eval mode."""

from __future__ import annotations

import pytest
import torch
from fusekit_vgmr import DIAGNOSTICS_KEY, ValueGatedModalityRefiner
from torch.nn import functional as F

from fusekit import BuildSpec, FusionOutput

B, LATENT = 6, 8
THREE = {"text": (5, 7), "audio": (4,), "video": (3, 4, 2)}  # sequence, vector, feature map
TWO = {"text": (5, 7), "audio": (4,)}


def make_refiner(shapes, **params) -> ValueGatedModalityRefiner:
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


def make_features(shapes, seed=0, batch=B) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {m: torch.randn(batch, *shape, generator=generator) for m, shape in shapes.items()}


def run(refiner, features, mask=None, steps=None):
    n = next(iter(features.values())).shape[0]
    mask = torch.ones(n, len(features), dtype=torch.bool) if mask is None else mask
    output = FusionOutput(mask=mask, steps=steps or {})
    with torch.no_grad():
        refined = refiner(features, mask, output)
    return refined, output.diagnostics[DIAGNOSTICS_KEY]


@pytest.mark.parametrize("shapes", [TWO, THREE], ids=["M2", "M3"])
def test_output_shapes_equal_input_shapes(shapes):
    features = make_features(shapes)
    refined, signals = run(make_refiner(shapes), features)
    for m, x in features.items():
        assert refined[m].shape == x.shape
        assert signals.global_value[m].shape == (B,)
        assert signals.channel_value[m].shape == (B, LATENT)
    assert signals.gate["text"].shape == (B, 5, 7)
    assert signals.gate["audio"].shape == (B, 1, 4)  # vector = one step
    if "video" in shapes:
        assert signals.gate["video"].shape == (B, 8, 3)  # (C, H, W) = H·W tokens of width C


def test_value_signals_and_gate_lie_in_unit_interval():
    _, signals = run(make_refiner(THREE), make_features(THREE))
    for group in (signals.global_value, signals.channel_value, signals.gate):
        for value in group.values():
            assert ((value > 0) & (value < 1)).all()


@pytest.mark.parametrize("alpha, beta", [(0.5, 0.2), (1.0, 0.0), (0.3, 0.7), (0.9, 0.05)])
def test_effective_gate_closed_form_equals_composed_gate(alpha, beta):
    _, signals = run(make_refiner(THREE, alpha=alpha, beta=beta), make_features(THREE))
    reach = alpha * (1 - beta)
    for m, gate in signals.gate.items():
        effective = signals.effective_gate[m]
        torch.testing.assert_close(effective, 1 + reach * (2 * gate - 1))
        assert (effective >= 1 - reach - 1e-6).all() and (effective <= 1 + reach + 1e-6).all()


def test_paper_defaults_keep_effective_gate_within_0_6_and_1_4():
    # spec §2.3 / §7.3: α = 0.5, β = 0.2 -> G̃ = 1 + α(1 − β)(2G − 1) = 1 + 0.4(2G − 1),
    # and G ∈ (0, 1) -> G̃ ∈ (1 − 0.4, 1 + 0.4) = (0.6, 1.4)
    refiner = make_refiner(THREE)
    assert (refiner.alpha, refiner.beta) == (0.5, 0.2)
    with torch.no_grad():  # push the gate logits far out so the bounds are actually approached
        for branch in refiner.branches.values():
            branch.gate_from_input.weight.mul_(50)
    _, signals = run(refiner, make_features(THREE))
    gates = torch.cat([g.flatten() for g in signals.effective_gate.values()])
    assert gates.min() >= 0.6 - 1e-6 and gates.max() <= 1.4 + 1e-6
    assert gates.min() < 0.7 and gates.max() > 1.3


@pytest.mark.parametrize("alpha, beta", [(0.0, 0.2), (0.5, 1.0)])
def test_neutral_gate_leaves_only_post_layernorm(alpha, beta):
    # spec §7.4: α = 0 -> Ĝ = 1 + 0·(2G − 1) = 1 -> G̃ = β + (1 − β)·1 = 1;
    # β = 1 -> G̃ = 1 + 0·Ĝ = 1; so X̃ = LayerNorm(X ⊙ 1) = LayerNorm(X) (eval: no dropout)
    refiner = make_refiner(THREE, alpha=alpha, beta=beta)
    features = make_features(THREE)
    refined, signals = run(refiner, features)
    for m, x in features.items():
        assert torch.equal(signals.effective_gate[m], torch.ones_like(signals.effective_gate[m]))
        norm = refiner.branches[m].post[0]
        tokens = x.unsqueeze(1) if x.dim() == 2 else x
        if x.dim() == 4:
            tokens = x.flatten(2).transpose(1, 2)
        expected = F.layer_norm(tokens, norm.normalized_shape, norm.weight, norm.bias, norm.eps)
        got = refined[m].unsqueeze(1) if x.dim() == 2 else refined[m]
        if x.dim() == 4:
            got = got.flatten(2).transpose(1, 2)
        torch.testing.assert_close(got, expected)
    # ... whatever the other modalities contain
    changed = dict(features, audio=features["audio"] * 5 + 3)
    again, _ = run(refiner, changed)
    torch.testing.assert_close(again["text"], refined["text"])


def test_gate_above_half_enhances_and_below_half_suppresses():
    _, signals = run(make_refiner(THREE), make_features(THREE))
    for m, gate in signals.gate.items():
        direction = torch.sign(signals.effective_gate[m] - 1)
        assert torch.equal(direction, torch.sign(gate - 0.5))


def test_neutral_gate_init_starts_with_effective_gate_one():
    _, signals = run(make_refiner(THREE, gate_init="neutral"), make_features(THREE))
    for effective in signals.effective_gate.values():
        assert torch.equal(effective, torch.ones_like(effective))


def test_context_is_the_other_summary_for_two_modalities():
    _, signals = run(make_refiner(TWO), make_features(TWO))
    torch.testing.assert_close(signals.context["text"], signals.summary["audio"])
    torch.testing.assert_close(signals.context["audio"], signals.summary["text"])


def test_context_is_mean_of_present_other_summaries():
    mask = torch.ones(B, 3, dtype=torch.bool)
    mask[0, 2] = False  # video absent in sample 0
    mask[1, 1:] = False  # only text in sample 1
    _, signals = run(make_refiner(THREE), make_features(THREE), mask)
    s = signals.summary
    torch.testing.assert_close(signals.context["text"][2:], (s["audio"][2:] + s["video"][2:]) / 2)
    torch.testing.assert_close(signals.context["text"][0], s["audio"][0])
    assert torch.equal(signals.context["text"][1], torch.zeros(LATENT))


def test_time_permutation_permutes_output_and_keeps_values():
    refiner = make_refiner(THREE)
    features = make_features(THREE)
    refined, signals = run(refiner, features)
    order = torch.tensor([3, 0, 4, 1, 2])
    permuted, permuted_signals = run(refiner, dict(features, text=features["text"][:, order]))
    torch.testing.assert_close(permuted["text"], refined["text"][:, order])
    torch.testing.assert_close(permuted["audio"], refined["audio"])
    torch.testing.assert_close(permuted["video"], refined["video"])
    for m in THREE:
        torch.testing.assert_close(permuted_signals.global_value[m], signals.global_value[m])
        torch.testing.assert_close(permuted_signals.channel_value[m], signals.channel_value[m])


def test_cross_modal_dependence_only_through_value_signals():
    features = make_features(THREE)
    changed = dict(features, audio=features["audio"] + 2.0)
    isolated = make_refiner(THREE, use_global_value=False, use_channel_value=False)
    torch.testing.assert_close(
        run(isolated, changed)[0]["text"], run(isolated, features)[0]["text"]
    )
    coupled = make_refiner(THREE)
    assert not torch.allclose(run(coupled, changed)[0]["text"], run(coupled, features)[0]["text"])


def test_sample_output_does_not_depend_on_its_batch():
    refiner = make_refiner(THREE)
    features = make_features(THREE)
    batched, _ = run(refiner, features)
    alone, _ = run(refiner, {m: x[2:3] for m, x in features.items()})
    for m in THREE:
        torch.testing.assert_close(alone[m], batched[m][2:3])


def test_absent_modality_values_change_nothing_and_its_output_is_zero():
    refiner = make_refiner(THREE)
    features = make_features(THREE)
    mask = torch.ones(B, 3, dtype=torch.bool)
    mask[:3, 1] = False  # audio absent for samples 0-2
    present = mask[:, 1:2]  # (B, 1)
    garbage = dict(
        features, audio=torch.where(present, features["audio"], features["audio"] * 100 + 7)
    )
    zeroed = dict(features, audio=features["audio"] * present)
    first, first_signals = run(refiner, zeroed, mask)
    second, second_signals = run(refiner, garbage, mask)
    for m in ("text", "video"):
        torch.testing.assert_close(second[m], first[m])
        torch.testing.assert_close(second_signals.gate[m], first_signals.gate[m])
    assert torch.equal(second["audio"][:3], torch.zeros(3, 4))


def test_sample_with_every_modality_absent_is_finite_and_zero():
    mask = torch.ones(B, 3, dtype=torch.bool)
    mask[0] = False
    refined, _ = run(make_refiner(THREE), make_features(THREE), mask)
    for value in refined.values():
        assert torch.isfinite(value).all()
        assert torch.equal(value[0], torch.zeros_like(value[0]))


def test_padded_steps_change_nothing_and_are_zero_in_the_output():
    refiner = make_refiner(THREE)
    features = make_features(THREE)
    steps = torch.ones(B, 5, dtype=torch.bool)
    steps[:, 3:] = False  # last two steps of text are padding for every sample
    steps[0, :] = False  # and sample 0 has no real step at all
    padded = dict(features, text=features["text"].clone())
    padded["text"][:, 3:] = 99.0
    first, _ = run(refiner, features, steps={"text": steps})
    second, _ = run(refiner, padded, steps={"text": steps})
    for m in THREE:
        assert torch.isfinite(second[m]).all()
        torch.testing.assert_close(second[m], first[m])
    assert torch.equal(second["text"][:, 3:], torch.zeros(B, 2, 7))


def test_parameters_are_modality_specific_and_all_receive_gradient():
    refiner = make_refiner(THREE).train()
    features = make_features(THREE)
    mask = torch.ones(B, 3, dtype=torch.bool)
    refined = refiner(features, mask, FusionOutput(mask=mask))
    sum(value.square().mean() for value in refined.values()).backward()
    assert len({id(p) for p in refiner.parameters()}) == sum(1 for _ in refiner.parameters())
    for name, parameter in refiner.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    "shapes, flags, groups",
    [
        (THREE, {}, 8),  # spec §7.10: (3K + 2) d_p with K = 2 -> 8 d_p
        (TWO, {}, 5),  # K = 1 -> (3 + 2) d_p = 5 d_p
        (THREE, {"use_agreement": False}, 6),  # (2K + 2) d_p = 6 d_p
        (THREE, {"use_agreement": False, "use_discrepancy": False}, 4),  # (K + 2) d_p = 4 d_p
    ],
)
def test_interaction_encoder_input_width(shapes, flags, groups):
    refiner = make_refiner(shapes, **flags)
    for branch in refiner.branches.values():
        assert branch.interaction_encoder[0].in_features == groups * LATENT


def test_single_modality_is_rejected():
    with pytest.raises(ValueError, match="at least 2 modalities"):
        make_refiner({"audio": (4,)})


def test_width_one_modality_warns_about_layernorm():
    with pytest.warns(UserWarning, match="post_norm"):
        make_refiner({"audio": (4,), "scalar": (1,)})
