"""relearning (D&R): cluster purity (R1)-(R2), α = tanh(λ|gap|) (R3), soft re-initialisation (R4).

Expected values are worked by hand or come from a re-implementation of the official code's
``purity_score`` in the test, never from the weighting's own output.
"""

import math

import numpy as np
import pytest
import torch
from balancing_helpers import build_network, make_data, training_context

from fusekit import FusionClassifier, FusionRegressor
from fusekit.builtin.relearning_weighting import (
    RelearningWeighting,
    cluster_purity,
    purity,
    relearning_strength,
)
from fusekit.plugin import TrainingData
from fusekit.testing import parametrize_with_checks
from fusekit.testing.fixtures import make_batch


def official_purity_score(y_true, y_pred):
    """GeWu-Lab/Diagnosing_Relearning_ECCV2024 ``purity_score``: majority label per cluster."""
    y_true = y_true.copy()
    voted = np.zeros(y_true.shape)
    labels = np.unique(y_true)
    for k, label in enumerate(labels):
        y_true[y_true == label] = k
    labels = np.unique(y_true)
    bins = np.concatenate((labels, [np.max(labels) + 1]))
    for cluster in np.unique(y_pred):
        hist, _ = np.histogram(y_true[y_pred == cluster], bins=bins)
        voted[y_pred == cluster] = np.argmax(hist)
    return float((y_true == voted).mean())


def test_purity_by_hand():
    """Cluster 0 holds classes (0, 0, 1): 2 right; cluster 1 holds (1, 1, 2): 2 right; 4/6."""
    labels = np.array([0, 0, 1, 1, 1, 2])
    clusters = np.array([0, 0, 0, 1, 1, 1])
    assert purity(labels, clusters) == pytest.approx(4 / 6)


@pytest.mark.parametrize("seed", range(5))
def test_purity_equals_the_official_code(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, 50)
    clusters = rng.integers(0, 4, 50)
    assert purity(labels, clusters) == pytest.approx(official_purity_score(labels, clusters))


def test_separable_features_are_pure_and_noise_is_not():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 30)
    separable = rng.normal(size=(90, 4)) * 0.1 + 10.0 * labels[:, None]
    assert cluster_purity(separable, labels, 3) == 1.0
    noise = rng.normal(size=(90, 4))
    assert cluster_purity(noise, labels, 3) < 0.7


def test_strength_by_hand():
    assert relearning_strength(0.1, 3.0) == pytest.approx(math.tanh(0.3))
    assert relearning_strength(-0.2, 3.0) == pytest.approx(math.tanh(0.6))  # |gap|
    assert relearning_strength(0.0, 3.0) == 0.0


def _network(weighting):
    torch.manual_seed(0)
    return build_network(weighting, shapes={"a": (6,), "b": (5, 3)})


def test_reinitialisation_mixes_initial_and_current_encoder_weights_on_schedule(monkeypatch):
    """α_a = 0.25, α_b = 0: θ_a ← 0.25 θ_a(0) + 0.75 θ_a; θ_b, fusion and head untouched; only
    at epochs 2 and 4 (reinit_epoch = 2, reinit_num = 2), never at 0 or 6."""
    weighting = RelearningWeighting(reinit_epoch=2, reinit_num=2)
    network = _network(weighting)
    data = TrainingData(make_batch({"a": (6,), "b": (5, 3)}, n=12), torch.zeros(12).long())
    weighting.on_train_begin(training_context(network, data=data))
    initial_a = [p.detach().clone() for p in network.backbones["a"].parameters()]
    monkeypatch.setattr(weighting, "diagnose", lambda ctx: {"a": 0.25, "b": 0.0})
    for epoch in range(7):
        with torch.no_grad():
            for p in network.parameters():
                p.add_(1.0)  # "training" moves every weight by +1 per epoch
        current_a = [p.detach().clone() for p in network.backbones["a"].parameters()]
        current_b = [p.detach().clone() for p in network.backbones["b"].parameters()]
        head = network.head.weight.detach().clone()
        weighting.on_epoch_end(training_context(network, epoch=epoch))
        due = epoch in (2, 4)
        for p, start, now in zip(
            network.backbones["a"].parameters(), initial_a, current_a, strict=True
        ):
            expected = 0.25 * start + 0.75 * now if due else now
            torch.testing.assert_close(p.detach(), expected)
        for p, now in zip(network.backbones["b"].parameters(), current_b, strict=True):
            torch.testing.assert_close(p.detach(), now)
        torch.testing.assert_close(network.head.weight.detach(), head)
    assert [epoch for epoch, _ in weighting.strengths] == [2, 4]


