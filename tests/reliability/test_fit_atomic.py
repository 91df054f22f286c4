"""A fit that raises leaves the estimator exactly as it was: fitted with the previous model, or
unfitted. Checked on the attribute names, ``classes_``/target scaling and the predictions."""

import os
import signal

import numpy as np
import pandas as pd
import pytest
import torch
from skorch.callbacks import Callback

from fusekit import FusionClassifier, FusionRegressor, Modalities
from reliability.raising import raises_exactly


class FailAtEpoch(Callback):
    """Raises ``RuntimeError`` at the end of epoch ``epoch`` (a failure during training)."""

    def __init__(self, epoch: int = 1) -> None:
        self.epoch = epoch

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) >= self.epoch:
            raise RuntimeError("plugin failure during training")


class SignalAtEpoch(Callback):
    def on_epoch_end(self, net, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C


def _data(n: int = 24, classes: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = Modalities(a=rng.normal(size=(n, 3)), b=rng.normal(size=(n, 2)))
    y = np.arange(n) % classes
    return X, y


def _snapshot(model):
    """What a failed fit must not change: attribute names and the fitted values by identity."""
    return dict(vars(model))


def _assert_unchanged(model, before, X, proba):
    assert sorted(vars(model)) == sorted(before)
    for key, value in before.items():
        assert vars(model)[key] is value, f"attribute {key} was replaced"
    np.testing.assert_array_equal(model.predict_proba(X), proba)


@pytest.fixture
def fitted():
    X, y = _data()
    model = FusionClassifier(max_epochs=2, random_state=0).fit(X, y)
    return model, X, model.predict_proba(X)


def test_refit_with_one_class_keeps_the_previous_layout_and_model(fitted):
    model, X, proba = fitted
    before = _snapshot(model)
    other = Modalities(c=np.zeros((6, 4)))  # new layout; y fails validation afterwards
    with raises_exactly(ValueError, "contains only one class"):
        model.fit(other, np.zeros(6, dtype=int))
    _assert_unchanged(model, before, X, proba)


def test_refit_failing_in_training_keeps_the_previous_classes_and_network(fitted):
    model, X, proba = fitted
    before = _snapshot(model)
    X2, y2 = _data(classes=2, seed=1)
    model.set_params(callbacks=[FailAtEpoch(1)])
    with raises_exactly(RuntimeError, "plugin failure during training"):
        model.fit(X2, np.where(y2 == 0, "no", "yes"))
    model.set_params(callbacks=None)
    assert model.classes_.tolist() == [0, 1, 2]
    before["callbacks"] = None
    _assert_unchanged(model, before, X, proba)
    assert model.predict(X).dtype == np.array([0]).dtype  # labels still the fitted classes


def test_failed_warm_start_leaves_the_fitted_network_untouched():
    X, y = _data()
    model = FusionClassifier(max_epochs=2, warm_start=True, random_state=0).fit(X, y)
    proba = model.predict_proba(X)
    weights = {k: v.clone() for k, v in model.module_.state_dict().items()}
    history = len(model.net_.history)
    model.set_params(callbacks=[FailAtEpoch(history + 1)])  # after one more trained epoch
    with raises_exactly(RuntimeError, "plugin failure"):
        model.fit(X, y)
    torch.testing.assert_close(model.module_.state_dict(), weights, rtol=0, atol=0)
    assert len(model.net_.history) == history and model.n_iter_ == history
    np.testing.assert_array_equal(model.predict_proba(X), proba)


def test_failed_first_fit_leaves_an_unfitted_estimator():
    X, y = _data()
    model = FusionClassifier(max_epochs=2)
    names = sorted(vars(model))
    with raises_exactly(ValueError, "contains only one class"):
        model.fit(X, np.zeros(len(y), dtype=int))
    assert sorted(vars(model)) == names  # no layout_, modalities_, standardizer_, n_features_in_


def test_failed_first_fit_on_a_table_records_no_features():
    X = np.random.default_rng(0).normal(size=(12, 4))
    model = FusionClassifier(max_epochs=2, modalities={"a": 2, "b": 2})
    with raises_exactly(ValueError, "contains only one class"):
        model.fit(X, np.zeros(12, dtype=int))
    assert not hasattr(model, "n_features_in_") and not hasattr(model, "layout_")


def test_failed_refit_on_an_array_keeps_the_fitted_feature_names():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(20, 4)), columns=["a__x", "a__y", "b__x", "b__y"])
    y = np.arange(20) % 2
    model = FusionClassifier(max_epochs=2, random_state=0).fit(frame, y)
    proba = model.predict_proba(frame)
    before = _snapshot(model)
    with raises_exactly(ValueError, "contains only one class"):
        model.fit(frame.to_numpy(), np.zeros(20, dtype=int))  # would drop feature_names_in_
    _assert_unchanged(model, before, frame, proba)


def test_failed_regressor_refit_keeps_the_target_scaling():
    X, _ = _data()
    y = np.linspace(-1.0, 1.0, len(X["a"]))
    model = FusionRegressor(max_epochs=2, random_state=0).fit(X, y)
    prediction = model.predict(X)
    mean, scale = model.y_mean_, model.y_scale_
    with raises_exactly(ValueError, "y cannot be standardised"):
        model.fit(X, np.c_[y, y * 1e308])  # two outputs; the second overflows
    assert model.n_outputs_ == 1 and model.y_mean_ is mean and model.y_scale_ is scale
    np.testing.assert_array_equal(model.predict(X), prediction)


def test_ctrl_c_during_a_refit_keeps_the_previous_model(fitted):
    model, X, proba = fitted
    before = _snapshot(model)
    X2, y2 = _data(classes=2, seed=3)
    model.set_params(callbacks=[SignalAtEpoch()])
    with raises_exactly(KeyboardInterrupt, None):
        model.fit(X2, y2)
    model.set_params(callbacks=None)
    before["callbacks"] = None
    _assert_unchanged(model, before, X, proba)


def test_a_successful_refit_after_a_failed_one_works(fitted):
    model, X, _ = fitted
    with raises_exactly(ValueError, "contains only one class"):
        model.fit(X, np.zeros(len(X["a"]), dtype=int))
    X2, y2 = _data(classes=2, seed=4)
    model.fit(X2, y2)
    assert model.classes_.tolist() == [0, 1] and model.predict_proba(X2).shape == (24, 2)
