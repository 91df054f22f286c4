"""Frozen backbones run once per fit: outputs remembered per training row, same training."""

import warnings

import numpy as np
import pytest
import torch
from skorch.callbacks import Freezer

from fusekit import FusionClassifier, Modalities
from fusekit.builtin.mlp_backbone import MLPBackbone
from fusekit.engine import frozen_cache
from fusekit.engine.frozen_cache import FrozenCacheWarning
from fusekit.plugin import Weighting

N, EPOCHS, BATCH = 48, 4, 16


class CountingMLP(MLPBackbone):
    """An MLP that records how many rows it encodes and in which mode."""

    rows: list[int] = []
    modes: list[bool] = []

    def forward(self, x):
        CountingMLP.rows.append(x.shape[0])
        CountingMLP.modes.append(self.training)
        return super().forward(x)


class FrozenByClass(CountingMLP):
    """An encoder that is always frozen (a feature extractor)."""

    frozen = True


class Noise(Weighting):
    """A perturbation of the values (not of the mask)."""

    def perturb(self, batch):
        noisy = {m: x + 0.1 * torch.randn_like(x) for m, x in batch.features.items()}
        return type(batch)(**{**batch.__dict__, "features": noisy})


@pytest.fixture(autouse=True)
def _reset_counts():
    CountingMLP.rows.clear()
    CountingMLP.modes.clear()


def _data(n=N, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    return Modalities(
        a=rng.normal(size=(n, 12)).astype(np.float32) + y[:, None],
        b=rng.normal(size=(n, 3)).astype(np.float32),
    ), y


def _model(backbone_a=CountingMLP, **params):
    settings = {
        "max_epochs": EPOCHS,
        "batch_size": BATCH,
        "random_state": 0,
        "shuffle": False,
        "backbone": {"a": backbone_a, "b": "mlp"},
    }
    return FusionClassifier(**{**settings, **params})


def _assert_same_weights(first, second):
    one, two = first.module_.state_dict(), second.module_.state_dict()
    assert list(one) == list(two)
    for key in one:
        assert torch.equal(one[key], two[key]), key


@pytest.mark.parametrize("weighting", ["none", "modality_dropout"])
def test_remembered_outputs_train_exactly_as_running_the_frozen_encoder(weighting):
    """Against plain skorch freezing (Freezer: the encoder runs every batch), shuffling off."""
    X, y = _data()
    remembered = _model(frozen_backbones=("a",), weighting=weighting).fit(X, y)
    if weighting == "none":
        assert sum(CountingMLP.rows) == N  # once per row
    else:  # a row dropped when first seen is encoded when next present
        assert N <= sum(CountingMLP.rows) < N * EPOCHS
    CountingMLP.rows.clear()
    running = _model(callbacks=[Freezer("backbones.a.*")], weighting=weighting).fit(X, y)
    assert sum(CountingMLP.rows) == N * EPOCHS
    _assert_same_weights(remembered, running)
    assert remembered.loss_curve_ == running.loss_curve_
    np.testing.assert_array_equal(remembered.predict_proba(X), running.predict_proba(X))


def test_the_frozen_encoder_runs_once_per_fit_and_once_per_predict():
    X, y = _data()
    model = _model(frozen_backbones=["a"], early_stopping=True, validation_fraction=0.25)
    model.fit(X, y)
    assert sum(CountingMLP.rows) == N  # training and validation rows, each once
    assert len(CountingMLP.rows) == 3 + 1  # first epoch's 3 training batches + 1 validation
    assert not any(CountingMLP.modes)  # kept in eval mode while training
    assert "frozen_outputs" not in vars(model.module_)  # freed after fit
    CountingMLP.rows.clear()
    model.predict(X)
    assert sum(CountingMLP.rows) == N


def test_a_frozen_backbone_keeps_its_initial_weights():
    X, y = _data()
    short = _model(frozen_backbones=("a",), max_epochs=1).fit(X, y)
    long = _model(frozen_backbones=("a",), max_epochs=6).fit(X, y)
    for one, two in zip(
        short.module_.backbones["a"].parameters(),
        long.module_.backbones["a"].parameters(),
        strict=True,
    ):
        assert not two.requires_grad
        assert torch.equal(one, two)
    assert not torch.equal(short.module_.head.weight, long.module_.head.weight)


def test_a_trainable_backbone_is_never_remembered():
    X, y = _data()
    model = _model().fit(X, y)
    assert sum(CountingMLP.rows) == N * EPOCHS
    assert all(CountingMLP.modes)
    assert all(p.requires_grad for p in model.module_.backbones["a"].parameters())


def test_a_class_declared_frozen_backbone_is_remembered_and_not_trained():
    X, y = _data()
    model = _model(FrozenByClass).fit(X, y)
    assert sum(CountingMLP.rows) == N
    assert not any(p.requires_grad for p in model.module_.backbones["a"].parameters())


def test_a_perturbation_of_the_values_runs_the_encoder_every_batch():
    X, y = _data()
    _model(frozen_backbones=("a",), weighting=Noise).fit(X, y)
    assert sum(CountingMLP.rows) == N * EPOCHS


def test_partial_fit_remembers_nothing():
    X, y = _data()
    model = _model(frozen_backbones=("a",))
    for chunk in (slice(0, 24), slice(24, 48)):
        model.partial_fit(X[chunk], y[chunk], classes=[0, 1])
    assert sum(CountingMLP.rows) == N
    assert "frozen_outputs" not in vars(model.module_)


def test_outputs_over_the_memory_bound_are_not_remembered(monkeypatch):
    X, y = _data()
    monkeypatch.setattr(frozen_cache, "MAX_BYTES", 100)
    with pytest.warns(FrozenCacheWarning, match="modality 'a'"):
        _model(frozen_backbones=("a",)).fit(X, y)
    assert sum(CountingMLP.rows) == N * EPOCHS


def test_frozen_backbones_survive_save_and_load(tmp_path):
    X, y = _data()
    model = _model("mlp", frozen_backbones=("a",)).fit(X, y)
    model.save(tmp_path / "model.fusekit")
    import fusekit

    loaded = fusekit.load(tmp_path / "model.fusekit")
    assert loaded.frozen_backbones == ("a",)
    assert not any(p.requires_grad for p in loaded.module_.backbones["a"].parameters())
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_bad_frozen_backbones_are_refused():
    X, y = _data()
    with pytest.raises(ValueError, match=r"frozen_backbones names \['text'\].*\['a', 'b'\]"):
        _model(frozen_backbones=("text",)).fit(X, y)
    with pytest.raises(ValueError, match="frozen_backbones"):
        _model(frozen_backbones="a").fit(X, y)  # a string, not a list of names


def test_no_warning_in_a_plain_fit():
    X, y = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _model("mlp").fit(X, y)
