"""VGMR used as a third party would: installed, found by name, inside estimators and searches."""

from __future__ import annotations

import pickle
from importlib import metadata

import numpy as np
import pytest
from fusekit_vgmr import ValueGatedModalityRefiner
from sklearn.model_selection import GridSearchCV

from fusekit import FusionClassifier, Modalities, available
from fusekit.engine.registry import get_registry
from fusekit.testing import parametrize_with_checks

SMALL = {"calibration__latent_dim": 16, "batch_size": 32, "random_state": 0}


def easy_task(n=160, seed=0):
    """Two informative modalities (a vector and a sequence) and one pure-noise vector."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = Modalities(
        a=rng.normal(size=(n, 6)) + y[:, None],
        b=rng.normal(size=(n, 5, 3)) + 0.8 * y[:, None, None],
        c=rng.normal(size=(n, 4)),
    )
    return X, y


def test_entry_point_registers_the_vgmr_calibration():
    assert "vgmr" in [ep.name for ep in metadata.entry_points(group="fusekit")]
    entry = get_registry().entry("calibration", "vgmr")
    assert entry.obj is ValueGatedModalityRefiner
    assert entry.distribution == "fusekit-vgmr"


@parametrize_with_checks("calibration", ["vgmr"], params={"latent_dim": 8})
def test_fusekit_contract(plugin, check):
    check(plugin)


def test_runs_in_grid_search_over_calibration():
    X, y = easy_task()
    search = GridSearchCV(
        FusionClassifier(max_epochs=4, batch_size=32, random_state=0),
        {"calibration": ["none", "vgmr"]},  # vgmr with its defaults (d_p = 128)
        cv=2,
    )
    search.fit(X, y)
    assert search.best_score_ > 0.7
    assert list(search.cv_results_["param_calibration"]) == ["none", "vgmr"]


def test_beats_chance_on_an_easy_task():
    X, y = easy_task(n=240)
    model = FusionClassifier(calibration="vgmr", max_epochs=8, **SMALL)
    model.fit(X[:160], y[:160])
    assert model.score(X[160:], y[160:]) > 0.8  # chance is 0.5
    assert np.isfinite(model.net_.history[:, "train_loss"]).all()


def _builtin_fusions() -> list[str]:
    return [
        n
        for n in available("fusion")
        if get_registry().entry("fusion", n).distribution == "fusekit"
    ]


@pytest.mark.parametrize("fusion", _builtin_fusions())
def test_every_builtin_fusion_trains_with_vgmr(fusion):
    X, y = easy_task(n=64)
    model = FusionClassifier(calibration="vgmr", fusion=fusion, max_epochs=2, **SMALL).fit(X, y)
    a = np.array(X["a"], copy=True)
    a[:8] = np.nan  # modality a absent for the first 8 samples
    proba = model.predict_proba(Modalities(a=a, b=X["b"], c=X["c"]))
    assert proba.shape == (64, 2) and np.isfinite(proba).all()


@pytest.mark.parametrize("weighting", ["modality_dropout", "ogm_ge", "qmf"])
def test_composes_with_a_weighting(weighting):
    if weighting not in available("weighting"):
        pytest.skip(f"weighting {weighting!r} is not installed")
    X, y = easy_task(n=200)
    model = FusionClassifier(calibration="vgmr", weighting=weighting, max_epochs=6, **SMALL)
    model.fit(X[:140], y[:140])
    assert model.score(X[140:], y[140:]) > 0.7


def test_predictions_ignore_the_values_of_absent_modalities():
    X, y = easy_task(n=96)
    model = FusionClassifier(calibration="vgmr", max_epochs=2, **SMALL).fit(X, y)
    a = np.array(X["a"], copy=True)
    a[:10] = np.nan
    with_a = model.predict_proba(Modalities(a=a, b=X["b"], c=X["c"]))
    without_a = model.predict_proba(Modalities(a=np.full_like(a, np.nan), b=X["b"], c=X["c"]))
    np.testing.assert_allclose(with_a[:10], without_a[:10], rtol=1e-5, atol=1e-6)
    assert np.isfinite(with_a).all()


def test_padded_sequences_train_and_predict():
    X, y = easy_task(n=96)
    b = np.array(X["b"], copy=True)
    b[::3, 3:] = np.nan  # every third sample has two padded steps
    padded = Modalities(a=X["a"], b=b, c=X["c"])
    model = FusionClassifier(calibration="vgmr", max_epochs=3, **SMALL).fit(padded, y)
    assert np.isfinite(model.predict_proba(padded)).all()


def test_pickled_model_predicts_the_same():
    X, y = easy_task(n=64)
    model = FusionClassifier(calibration="vgmr", max_epochs=1, **SMALL).fit(X, y)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_allclose(again.predict_proba(X), model.predict_proba(X), rtol=1e-6)
