"""MWAM's wiring without training: step, hooks and block DCT checked against references.

The FRM of each modality is recomputed here with ``scipy.fft`` block by block (spec seed-003
§3.2, §4: orthonormal DCT-II blocks, low band top-left k×k, high band mirrored bottom-right,
padded blocks left out), and the bank / weight recursion of §3.3–3.4 is written out in plain
floats, so every expected value is independent of ``fusekit_mwam``.
"""

import math
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.fft
import torch
from fusekit_mwam import MWAM
from fusekit_mwam.dct import block_dct_image, block_dct_sequence, block_dct_vector, dct_matrix
from torch import nn

from fusekit import BuildSpec, FusionOutput, ModalityBatch
from fusekit.plugin import LossContext, TaskCriterion, TrainingContext

SHAPES = {"image": (1, 6, 10), "sequence": (9, 2), "vector": (7,)}


def geometry(length, patch, band):
    """Block length, number of blocks and band of one axis (spec §4: short axis -> one block)."""
    if length >= patch:
        return patch, length // patch, band
    return length, 1, max(1, length // 4)


def reference_bands(x, patch, band, steps=None):
    """Low / mirrored-high coefficients ``(B, terms)`` and 0/1 term weights, with scipy.fft."""
    batch = x.shape[0]
    if x.ndim == 4:
        (bh, nh, kh), (bw, nw, kw) = (
            geometry(x.shape[2], patch, band),
            geometry(x.shape[3], patch, band),
        )
        blocks = x[:, :, : nh * bh, : nw * bw].reshape(batch, x.shape[1], nh, bh, nw, bw)
        coefficients = scipy.fft.dctn(
            blocks.transpose(0, 1, 2, 4, 3, 5), axes=(-2, -1), norm="ortho"
        )
        low = coefficients[..., :kh, :kw]
        high = coefficients[..., ::-1, ::-1][..., :kh, :kw]
        weights = np.ones_like(low)
    else:
        axis_length = x.shape[1]
        size, count, k = geometry(axis_length, patch, band)
        blocks = x[:, : count * size].reshape(batch, count, size, *x.shape[2:])
        coefficients = scipy.fft.dct(blocks, axis=2, norm="ortho")
        low = coefficients[:, :, :k]
        high = coefficients[:, :, ::-1][:, :, :k]
        weights = np.ones_like(low)
        if steps is not None:
            real = steps[:, : count * size].reshape(batch, count, size).all(axis=2)
            weights = weights * real[:, :, None, None]
    return low.reshape(batch, -1), high.reshape(batch, -1), weights.reshape(batch, -1)


def reference_frm(x, mode, patch, band, eps, reduce, present, steps=None):
    x = x[present]
    steps = None if steps is None else steps[present]
    if len(x) == 0:
        return math.nan  # no present sample: the modality is skipped
    low, high, weights = reference_bands(x, patch, band, steps)
    samples = weights.sum() / weights.shape[1]
    if mode == "official":
        total = (np.abs(low / (high + eps)) * weights).sum()
        return total if reduce == "sum" else total / samples
    low_energy, high_energy = (low**2 * weights).sum(), (high**2 * weights).sum()
    if reduce == "mean":
        low_energy, high_energy = low_energy / samples, high_energy / samples
    return low_energy / (high_energy + eps)


class ReferenceAllocation:
    """§3.3–3.4 in plain floats: EMA banks, μ over present banks, w = α − β σ(s (r − γ))."""

    def __init__(self, count, ema, soft_begin, eps, alpha, beta, gamma, sharpness):
        self.bank = [None] * count
        self.ema, self.soft, self.eps = ema, soft_begin, eps
        self.alpha, self.beta, self.gamma, self.sharpness = alpha, beta, gamma, sharpness

    def step(self, frm):
        usable = [m for m, value in enumerate(frm) if math.isfinite(value)]
        for m in usable:
            if self.bank[m] is None:
                self.bank[m] = (1 - self.ema) * frm[m] if self.soft else frm[m]
            else:
                self.bank[m] = self.ema * self.bank[m] + (1 - self.ema) * frm[m]
        weights = [1.0] * len(frm)
        if not usable or any(self.bank[m] == 0 for m in usable):
            return weights
        mean = sum(self.bank[m] for m in usable) / len(usable)
        for m in usable:
            ratio = frm[m] / (mean + self.eps)
            weights[m] = self.alpha - self.beta / (
                1 + math.exp(-self.sharpness * (ratio - self.gamma))
            )
        return weights


def built(**params):
    weighting = MWAM(ordered_vectors=True, **params)
    weighting.build(
        BuildSpec(
            names=tuple(SHAPES), input_shapes=SHAPES, feature_shapes=SHAPES, n_outputs=2,
            task="classification",
        )
    )  # fmt: skip
    return weighting


def batch_of(seed=0, n=6):
    rng = np.random.default_rng(seed)
    features = {
        "image": rng.normal(size=(n, *SHAPES["image"])).cumsum(axis=3),
        "sequence": rng.normal(size=(n, *SHAPES["sequence"])),
        "vector": rng.normal(size=(n, *SHAPES["vector"])).cumsum(axis=1),
    }
    mask = np.ones((n, 3), dtype=bool)
    mask[[0, 3], 0] = False
    mask[[1], 1] = False
    mask[[2, 4, 5], 2] = False
    steps = np.ones((n, 9), dtype=bool)
    steps[0, 3:] = False  # blocks 1 of row 0 padded
    steps[4, 7:] = False  # block 2 (cropped part) does not count: real blocks are 0..1
    steps[5, 5:] = False
    return features, mask, steps


PARAMS = dict(
    patch_size=4, band=1, eps=0.5, reduce="mean", ema=0.3, soft_begin=False, alpha=2.0,
    beta=0.5, gamma=0.8, sharpness=3.0,
)  # fmt: skip


def expected_frm(features, mask, steps, mode, params):
    return [
        reference_frm(
            features[name], mode, params["patch_size"], params["band"], params["eps"],
            params["reduce"], mask[:, position], steps if name == "sequence" else None,
        )
        for position, name in enumerate(SHAPES)
    ]  # fmt: skip


def reference_for(params):
    names = ("ema", "soft_begin", "eps", "alpha", "beta", "gamma", "sharpness")
    return ReferenceAllocation(len(SHAPES), **{name: params[name] for name in names})


@pytest.mark.parametrize("mode", ["official", "energy"])
def test_step_with_every_parameter_set_matches_the_reference(mode):
    """Non-default P, k, ε, reduce, EMA, no soft begin, α, β, γ, s; partial mask, padded steps."""
    weighting = built(frm_mode=mode, **PARAMS)
    reference = reference_for(PARAMS)
    for seed in range(3):
        features, mask, steps = batch_of(seed)
        torch_features = {name: torch.tensor(value) for name, value in features.items()}
        weights = weighting.step(
            torch_features, torch.tensor(mask), {"sequence": torch.tensor(steps)}
        )
        frm = expected_frm(features, mask, steps, mode, PARAMS)
        np.testing.assert_allclose(weighting.frm_history[-1], frm, rtol=1e-10)
        expected = reference.step(frm)
        assert weights.dtype == torch.float64
        np.testing.assert_allclose(weights.numpy(), expected, rtol=1e-12)
        for position, name in enumerate(SHAPES):  # float64 all the way, not float32-rounded
            assert weighting.weight_of(name) == pytest.approx(expected[position], rel=1e-12)
        assert any(abs(w - 1.0) > 0.05 for w in expected)
    assert len(weighting.weight_history) == 3


def test_default_weighting_uses_the_official_soft_begin_and_weight_function():
    """Defaults (code, §3.3–3.4): soft begin, a 0.5, α 1.5, β 1, γ 1, s 10, P 8, k 2, ε 1e-6."""
    rng = np.random.default_rng(4)
    features = {
        "image": rng.normal(size=(5, 1, 16, 16)).cumsum(axis=2),
        "sequence": rng.normal(size=(5, 16, 2)),
        "vector": rng.normal(size=(5, 16)).cumsum(axis=1),
    }
    mask = np.ones((5, 3), dtype=bool)
    mask[0, 1] = False
    weighting = MWAM(ordered_vectors=True)
    shapes = {name: value.shape[1:] for name, value in features.items()}
    weighting.build(BuildSpec(tuple(shapes), shapes, shapes, 2, "classification"))
    assert weighting.weight_of("image") == 1.0  # before any step
    defaults = dict(patch=8, band=2, eps=1e-6, reduce="mean")
    reference = ReferenceAllocation(3, 0.5, True, 1e-6, 1.5, 1.0, 1.0, 10.0)
    for _ in range(2):
        weights = weighting.step(
            {name: torch.tensor(value) for name, value in features.items()}, torch.tensor(mask)
        )
        frm = [
            reference_frm(features[name], "official", present=mask[:, position], **defaults)
            for position, name in enumerate(features)
        ]
        np.testing.assert_allclose(weights.numpy(), reference.step(frm), rtol=1e-9)


def test_a_modality_absent_from_the_batch_does_not_stop_the_others():
    features, mask, steps = batch_of(1)
    mask[:, 0] = False  # the first modality is absent from every row
    weighting = built(**PARAMS)
    weighting.step(
        {n: torch.tensor(v) for n, v in features.items()},
        torch.tensor(mask),
        {"sequence": torch.tensor(steps)},
    )
    weights = weighting.step(
        {n: torch.tensor(v) for n, v in features.items()},
        torch.tensor(mask),
        {"sequence": torch.tensor(steps)},
    )
    frm = expected_frm(features, mask, steps, "official", PARAMS)
    assert math.isnan(weighting.frm_history[-1][0]) and math.isnan(frm[0])
    np.testing.assert_allclose(weighting.frm_history[-1][1:], frm[1:], rtol=1e-10)
    reference = reference_for(PARAMS)
    reference.step(frm)
    np.testing.assert_allclose(weights.numpy(), reference.step(frm), rtol=1e-12)
    assert weights[0] == 1.0 and weights[1] != 1.0


def test_a_step_mask_of_another_length_is_ignored():
    """A backbone that changed T (``frm_source="feature"``): the input's step mask cannot apply."""
    features, mask, steps = batch_of(2)
    weighting = built(**PARAMS)
    tensors = {n: torch.tensor(v) for n, v in features.items()}
    weighting.step(tensors, torch.tensor(mask), {"sequence": torch.tensor(steps[:, :6])})
    unmasked = reference_frm(features["sequence"], "official", 4, 1, 0.5, "mean", mask[:, 1])
    assert weighting.frm_history[-1][1] == pytest.approx(unmasked, rel=1e-10)


def test_batch_begin_passes_the_step_masks_of_the_batch():
    features, mask, steps = batch_of(3)
    weighting = built(**PARAMS)
    batch = ModalityBatch(
        features={n: torch.tensor(v) for n, v in features.items()},
        mask=torch.tensor(mask),
        steps={"sequence": torch.tensor(steps)},
    )
    weighting.on_batch_begin(
        TrainingContext(SimpleNamespace(), loop=None, data=None, epoch=0, batch=batch)
    )
    np.testing.assert_allclose(
        weighting.frm_history[-1],
        expected_frm(features, mask, steps, "official", PARAMS),
        rtol=1e-10,
    )
    feature_source = built(frm_source="feature", **PARAMS)
    feature_source.on_batch_begin(
        TrainingContext(SimpleNamespace(), loop=None, data=None, epoch=0, batch=batch)
    )
    assert feature_source.frm_history == []  # "feature": the FRM is taken in task_loss


def loss_network():
    return SimpleNamespace(
        names=tuple(SHAPES),
        criterion=TaskCriterion("classification"),  # cross-entropy, the classifier's criterion
    )


def test_feature_source_takes_the_frm_of_the_outputs_with_their_step_masks():
    features, mask, steps = batch_of(4)
    weighting = built(frm_source="feature", **PARAMS)
    output = FusionOutput(
        logits=torch.randn(6, 2),
        mask=torch.tensor(mask),
        features={n: torch.tensor(v) for n, v in features.items()},
        steps={"sequence": torch.tensor(steps)},
    )
    ctx = LossContext(
        loss_network(), batch=None, target=torch.zeros(6, dtype=torch.long), training=True
    )
    loss = weighting.task_loss(output, ctx)
    np.testing.assert_allclose(
        weighting.frm_history[-1],
        expected_frm(features, mask, steps, "official", PARAMS),
        rtol=1e-10,
    )
    torch.testing.assert_close(loss, nn.functional.cross_entropy(output.logits, ctx.target))
    weighting.task_loss(output, LossContext(loss_network(), None, ctx.target, training=False))
    assert len(weighting.frm_history) == 1  # validation passes take no step


@pytest.mark.parametrize("training", [True, False])
def test_loss_mode_adds_weighted_unimodal_losses_over_present_rows(training):
    torch.manual_seed(0)
    weighting = built(apply="loss")
    weighting.modality_weights.copy_(torch.tensor([0.7, 1.3, 0.4], dtype=torch.float64))
    mask = torch.tensor([[0, 1, 1], [0, 1, 0], [0, 0, 1], [0, 1, 1]], dtype=torch.bool)  # no image
    target = torch.tensor([1, 0, 0, 1])
    output = FusionOutput(
        logits=torch.randn(4, 2),
        mask=mask,
        unimodal_logits={n: torch.randn(4, 2) for n in SHAPES},
    )
    loss = weighting.task_loss(output, LossContext(loss_network(), None, target, training))
    ce = nn.functional.cross_entropy
    sequence_rows, vector_rows = [0, 1, 3], [0, 2, 3]
    sequence = ce(output.unimodal_logits["sequence"][sequence_rows], target[sequence_rows])
    vector = ce(output.unimodal_logits["vector"][vector_rows], target[vector_rows])
    weights = (1.3, 0.4) if training else (1.0, 1.0)
    expected = ce(output.logits, target) + weights[0] * sequence + weights[1] * vector
    torch.testing.assert_close(loss, expected)


def test_gradients_of_each_backbone_scaled_by_its_own_weight():
    weighting = built()
    weighting.modality_weights.copy_(torch.tensor([1.0, 0.5, 2.0], dtype=torch.float64))
    parameters = {
        name: [nn.Parameter(torch.ones(2)), nn.Parameter(torch.ones(3))] for name in SHAPES
    }
    for group in parameters.values():
        for parameter in group:
            parameter.grad = torch.full_like(parameter, 3.0)
    parameters["vector"][1].grad = None  # unused parameter: left alone
    network = SimpleNamespace(modality_parameters=lambda name: parameters[name])
    weighting.on_grad_computed(TrainingContext(network, loop=None, data=None, epoch=0))
    assert [p.grad.tolist() for p in parameters["image"]] == [[3.0] * 2, [3.0] * 3]
    assert [p.grad.tolist() for p in parameters["sequence"]] == [[1.5] * 2, [1.5] * 3]
    assert parameters["vector"][0].grad.tolist() == [6.0] * 2
    assert parameters["vector"][1].grad is None


def test_defaults_are_the_official_codes():
    weighting = MWAM()
    expected = dict(
        frm_source="input", frm_mode="official", patch_size=8, band=2, eps=1e-6, reduce="mean",
        ema=0.5, soft_begin=True, alpha=1.5, beta=1.0, gamma=1.0, sharpness=10.0, apply="grad",
        ordered_vectors=False,
    )  # fmt: skip
    assert {name: getattr(weighting, name) for name in expected} == expected


def spec_of(input_shapes, feature_shapes):
    return BuildSpec(tuple(input_shapes), input_shapes, feature_shapes, 2, "classification")


@pytest.mark.parametrize(("source", "warns"), [("input", False), ("feature", True)])
def test_the_unordered_vector_warning_looks_at_the_shapes_the_frm_is_taken_of(source, warns):
    spec = spec_of({"a": (1, 8, 8), "b": (6, 3)}, {"a": (16,), "b": (6, 3)})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        MWAM(frm_source=source).build(spec)
    assert any("no frequency meaning" in str(w.message) for w in caught) == warns
    spec = spec_of({"a": (16,), "b": (6, 3)}, {"a": (1, 8, 8), "b": (6, 3)})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        MWAM(frm_source=source).build(spec)
    assert any("no frequency meaning" in str(w.message) for w in caught) != warns


def test_boundary_values_ema_zero_and_sharpness_zero_are_accepted():
    weighting = built(ema=0.0, sharpness=0.0, soft_begin=False)
    features, mask, steps = batch_of(0)
    weights = weighting.step({n: torch.tensor(v) for n, v in features.items()}, torch.tensor(mask))
    np.testing.assert_allclose(weights.numpy(), 1.5 - 0.5)  # s = 0: w = α − β σ(0) = α − β/2


# -- block DCT ---------------------------------------------------------------------------------


def test_dct_matrix_rejects_an_empty_axis_naming_n():
    with pytest.raises(ValueError, match="dct_matrix: n must be >= 1, got 0"):
        dct_matrix(0)


def test_float32_inputs_give_float32_coefficients_equal_to_scipy():
    rng = np.random.default_rng(5)
    assert dct_matrix(4).dtype == torch.float32
    vector = rng.normal(size=(2, 8)).astype(np.float32)
    low, high = block_dct_vector(torch.tensor(vector), 4, 1)
    reference = scipy.fft.dct(vector.astype(np.float64).reshape(2, 2, 4), norm="ortho", axis=-1)
    assert low.dtype == high.dtype == torch.float32
    np.testing.assert_allclose(low.numpy(), reference[..., :1], atol=1e-5)
    np.testing.assert_allclose(high.numpy(), reference[..., 3:], atol=1e-5)
    sequence = rng.normal(size=(2, 8, 3)).astype(np.float32)
    low, high = block_dct_sequence(torch.tensor(sequence), 4, 2)
    reference = scipy.fft.dct(sequence.astype(np.float64).reshape(2, 2, 4, 3), norm="ortho", axis=2)
    assert low.dtype == torch.float32
    np.testing.assert_allclose(low.numpy(), reference[:, :, :2], atol=1e-5)
    np.testing.assert_allclose(high.numpy(), reference[:, :, [3, 2]], atol=1e-5)
    image = rng.normal(size=(1, 1, 4, 8)).astype(np.float32)
    low, high = block_dct_image(torch.tensor(image), 4, 1)
    assert low.dtype == torch.float32 and low.shape == (1, 1, 1, 2, 1, 1)
    reference = scipy.fft.dctn(
        image.astype(np.float64).reshape(1, 1, 4, 2, 4).transpose(0, 1, 3, 2, 4),
        axes=(-2, -1),
        norm="ortho",
    )
    np.testing.assert_allclose(low[0, 0, 0, :, 0, 0].numpy(), reference[0, 0, :, 0, 0], atol=1e-5)
    np.testing.assert_allclose(high[0, 0, 0, :, 0, 0].numpy(), reference[0, 0, :, 3, 3], atol=1e-5)


def test_an_axis_of_exactly_patch_size_is_one_full_block_with_the_given_band():
    x = np.random.default_rng(6).normal(size=(2, 8))
    low, high = block_dct_vector(torch.tensor(x), 8, 1)  # short-axis rule would give 8 // 4 = 2
    reference = scipy.fft.dct(x, norm="ortho", axis=-1)
    assert low.shape == (2, 1, 1)
    np.testing.assert_allclose(low[:, 0, 0].numpy(), reference[:, 0], atol=1e-12)
    np.testing.assert_allclose(high[:, 0, 0].numpy(), reference[:, 7], atol=1e-12)


def test_short_axes_take_a_quarter_of_their_length_as_band_per_axis():
    """H = 12 < P = 16: one block with k = 12 // 4 = 3; W = 32: two blocks with k = 2."""
    x = np.random.default_rng(7).normal(size=(1, 1, 12, 32))
    low, high = block_dct_image(torch.tensor(x), 16, 2)
    assert low.shape == high.shape == (1, 1, 1, 2, 3, 2)
    blocks = x.reshape(1, 1, 1, 12, 2, 16).transpose(0, 1, 2, 4, 3, 5)
    reference = scipy.fft.dctn(blocks, axes=(-2, -1), norm="ortho")
    np.testing.assert_allclose(low.numpy(), reference[..., :3, :2], atol=1e-12)
    np.testing.assert_allclose(high.numpy(), reference[..., ::-1, ::-1][..., :3, :2], atol=1e-12)
