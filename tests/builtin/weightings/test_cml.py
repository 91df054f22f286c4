"""cml: Σ ReLU((Conf(S_j) − Conf(S_{j−1})) · σ) over nested modality subsets, (C1)-(C4).

Expected values are worked by hand (or in numpy from a linear head whose weights the test sets)
from the equations in the module docstring, never read back from the implementation.
"""

import math

import numpy as np
import pytest
import torch
from balancing_helpers import build_network, loss_context, make_data, training_context

from fusekit import FusionClassifier, FusionRegressor
from fusekit.builtin.cml_weighting import CMLWeighting, confidence_penalty
from fusekit.plugin import ModalityBatch

LN3 = math.log(3.0)


def test_penalty_by_hand():
    """Two classes. Row 0: larger conf 0.75 (logits 0, ln 3), smaller conf 0.9 (0, ln 9):
    penalty 0.15. Row 1: the smaller set is less confident: 0. Row 2 is not counted."""
    larger = torch.tensor([[0.0, LN3], [0.0, math.log(9.0)], [0.0, 5.0]])
    smaller = torch.tensor([[0.0, math.log(9.0)], [0.0, LN3], [0.0, 9.0]])
    target = torch.tensor([1, 1, 1])
    rows = torch.tensor([True, True, False])
    value = confidence_penalty(larger, smaller, target, rows, exempt_right_smaller=True)
    torch.testing.assert_close(value, torch.tensor(0.9 - 0.75))


def test_sign_trick_exempts_a_right_smaller_set_with_a_wrong_larger_one():
    """Larger predicts class 0 (conf 0.75, wrong), smaller class 1 (conf 0.9, right):
    exempt with the trick (0), 0.9 − 0.75 without it. A right larger set with a wrong smaller
    one is penalised either way (BalanceBenchmark's σ would exempt it)."""
    larger = torch.tensor([[LN3, 0.0], [0.0, LN3]])
    smaller = torch.tensor([[0.0, math.log(9.0)], [math.log(9.0), 0.0]])
    target = torch.tensor([1, 1])
    only = [torch.tensor([True, False]), torch.tensor([False, True])]
    with_trick = confidence_penalty(larger, smaller, target, only[0], True)
    without = confidence_penalty(larger, smaller, target, only[0], False)
    torch.testing.assert_close(with_trick, torch.tensor(0.0))
    torch.testing.assert_close(without, torch.tensor(0.15))
    wrong_smaller = confidence_penalty(larger, smaller, target, only[1], True)
    torch.testing.assert_close(wrong_smaller, torch.tensor(0.15))


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _linear_network(weighting, shapes, weight, bias):
    network = build_network(weighting, shapes=shapes, n_outputs=weight.shape[0], identity=True)
    with torch.no_grad():
        network.head.weight.copy_(torch.tensor(weight, dtype=torch.float32))
        network.head.bias.copy_(torch.tensor(bias, dtype=torch.float32))
    return network


def _batch(features, mask):
    tensors = {m: torch.tensor(v, dtype=torch.float32) for m, v in features.items()}
    return ModalityBatch(tensors, torch.tensor(mask)).with_mask(torch.tensor(mask))


def _expected(features, mask, target, weight, bias, removals, lam):
    """(C3)/(C4) in numpy: concat of identity features, absent or removed ones zeroed."""
    names = list(features)
    present = np.array(mask, dtype=bool)
    keep = np.ones(len(names), dtype=bool)

    def logits(columns):
        blocks = [features[m] * columns[:, [p]] for p, m in enumerate(names)]
        return np.concatenate(blocks, axis=1) @ weight.T + bias

    larger = logits(present)
    penalty, subsets = 0.0, 0.0
    for position in removals:
        keep[position] = False
        subset = present & keep
        rows = subset.any(axis=1)
        smaller = logits(subset)
        p_large, p_small = _softmax(larger), _softmax(smaller)
        exempt = (p_small.argmax(1) == target) & (p_large.argmax(1) != target)
        diff = (p_small.max(1) - p_large.max(1)) * rows * ~exempt
        penalty += np.maximum(diff, 0.0).sum()
        ce = -np.log(p_small[np.arange(len(target)), target])
        subsets += (ce * rows).sum() / max(rows.sum(), 1)
        larger = smaller
    return lam * penalty, subsets


