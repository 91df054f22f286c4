"""Ctrl-C (SIGINT) during fit propagates; a callback's KeyboardInterrupt only ends training."""

import os
import signal

import numpy as np
import pytest
from sklearn.model_selection import cross_validate
from skorch.callbacks import Callback

from fusekit import FusionClassifier, Modalities
from fusekit.engine.interrupts import watch_interrupts


class SignalAtEpoch(Callback):
    """Sends this process SIGINT at the end of epoch ``epoch``, as Ctrl-C would."""

    def __init__(self, epoch: int = 2) -> None:
        self.epoch = epoch

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            os.kill(os.getpid(), signal.SIGINT)


class RaiseAtEpoch(Callback):
    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == 2:
            raise KeyboardInterrupt  # skorch's convention for "stop training" (EarlyStopping)


@pytest.fixture
def vectors():
    rng = np.random.default_rng(0)
    X = Modalities(a=rng.normal(size=(60, 3)), b=rng.normal(size=(60, 2)))
    y = (X["a"][:, 0] > 0).astype(int)
    return X, y


def test_sigint_during_fit_propagates_and_leaves_an_unfitted_estimator_unfitted(vectors):
    X, y = vectors
    model = FusionClassifier(max_epochs=10, callbacks=[SignalAtEpoch()], random_state=0)
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, y)
    assert not hasattr(model, "net_")


def test_sigint_during_cross_validate_is_not_scored(vectors):
    X, y = vectors
    model = FusionClassifier(max_epochs=10, callbacks=[SignalAtEpoch()], random_state=0)
    with pytest.raises(KeyboardInterrupt):
        cross_validate(model, X, y, cv=2, error_score=np.nan)


def test_callback_keyboard_interrupt_still_ends_training_normally(vectors):
    X, y = vectors
    model = FusionClassifier(max_epochs=10, callbacks=[RaiseAtEpoch()], random_state=0).fit(X, y)
    assert len(model.net_.history) == 2
    assert np.isfinite(model.predict_proba(X)).all()


def test_watch_restores_the_previous_sigint_handler():
    before = signal.getsignal(signal.SIGINT)
    with watch_interrupts() as interrupted:
        assert signal.getsignal(signal.SIGINT) is not before
        assert not interrupted()
    assert signal.getsignal(signal.SIGINT) is before


def test_watch_records_a_signal_and_still_raises():
    with pytest.raises(KeyboardInterrupt), watch_interrupts() as interrupted:
        os.kill(os.getpid(), signal.SIGINT)
    assert interrupted()
