"""Properties from each fusion's paper, checked on the built layers directly."""

import math
import re

import pytest
import torch
from sklearn.utils._param_validation import InvalidParameterError

from fusekit.builtin.attention_fusion import AttentionFusion
from fusekit.builtin.crossmodal_fusion import CrossmodalFusion
from fusekit.builtin.embracenet_fusion import EmbraceNetFusion
from fusekit.builtin.gated_fusion import GatedFusion
from fusekit.builtin.lowrank_fusion import LowRankFusion
from fusekit.builtin.sum_fusion import MeanFusion, SumFusion
from fusekit.builtin.tensor_fusion import TensorFusion
from fusekit.engine.resolve import resolve
from fusekit.plugin import BuildSpec, FusionOutput


def _spec(*widths):
    shapes = {f"m{i}": (w,) for i, w in enumerate(widths)}
    return BuildSpec(tuple(shapes), shapes, shapes, n_outputs=2, task="classification")


def _built(fusion, spec):
    torch.manual_seed(0)
    fusion.build(spec)
    return fusion


def _features(spec, batch=6, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return {m: torch.randn(batch, *s, generator=generator) for m, s in spec.feature_shapes.items()}


def _call(fusion, features, mask):
    return fusion(features, mask, FusionOutput(mask=mask))


def _projections(fusion, features):
    layers = getattr(fusion, "projection", None) or fusion.docking  # EmbraceNet: docking layers
    layers = layers.layers
    return torch.stack([layers[m](h) for m, h in features.items()], dim=1)  # (B, M, dim)


# -- sum / mean -------------------------------------------------------------------------------
def test_sum_adds_the_projections_of_present_modalities_only():
    spec = _spec(3, 5, 2)
    fusion = _built(SumFusion(dim=4), spec)
    features = _features(spec)
    mask = torch.tensor([[1, 1, 1], [1, 0, 1], [0, 0, 1], [0, 0, 0], [1, 1, 0], [0, 1, 0]]).bool()
    expected = (_projections(fusion, features) * mask.unsqueeze(-1)).sum(dim=1)
    torch.testing.assert_close(_call(fusion, features, mask), expected)


def test_mean_of_one_present_modality_is_its_projection():
    spec = _spec(3, 5)
    fusion = _built(MeanFusion(dim=4), spec)
    features = _features(spec)
    mask = torch.tensor([[True, False]] * 6)
    torch.testing.assert_close(_call(fusion, features, mask), _projections(fusion, features)[:, 0])


# -- tensor (TFN) -----------------------------------------------------------------------------
def test_tensor_fusion_is_the_outer_product_of_vectors_with_appended_one():
    spec = _spec(3, 4, 2)
    fusion = _built(TensorFusion(dim=2), spec)
    features = _features(spec)
    mask = torch.ones(6, 3, dtype=torch.bool)
    u = torch.cat([_projections(fusion, features), torch.ones(6, 3, 1)], dim=2)  # (B, 3, 3)
    expected = torch.einsum("bi,bj,bk->bijk", u[:, 0], u[:, 1], u[:, 2]).flatten(1)
    torch.testing.assert_close(_call(fusion, features, mask), expected)
    assert fusion.build(spec) == 3**3


def test_tensor_absent_modality_contributes_only_the_bias_term():
    spec = _spec(3, 4, 2)
    fusion = _built(TensorFusion(dim=2), spec)
    features = _features(spec)
    mask = torch.tensor([[True, False, True]] * 6)
    fused = _call(fusion, features, mask).reshape(6, 3, 3, 3)  # (B, dim+1, dim+1, dim+1)
    assert (fused[:, :, :2, :] == 0).all()  # absent m1: only its coordinate "1" survives
    u = torch.cat([_projections(fusion, features), torch.ones(6, 3, 1)], dim=2)  # (B, 3, 3)
    # what is left is the outer product of the present two, [u_0; 1] ⊗ [u_2; 1]
    expected = torch.einsum("bi,bk->bik", u[:, 0], u[:, 2])
    torch.testing.assert_close(fused[:, :, 2, :], expected)


def test_tensor_width_limit_is_a_clear_error():
    with pytest.raises(ValueError, match=r"dim=8.*\(dim \+ 1\)\^M = 59049.*max_width=1000"):
        TensorFusion(dim=8, max_width=1000).build(_spec(2, 2, 2, 2, 2))


# -- lowrank (LMF) ----------------------------------------------------------------------------
def test_lowrank_equals_tfn_with_the_rank_r_weight_tensor():
    """Liu et al., "Efficient Low-rank Multimodal Fusion with Modality-Specific Factors" (ACL
    2018), §3: h = W · vec(⊗_m [v_m; 1]) + b with W = Σ_i λ_i ⊗_m w_m^(i)."""
    spec = _spec(2, 3, 1)
    fusion = _built(LowRankFusion(rank=3, dim=4), spec)
    features = _features(spec)
    mask = torch.tensor([[1, 1, 1], [1, 0, 1], [0, 0, 0], [1, 1, 1], [0, 1, 1], [1, 1, 0]]).bool()
    z = [
        torch.cat([h * mask[:, i : i + 1], torch.ones(6, 1)], dim=1)
        for i, h in enumerate(features.values())
    ]
    outer = torch.einsum("bi,bj,bk->bijk", *z)  # (B, 3, 4, 2)
    w = [fusion.factors[m] for m in spec.names]  # (r, d_m + 1, dim)
    weight = torch.einsum("r,rio,rjo,rko->ijko", fusion.rank_weights[0], *w)  # full W
    expected = torch.einsum("bijk,ijko->bo", outer, weight) + fusion.bias
    torch.testing.assert_close(_call(fusion, features, mask), expected, rtol=1e-4, atol=1e-5)


# -- gated (GMU) ------------------------------------------------------------------------------
def test_gmu_gates_are_a_distribution_over_present_modalities():
    spec = _spec(3, 5, 2)
    fusion = _built(GatedFusion(dim=4), spec)
    mask = torch.tensor([[1, 1, 1], [1, 0, 1], [0, 0, 1], [0, 0, 0], [1, 1, 0], [0, 1, 0]]).bool()
    output = FusionOutput(mask=mask)
    fusion(_features(spec), mask, output)
    gates = output.diagnostics["gmu_gates"]  # (B, M, dim)
    assert (gates[~mask] == 0).all()
    sums = gates.sum(dim=1)  # (B, dim)
    torch.testing.assert_close(sums[mask.any(1)], torch.ones_like(sums[mask.any(1)]))
    assert (sums[~mask.any(1)] == 0).all()


def test_gmu_with_two_modalities_is_the_papers_sigmoid_gate():
    """h = z·h_1 + (1 − z)·h_2 with z = σ(g_1 − g_2)."""
    spec = _spec(3, 2)
    fusion = _built(GatedFusion(dim=4), spec)
    features = _features(spec)
    mask = torch.ones(6, 2, dtype=torch.bool)
    hidden = torch.tanh(_projections(fusion, features))  # (B, 2, dim)
    logits = fusion.gate(torch.cat([*features.values(), mask.float()], dim=1)).view(6, 2, 4)
    z = torch.sigmoid(logits[:, 0] - logits[:, 1])
    expected = z * hidden[:, 0] + (1 - z) * hidden[:, 1]
    torch.testing.assert_close(_call(fusion, features, mask), expected)


# -- attention --------------------------------------------------------------------------------
def test_attention_weights_sum_to_one_over_present_modalities():
    spec = _spec(3, 5, 2, 4)
    fusion = _built(AttentionFusion(dim=8), spec)
    mask = torch.tensor([[1, 1, 1, 1], [1, 0, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]]).bool()
    output = FusionOutput(mask=mask)
    fused = fusion(_features(spec, batch=4), mask, output)
    alpha = output.diagnostics["modality_attention"]  # (B, M)
    assert (alpha[~mask] == 0).all()
    torch.testing.assert_close(alpha.sum(1)[:3], torch.ones(3))
    assert (fused[3] == 0).all()  # nothing present -> zero vector


# -- embracenet -------------------------------------------------------------------------------
def test_embracenet_draws_each_feature_from_exactly_one_present_modality():
    spec = _spec(3, 5, 2)
    fusion = _built(EmbraceNetFusion(dim=64), spec).train()
    mask = torch.tensor([[1, 1, 1], [1, 0, 1], [0, 0, 1], [1, 1, 0], [0, 1, 0], [1, 1, 1]]).bool()
    output = FusionOutput(mask=mask)
    torch.manual_seed(0)
    fusion(_features(spec), mask, output)
    selection = output.diagnostics["embrace_selection"]  # (B, M, dim)
    assert (selection.sum(dim=1) == 1).all()
    assert (selection[~mask] == 0).all()
    shares = selection[0].mean(dim=1)  # all present: roughly uniform p = 1/3
    assert (shares > 0.15).all()


def test_embracenet_predicts_with_the_expected_embracement():
    """Our documented pick: eval uses E[e] = Σ_m p_m d_m, the mean of the present dockings."""
    spec = _spec(3, 5, 2)
    fusion = _built(EmbraceNetFusion(dim=8), spec).eval()
    features = _features(spec)
    mask = torch.tensor([[1, 1, 1], [1, 0, 1], [0, 0, 1], [1, 1, 0], [0, 1, 0], [0, 0, 0]]).bool()
    dockings = torch.relu(_projections(fusion, features))  # (B, M, dim)
    expected = (dockings * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
    # no sampling at eval: whatever the global RNG state, the output is the expectation
    for seed in (1, 2):
        torch.manual_seed(seed)
        torch.testing.assert_close(_call(fusion, features, mask), expected)
    fused = _call(fusion, features, mask)
    torch.testing.assert_close(fused[1], (dockings[1, 0] + dockings[1, 2]) / 2)  # m0, m2 present
    torch.testing.assert_close(fused[4], dockings[4, 1])  # only m1: its docking
    assert (fused[5] == 0).all()  # nothing present -> zero vector


# -- crossmodal (MulT) ------------------------------------------------------------------------
def test_crossmodal_has_one_block_per_ordered_pair():
    spec = _spec(3, 5, 2, 4)
    fusion = CrossmodalFusion(dim=8, heads=2)
    width = fusion.build(spec)
    assert len(fusion.pairs) == 4 * 3 and len(set(fusion.pairs)) == 12
    assert width == 12 * 8 + 4


def test_crossmodal_keeps_the_target_when_the_source_is_absent():
    """An absent source removes the attention term only: the target's stream still carries it."""
    spec = _spec(3, 5)
    fusion = _built(CrossmodalFusion(dim=8, heads=2), spec).eval()
    features = _features(spec)
    mask = torch.tensor([[True, False]] * 6)
    out = _call(fusion, features, mask)
    moved = _call(fusion, {"m0": features["m0"] + 1.0, "m1": features["m1"]}, mask)
    assert not torch.allclose(out[:, :8], moved[:, :8])  # pair m1 -> m0 sees m0
    assert (out[:, 8:16] == 0).all()  # pair m0 -> m1: target absent


def test_crossmodal_attends_over_source_steps():
    """With sequences, the target's output depends on which source step holds what."""
    shapes = {"a": (5, 3), "b": (4, 2)}
    spec = BuildSpec(("a", "b"), shapes, shapes, n_outputs=2, task="classification")
    fusion = _built(CrossmodalFusion(dim=8, heads=2), spec).eval()
    features = _features(spec, batch=3)
    mask = torch.ones(3, 2, dtype=torch.bool)
    out = _call(fusion, features, mask)
    shuffled = {"a": features["a"], "b": features["b"].flip(1)}  # reorder source steps
    assert not torch.allclose(out[:, :8], _call(fusion, shuffled, mask)[:, :8])


# -- bad parameters ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("sum", {"dim": 0}, "'dim' parameter of fusion sum must be an int in the range [1, inf)"),
        ("mean", {"activation": "swish"}, "'activation' parameter of fusion mean must be a str"),
        ("tensor", {"dim": -1}, "'dim' parameter of fusion tensor must be an int"),
        ("lowrank", {"rank": 0}, "'rank' parameter of fusion lowrank must be an int"),
        ("gated", {"dim": 2.5}, "'dim' parameter of fusion gated must be an int"),
        ("attention", {"attention_dim": 0}, "'attention_dim' parameter of fusion attention"),
        (
            "crossmodal",
            {"dropout": 1.5},
            "'dropout' parameter of fusion crossmodal must be a float",
        ),
        ("embracenet", {"dim": "big"}, "'dim' parameter of fusion embracenet must be an int"),
    ],
)
def test_bad_parameters_are_refused_by_name_when_resolved(name, params, message):
    with pytest.raises(InvalidParameterError, match=re.escape(message)):
        resolve("fusion", name, params)


def test_dim_not_divisible_by_heads_is_refused_at_build():
    with pytest.raises(ValueError, match="crossmodal fusion: dim must be divisible by heads"):
        CrossmodalFusion(dim=10, heads=4).build(_spec(3, 2))


def test_tensor_width_grows_as_the_paper_says():
    for m in (2, 3, 5):
        assert TensorFusion(dim=3).build(_spec(*range(2, 2 + m))) == math.prod([4] * m)