@pytest.mark.parametrize(
    ("mask", "order", "removals"),
    [
        ([[True, True, True]] * 5, [2, 0, 1], [1, 0]),  # remove b, then a: c left
        ([[True, True, True]] * 5, [1, 2, 0], [0, 2]),
        # missing: row 1 lacks b (no change when b goes), row 3 has only b (nothing left)
        ([[1, 1, 1], [1, 0, 1], [1, 1, 1], [0, 1, 0], [1, 1, 0]], [2, 0, 1], [1, 0]),
    ],
)
def test_loss_terms_of_a_linear_model_match_numpy(mask, order, removals):
    rng = np.random.default_rng(3)
    features = {
        "a": rng.normal(size=(5, 2)),
        "b": rng.normal(size=(5, 1)),
        "c": rng.normal(size=(5, 2)),
    }
    mask = np.array(mask, dtype=bool)
    for p, m in enumerate(features):
        features[m] = features[m] * mask[:, [p]]
    weight, bias = rng.normal(size=(3, 5)) * 2, rng.normal(size=3)
    target = np.array([0, 1, 2, 1, 0])
    weighting = CMLWeighting(lam=0.5)
    shapes = {m: v.shape[1:] for m, v in features.items()}
    network = _linear_network(weighting, shapes, weight, bias)
    weighting.removal_order = order
    batch = _batch(features, mask.tolist())
    network.train()
    output = network(batch)
    terms = weighting.loss_terms(output, loss_context(network, batch, torch.tensor(target)))
    penalty, subsets = _expected(features, mask, target, weight, bias, removals, 0.5)
    torch.testing.assert_close(terms["cml_confidence"], torch.tensor(penalty, dtype=torch.float32))
    torch.testing.assert_close(terms["cml_subsets"], torch.tensor(subsets, dtype=torch.float32))


def test_the_regulariser_trains_the_encoders_fusion_and_head():
    """An untrained MLP network whose confidence rises when b is removed (checked): the penalty
    alone sends gradients to both encoders and the head."""
    torch.manual_seed(0)
    weighting = CMLWeighting(lam=1.0, subset_loss=False, sign_trick=False)
    shapes = {"a": (6,), "b": (5, 3)}
    network = build_network(weighting, shapes=shapes)
    network.train()
    generator = torch.Generator().manual_seed(0)
    features = {m: torch.randn(16, *s, generator=generator) for m, s in shapes.items()}
    batch = ModalityBatch(features, torch.ones(16, 2, dtype=torch.bool))
    output = network(batch)
    terms = weighting.loss_terms(output, loss_context(network, batch, torch.zeros(16).long()))
    assert set(terms) == {"cml_confidence"}
    assert terms["cml_confidence"] > 0
    terms["cml_confidence"].backward()
    for name in ("a", "b"):
        grads = [p.grad for p in network.backbones[name].parameters() if p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads), name
    assert network.head.weight.grad.abs().sum() > 0


def test_nothing_outside_training_or_the_window():
    weighting = CMLWeighting(start_epoch=2, end_epoch=3)
    shapes = {"a": (2,), "b": (1,)}
    network = _linear_network(weighting, shapes, np.ones((2, 3)), np.zeros(2))
    batch = _batch({"a": np.ones((2, 2)), "b": np.ones((2, 1))}, [[True, True]] * 2)
    target = torch.tensor([0, 1])
    output = network(batch)
    for epoch, training, expected in [(1, True, False), (2, True, True), (4, True, False),
                                      (2, False, False)]:  # fmt: skip
        weighting.on_epoch_begin(training_context(network, epoch=epoch))
        terms = weighting.loss_terms(output, loss_context(network, batch, target, training))
        assert bool(terms) is expected, (epoch, training)


def test_removal_order_is_redrawn_each_epoch_from_torchs_generator():
    weighting = CMLWeighting()
    network = build_network(weighting, shapes={"a": (2,), "b": (2,), "c": (2,), "d": (2,)})
    torch.manual_seed(5)
    expected = [torch.randperm(4).tolist() for _ in range(3)]
    torch.manual_seed(5)
    seen = []
    for epoch in range(3):
        weighting.on_epoch_begin(training_context(network, epoch=epoch))
        seen.append(list(weighting.removal_order))
    assert seen == expected


def test_fits_and_is_reproducible():
    X, y = make_data(3)
    first = FusionClassifier(weighting="cml", max_epochs=3, random_state=0).fit(X, y)
    second = FusionClassifier(weighting="cml", max_epochs=3, random_state=0).fit(X, y)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    assert first.score(X, y) > 0.6


def test_composes_with_another_weighting():
    X, y = make_data(2)
    model = FusionClassifier(weighting=["modality_dropout", "cml"], max_epochs=2, random_state=0)
    assert np.isfinite(model.fit(X, y).predict_proba(X)).all()


def test_regression_is_refused():
    X, y = make_data(2)
    with pytest.raises(ValueError, match="cml: needs a classification task"):
        FusionRegressor(weighting="cml", max_epochs=1).fit(X, y.astype(float))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"lam": -0.1}, "'lam' parameter of weighting cml must be a float"),
        ({"start_epoch": 3, "end_epoch": 1}, "cml: end_epoch must be None or >= start_epoch"),
        ({"subset_loss": "yes"}, "'subset_loss' parameter of weighting cml must be"),
    ],
)
def test_bad_parameters_name_themselves(params, message):
    X, y = make_data(2)
    model = FusionClassifier(
        weighting="cml", max_epochs=1, **{f"weighting__{k}": v for k, v in params.items()}
    )
    with pytest.raises(ValueError, match=message):
        model.fit(X, y)
