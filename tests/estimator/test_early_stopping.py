"""``early_stopping``: a stratified, shuffled, seeded validation split; best weights restored."""

import numpy as np
import pytest
from sklearn.metrics import log_loss
from skorch.dataset import ValidSplit

from fusekit import FusionClassifier, FusionRegressor
from fusekit.datasets import load_mfeat


def _stop_epoch(scores: list[float], patience: int, tol: float) -> int:
    """Reference: MLPClassifier's rule on recorded scores -> the 1-based epoch training stops at."""
    best, misses = -np.inf, 0
    for epoch, score in enumerate(scores, start=1):
        misses = misses + 1 if score < best + tol else 0
        best = max(best, score)
        if misses >= patience:
            return epoch
    return len(scores)


@pytest.fixture(scope="module")
def mfeat():
    X, y = load_mfeat()  # as loaded: sorted by class, 200 rows of each digit
    assert np.all(np.diff(y) >= 0)
    return X, y


def test_early_stopping_on_class_sorted_mfeat(mfeat, train_seed):
    """Seeds 0..5: stops after 13-25 of 100 epochs (best 3-15); best validation loss 0.013-0.125
    (skorch's unshuffled ValidSplit gives ~13 on the same data); the recomputed validation log
    loss of the restored model equals the recorded best to 1e-6."""
    X, y = mfeat
    model = FusionClassifier(max_epochs=100, early_stopping=True, random_state=train_seed)
    model.fit(X, y)
    valid = model.net_.train_split.valid_rows
    # stratified, shuffled split: every digit holds 10% of its rows out
    assert np.bincount(y[valid]).tolist() == [20] * 10
    # stops by the rule, after a plausible number of epochs
    assert model.n_iter_ == _stop_epoch(model.validation_scores_, 10, 1e-4)
    assert 10 < model.n_iter_ < 100
    assert model.best_epoch_ == int(np.argmax(model.validation_scores_)) + 1
    best_loss = -model.validation_scores_[model.best_epoch_ - 1]
    assert best_loss < 0.3  # of the order of the training loss, not ~13
    # the restored weights are the best epoch's: recompute the validation loss from the model
    rows = {name: array[valid] for name, array in X.items()}
    recomputed = log_loss(y[valid], model.predict_proba(rows), labels=model.classes_)
    assert recomputed == pytest.approx(best_loss, rel=1e-5)
    if model.best_epoch_ != model.n_iter_:
        assert recomputed != pytest.approx(-model.validation_scores_[-1], rel=1e-3)
    assert len(model.loss_curve_) == model.n_iter_


def test_split_is_seeded_by_random_state_and_a_fraction_of_the_rows():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(100, 4)), np.repeat([0, 1], 50)
    params = dict(modalities={"a": 2, "b": 2}, max_epochs=2, early_stopping=True)
    first = FusionClassifier(random_state=3, validation_fraction=0.2, **params).fit(X, y)
    again = FusionClassifier(random_state=3, validation_fraction=0.2, **params).fit(X, y)
    other = FusionClassifier(random_state=4, validation_fraction=0.2, **params).fit(X, y)
    rows = first.net_.train_split.valid_rows
    assert len(rows) == 20 and np.bincount(y[rows]).tolist() == [10, 10]
    np.testing.assert_array_equal(rows, again.net_.train_split.valid_rows)
    assert not np.array_equal(rows, other.net_.train_split.valid_rows)
    assert not set(rows) & set(first.net_.train_split.train_rows)


def test_regressor_early_stopping_and_no_validation_without_it():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4))
    y = X[:, 0] - X[:, 2]
    model = FusionRegressor(
        modalities={"a": 2, "b": 2}, max_epochs=40, early_stopping=True, n_iter_no_change=3
    ).fit(X, y)
    assert model.best_epoch_ is not None and len(model.validation_scores_) == model.n_iter_
    plain = FusionRegressor(modalities={"a": 2, "b": 2}, max_epochs=3).fit(X, y)
    assert plain.n_iter_ == 3 and plain.validation_scores_ is None and plain.best_epoch_ is None


def test_user_train_split_keeps_working_and_conflicts_with_early_stopping():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 4)), np.tile([0, 1], 30)
    params = dict(modalities={"a": 2, "b": 2}, max_epochs=2)
    model = FusionClassifier(train_split=ValidSplit(5), **params).fit(X, y)
    assert len(model.validation_scores_) == 2 and model.best_epoch_ is None
    with pytest.raises(ValueError, match="train_split"):
        FusionClassifier(train_split=ValidSplit(5), early_stopping=True, **params).fit(X, y)


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("validation_fraction", 0.0),
        ("validation_fraction", 1.0),
        ("n_iter_no_change", 0),
        ("tol", -1),
    ],
)
def test_bad_early_stopping_parameters_are_named(param, value):
    X, y = np.random.default_rng(0).normal(size=(40, 4)), np.tile([0, 1], 20)
    model = FusionClassifier(modalities={"a": 2, "b": 2}, early_stopping=True, **{param: value})
    with pytest.raises(ValueError, match=param):
        model.fit(X, y)


def test_a_split_too_small_for_the_classes_names_early_stopping():
    X, y = np.random.default_rng(0).normal(size=(12, 4)), np.repeat([0, 1, 2], 4)
    model = FusionClassifier(modalities={"a": 2, "b": 2}, early_stopping=True)
    with pytest.raises(ValueError, match="early_stopping=True cannot hold out"):
        model.fit(X, y)


def test_weighted_validation_loss_over_several_batches_is_the_weighted_log_loss():
    """With sample weights the validation loss is Σ w ℓ / Σ w over all held-out rows (sklearn's
    weighted log loss of the model), not the row-count average of per-batch weighted means:
    150 held-out rows in 5 batches of 32 (the last of 22), weights 1-10."""
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 200)
    X = {"a": rng.normal(size=(600, 3)) + y[:, None], "b": rng.normal(size=(600, 2))}
    weights = rng.integers(1, 11, size=600).astype(float)
    model = FusionClassifier(
        max_epochs=1, batch_size=32, early_stopping=True, validation_fraction=0.25, random_state=0
    ).fit(X, y, sample_weight=weights)
    valid = model.net_.train_split.valid_rows
    assert len(valid) == 150
    rows = {name: array[valid] for name, array in X.items()}
    expected = log_loss(y[valid], model.predict_proba(rows), sample_weight=weights[valid])
    assert -model.validation_scores_[0] == pytest.approx(expected, rel=1e-5)
    unweighted = log_loss(y[valid], model.predict_proba(rows))
    assert expected != pytest.approx(unweighted, rel=1e-3)  # the weights matter here