def test_without_a_validation_split_rows_are_held_out_and_not_trained_on():
    X, y = make_data(2, n=200)
    model = FusionClassifier(
        weighting="relearning", weighting__reinit_epoch=2, max_epochs=3, random_state=0
    ).fit(X, y)
    weighting = model.module_.weighting
    assert int(weighting.holdout.sum()) == 20  # validation_fraction 0.1 of 200
    assert [epoch for epoch, _ in weighting.strengths] == [2]
    assert all(0.0 <= a < 1.0 for a in weighting.strengths[0][1].values())
    # a held-out row's loss never reaches the weights: change its label, same fit
    changed = y.copy()
    rows = weighting.holdout.cpu().numpy()
    changed[rows] = (changed[rows] + 1) % 3
    again = FusionClassifier(weighting="relearning", max_epochs=1, random_state=0).fit(X, y)
    moved = FusionClassifier(weighting="relearning", max_epochs=1, random_state=0).fit(X, changed)
    np.testing.assert_allclose(again.predict_proba(X), moved.predict_proba(X), rtol=1e-5)


def test_the_fits_own_validation_split_is_used_when_there_is_one():
    X, y = make_data(2, n=200)
    model = FusionClassifier(
        weighting="relearning",
        weighting__reinit_epoch=1,
        max_epochs=2,
        early_stopping=True,
        random_state=0,
    ).fit(X, y)
    weighting = model.module_.weighting
    assert weighting.holdout is None
    assert [epoch for epoch, _ in weighting.strengths] == [1]


def test_a_modality_with_too_few_present_rows_is_not_reinitialised():
    weighting = RelearningWeighting()
    network = _network(weighting)
    mask = torch.ones(40, 2, dtype=torch.bool)
    mask[2:, 1] = False  # 'b' present on 2 rows only, fewer than the 3 classes
    target = torch.arange(40) % 3
    data = TrainingData(make_batch({"a": (6,), "b": (5, 3)}, n=40, mask=mask), target)
    ctx = training_context(network, data=data, train_rows=torch.arange(30))

    class Loop:
        batch_size = 16

    ctx.loop = Loop()
    weighting.on_train_begin(ctx)
    strengths = weighting.diagnose(ctx)
    assert strengths["b"] == 0.0
    assert 0.0 <= strengths["a"] < 1.0


def test_partial_fit_is_refused():
    X, y = make_data(2)
    with pytest.raises(ValueError, match="relearning"):
        FusionClassifier(weighting="relearning").partial_fit(X, y, classes=np.unique(y))


def test_regression_is_refused():
    X, y = make_data(2)
    with pytest.raises(ValueError, match="relearning: needs a classification task"):
        FusionRegressor(weighting="relearning", max_epochs=1).fit(X, y.astype(float))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"move_lambda": -1.0}, "The 'move_lambda' parameter of weighting relearning must be"),
        ({"reinit_epoch": 0}, "The 'reinit_epoch' parameter of weighting relearning must be"),
        ({"validation_fraction": 0.99}, "relearning: validation_fraction=0.99 of"),
    ],
)
def test_bad_parameters_name_themselves(params, message):
    X, y = make_data(2)
    model = FusionClassifier(
        weighting="relearning", max_epochs=1, **{f"weighting__{k}": v for k, v in params.items()}
    )
    with pytest.raises(ValueError, match=message):
        model.fit(X, y)


@parametrize_with_checks("weighting", ["relearning"], params={"reinit_epoch": 1})
def test_contract_with_a_reinitialisation_every_epoch(plugin, check):
    check(plugin)
