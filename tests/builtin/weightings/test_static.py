"""static: global learned weights, softmax-normalised over the present modalities."""

import numpy as np
import pytest
import torch
from weightings_helpers import build_network, make_batch, make_data

from fusekit import FusionClassifier
from fusekit.builtin.static_weighting import StaticWeighting, present_softmax
from fusekit.plugin import FusionOutput


def test_weights_are_softmax_over_present_modalities():
    weighting = StaticWeighting(init={"a": 1.0, "b": 0.0, "c": -1.0})
    build_network(weighting, shapes={"a": (2,), "b": (2,), "c": (2,)})
    mask = torch.tensor([[True, True, True], [True, False, True], [False, False, False]])
    features = {m: torch.ones(3, 2) * mask[:, [i]] for i, m in enumerate("abc")}
    output = FusionOutput(mask=mask)
    scaled = weighting.reweight(features, mask, output)
    theta = torch.tensor([1.0, 0.0, -1.0])
    full = torch.softmax(theta, dim=0)
    partial = torch.softmax(theta[[0, 2]], dim=0)
    expected = torch.tensor([full.tolist(), [partial[0], 0.0, partial[1]], [0.0, 0.0, 0.0]])
    torch.testing.assert_close(output.modality_weights, expected)
    # features scaled by n_present · a_m; absent rows stay zero
    torch.testing.assert_close(scaled["a"][:, 0], torch.tensor([3 * full[0], 2 * partial[0], 0.0]))
    assert torch.all(scaled["b"][1:] == 0)


def test_present_softmax_has_finite_gradient_when_all_absent():
    scores = torch.zeros(2, 3, requires_grad=True)
    mask = torch.tensor([[False, False, False], [True, False, True]])
    weights = present_softmax(scores, mask)
    weights.sum().backward()
    assert torch.isfinite(scores.grad).all()
    torch.testing.assert_close(weights.sum(dim=1), torch.tensor([0.0, 1.0]))


def test_weights_are_learned_and_fixed_when_not_learnable():
    X, y = make_data(2, missing=0.0)
    learned = FusionClassifier(weighting="static", max_epochs=3, random_state=0).fit(X, y)
    assert not torch.allclose(learned.module_.weighting.weight_logits, torch.zeros(2))
    fixed = FusionClassifier(
        weighting="static",
        weighting__learnable=False,
        weighting__init={"a": 2.0},
        max_epochs=3,
        random_state=0,
    ).fit(X, y)
    np.testing.assert_allclose(fixed.module_.weighting.weight_logits.detach(), [2.0, 0.0])


def test_uniform_weights_leave_features_unchanged():
    weighting = StaticWeighting()
    network = build_network(weighting)
    batch = make_batch()
    output = FusionOutput(mask=batch.mask)
    features = network.encode(batch)
    scaled = weighting.reweight(features, batch.mask, output)
    for name in features:
        torch.testing.assert_close(scaled[name], features[name])


def test_init_naming_an_unknown_modality_is_a_clear_error():
    with pytest.raises(
        ValueError, match=r"static: init names modalities \['z'\], but the data has \['a', 'b'\]"
    ):
        build_network(StaticWeighting(init={"a": 1.0, "z": 2.0}))
