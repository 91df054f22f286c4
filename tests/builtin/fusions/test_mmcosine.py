"""mmcosine: z = Σ_m s · cos(h_m, W_m) over present modalities (C1)-(C2), worked by hand."""

import numpy as np
import pytest
import torch

from fusekit import FusionClassifier, FusionRegressor
from fusekit.builtin.mmcosine_fusion import MMCosineFusion, cosine_logits
from fusekit.plugin import BuildSpec, FusionOutput
from fusekit.testing.fixtures import make_data


def _fusion(scaling=10.0, shapes=None, classes=2):
    shapes = shapes or {"a": (2,), "b": (3,)}
    spec = BuildSpec(tuple(shapes), shapes, shapes, classes, "classification")
    fusion = MMCosineFusion(scaling=scaling)
    fusion.build(spec)
    return fusion


def test_cosine_logits_by_hand():
    """h = (3, 4) → (0.6, 0.8); class rows (1, 0) and (0, 2) → (1, 0), (0, 1): s·(0.6, 0.8)."""
    logits = cosine_logits(torch.tensor([[3.0, 4.0]]), torch.tensor([[1.0, 0.0], [0.0, 2.0]]), 10)
    torch.testing.assert_close(logits, torch.tensor([[6.0, 8.0]]))


def test_fused_logits_sum_the_present_modalities_by_hand():
    fusion = _fusion(scaling=2.0)
    with torch.no_grad():
        fusion.weights["a"].copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        fusion.weights["b"].copy_(torch.tensor([[0.0, 0.0, 5.0], [1.0, 0.0, 0.0]]))
    features = {
        "a": torch.tensor([[1.0, 1.0], [2.0, 0.0]]),
        "b": torch.tensor([[0.0, 3.0, 4.0], [1.0, 0.0, 0.0]]),
    }
    mask = torch.tensor([[True, True], [True, False]])
    output = FusionOutput(mask=mask)
    logits = fusion(features, mask, output)
    unimodal = output.diagnostics["mmcosine_unimodal"]
    torch.testing.assert_close(unimodal["b"][0], torch.tensor([1.6, 0.0]))
    torch.testing.assert_close(unimodal["b"][1], torch.zeros(2))  # absent: left out
    r = 1 / np.sqrt(2)
    expected = torch.tensor(
        [
            [2 * r + 2 * 0.8, 2 * r + 0.0],  # a: cos = (r, r); b: (0, 3, 4)/5 → (0.8, 0)
            [2 * 1.0, 0.0],  # b absent: a alone, cos = (1, 0)
        ],
        dtype=torch.float32,
    )
    torch.testing.assert_close(logits, expected)


def test_feature_and_weight_norms_do_not_matter():
    fusion = _fusion()
    features = {"a": torch.randn(4, 2), "b": torch.randn(4, 3)}
    mask = torch.ones(4, 2, dtype=torch.bool)
    before = fusion(features, mask, FusionOutput(mask=mask))
    scaled = {"a": features["a"] * 50.0, "b": features["b"] * 0.01}
    with torch.no_grad():
        fusion.weights["b"].mul_(7.0)
    after = fusion(scaled, mask, FusionOutput(mask=mask))
    torch.testing.assert_close(before, after)
    assert before.abs().max() <= 2 * 10.0 + 1e-5  # |z| ≤ s · M


def test_no_modality_present_gives_zeros():
    fusion = _fusion()
    mask = torch.zeros(3, 2, dtype=torch.bool)
    features = {"a": torch.zeros(3, 2), "b": torch.zeros(3, 3)}
    torch.testing.assert_close(fusion(features, mask, FusionOutput(mask=mask)), torch.zeros(3, 2))


def test_fits_and_composes_with_a_weighting():
    X, y = make_data(2)
    model = FusionClassifier(fusion="mmcosine", weighting="ogm_ge", max_epochs=5, random_state=0)
    assert model.fit(X, y).score(X, y) > 0.6


def test_regression_and_bad_scaling_are_refused():
    X, y = make_data(2)
    with pytest.raises(ValueError, match="mmcosine: needs a classification task"):
        FusionRegressor(fusion="mmcosine", max_epochs=1).fit(X, y.astype(float))
    with pytest.raises(ValueError, match=r"'scaling' parameter of fusion mmcosine must be"):
        FusionClassifier(fusion="mmcosine", fusion__scaling=0, max_epochs=1).fit(X, y)
