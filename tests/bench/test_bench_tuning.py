"""Nested tuning: the inner search sees the outer training rows only; choices are recorded."""

import json

import numpy as np

import fusekit.bench.tuning as tuning
from fusekit.bench.config import BenchConfig, plan
from fusekit.bench.data import from_arrays
from fusekit.bench.runner import run_unit
from fusekit.data import Modalities


def test_nested_tuning_never_sees_the_outer_test_fold(toy, monkeypatch):
    X, y = toy
    # a third modality holding each sample's row number: what the inner search was given
    X = Modalities({**X, "row": np.arange(len(y), dtype=np.float64)[:, None]})
    data = from_arrays("toy", X, y, {})
    config = BenchConfig(
        datasets=(),
        folds=3,
        max_epochs=1,
        batch_size=32,
        references=False,
        tune={"lr": [1e-3, 1e-2], "max_epochs": [1, 2]},
        tune_folds=2,
    )
    seen: list[set[int]] = []
    real_get_scorer = tuning.get_scorer

    def recording_get_scorer(metric):
        scorer = real_get_scorer(metric)

        def record(estimator, X_scored, y_scored):
            seen.append(set(X_scored["row"][:, 0].astype(int).tolist()))
            return scorer(estimator, X_scored, y_scored)

        return record

    monkeypatch.setattr(tuning, "get_scorer", recording_get_scorer)
    units = plan(config, [data])
    assert len(units) == 3
    for unit in units:
        seen.clear()
        rows = run_unit(unit, data.X, data.y)
        assert rows[0]["status"] == "ok", rows[0]["error"]
        # 4 candidates x 2 inner folds scored, all on outer training rows, none on test rows
        assert len(seen) == 4 * 2
        scored = set().union(*seen)
        assert scored <= set(unit.train.tolist())
        assert not scored & set(unit.test.tolist())
        # the inner folds cover the outer training rows (each scored for every candidate)
        assert scored == set(unit.train.tolist())
        chosen = json.loads(rows[0]["tuned"])
        assert chosen["lr"] in (1e-3, 1e-2) and chosen["max_epochs"] in (1, 2)
        assert all(row["tuned"] == rows[0]["tuned"] for row in rows)


def test_the_sklearn_training_parameters_can_be_tuned():
    from fusekit import FusionClassifier
    from fusekit.bench.cli import parse_tune

    assert parse_tune("class_weight=none,balanced") == ("class_weight", [None, "balanced"])
    assert parse_tune("early_stopping=true,false") == ("early_stopping", [True, False])
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    y = (X[:, 0] > 0.5).astype(int)
    grid = {
        "class_weight": [None, "balanced"],
        "early_stopping": [False, True],
        "n_iter_no_change": [2],
        "warm_start": [False],
    }
    seen = []

    def make(params):
        seen.append(params)
        return FusionClassifier(modalities={"a": 2, "b": 2}, max_epochs=3).set_params(**params)

    chosen = tuning.choose(make, grid, X, y, "classification", "balanced_accuracy", 2, 0)
    assert set(chosen) == set(grid) and seen == [{}]  # GridSearchCV clones make({})


def _recorded_inner_splits(monkeypatch):
    """The inner (fit rows, score rows) pairs the search is given, as row numbers."""
    import sklearn.model_selection as model_selection

    seen = []
    real = model_selection.GridSearchCV.fit

    def fit(self, X, y=None, **params):
        seen.extend(self.cv)
        return real(self, X, y, **params)

    monkeypatch.setattr(model_selection.GridSearchCV, "fit", fit)
    return seen


def test_inner_splits_are_grouped_when_the_bench_has_groups(monkeypatch):
    from fusekit import FusionClassifier

    rng = np.random.default_rng(0)
    X = Modalities(a=rng.normal(size=(24, 2)), b=rng.normal(size=(24, 2)))
    y = np.arange(24) % 2
    groups = np.repeat(np.arange(6), 4)
    seen = _recorded_inner_splits(monkeypatch)
    chosen = tuning.choose(
        lambda params: FusionClassifier(max_epochs=1, random_state=0).set_params(**params),
        {"lr": [1e-3, 1e-2]},
        X,
        y,
        "classification",
        "accuracy",
        3,
        0,
        groups=groups,
    )
    assert chosen["lr"] in (1e-3, 1e-2) and len(seen) == 3
    for fit_rows, score_rows in seen:
        assert not set(groups[fit_rows]) & set(groups[score_rows])


def test_halving_search_runs_and_optuna_says_what_to_install():
    import pytest

    from fusekit import FusionClassifier

    rng = np.random.default_rng(0)
    X = Modalities(a=rng.normal(size=(40, 2)), b=rng.normal(size=(40, 2)))
    y = np.arange(40) % 2
    chosen = tuning.choose(
        lambda params: FusionClassifier(max_epochs=1, random_state=0).set_params(**params),
        {"lr": [1e-3, 1e-2, 1e-1]},
        X,
        y,
        "classification",
        "accuracy",
        2,
        0,
        search="halving",
    )
    assert chosen["lr"] in (1e-3, 1e-2, 1e-1)
    try:
        import optuna_integration  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install optuna-integration"):
            tuning.check_search("optuna")
