"""The example plugin, used the way a third party's would be: installed, then found by name."""

from importlib import metadata

import numpy as np
import pytest
from fusekit_example import MaxoutFusion
from sklearn.model_selection import GridSearchCV

from fusekit import FusionClassifier, Modalities
from fusekit.engine.registry import get_registry
from fusekit.plugin.constraints import InvalidParameterError
from fusekit.testing import parametrize_with_checks


def two_signals(seed):
    """Binary y; a carries +y, b carries −y, each over unit noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 120)
    X = Modalities(
        a=rng.normal(size=(120, 4)) + y[:, None],
        b=rng.normal(size=(120, 3)) - y[:, None],
    )
    return X, y


@pytest.fixture
def data():
    return two_signals(0)


@pytest.fixture
def data_seeded(train_seed):
    return two_signals(train_seed)


def test_entry_point_is_installed():
    names = [ep.name for ep in metadata.entry_points(group="fusekit")]
    assert "maxout" in names


def test_found_by_name_with_its_distribution():
    entry = get_registry().entry("fusion", "maxout")
    assert entry.obj is MaxoutFusion
    assert entry.distribution == "fusekit-example"


GRID = {"fusion": ["concat", "late", "maxout"], "backbone__hidden": [8, 16]}


def test_runs_in_grid_search_on_modalities(data_seeded, train_seed):
    X, y = data_seeded
    search = GridSearchCV(FusionClassifier(max_epochs=5, random_state=train_seed), GRID, cv=3)
    search.fit(X, y)
    assert len(search.cv_results_["params"]) == 6
    assert search.best_score_ > 0.7  # FUSEKIT_TEST_SEED=0-5: 0.875-0.95


def test_runs_in_grid_search_on_a_dataframe_pipeline(data_seeded, train_seed):
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = data_seeded
    frame = pd.DataFrame(np.hstack([X["a"], X["b"]]), columns=[*"pqrs", *"tuv"])
    per_modality = ColumnTransformer(
        [("a", StandardScaler(), list("pqrs")), ("b", StandardScaler(), list("tuv"))]
    ).set_output(transform="pandas")
    pipeline = make_pipeline(per_modality, FusionClassifier(max_epochs=5, random_state=train_seed))
    grid = {f"fusionclassifier__{key}": values for key, values in GRID.items()}
    search = GridSearchCV(pipeline, grid, cv=3).fit(frame, y)
    assert search.best_estimator_[-1].modalities_ == {"a": (4,), "b": (3,)}
    assert search.best_score_ > 0.7  # FUSEKIT_TEST_SEED=0-5: 0.875-0.95


def test_absent_modality_does_not_change_output(data):
    X, y = data
    model = FusionClassifier(fusion="maxout", max_epochs=5, random_state=0).fit(X, y)
    a = np.array(X["a"], copy=True)
    a[:10] = np.nan
    first = model.predict_proba(Modalities(a=a, b=X["b"]))
    b_only = model.predict_proba(Modalities(a=np.full_like(a, np.nan), b=X["b"]))
    assert np.isfinite(first).all()
    np.testing.assert_allclose(first[:10], b_only[:10], rtol=1e-6)


@parametrize_with_checks("fusion", ["maxout"])
def test_contract(plugin, check):
    check(plugin)


@pytest.mark.parametrize("width", [0, 2.5, True, "64"])
def test_a_bad_width_is_refused_at_fit_by_name(data, width):
    """``parameter_constraints`` is checked by fusekit when it resolves the fusion, not in
    ``__init__``; the error names the parameter and the fusion's registered name."""
    X, y = data
    model = FusionClassifier(fusion="maxout", fusion__width=width, max_epochs=1)
    with pytest.raises(InvalidParameterError, match="The 'width' parameter of fusion maxout"):
        model.fit(X, y)


def test_the_smallest_width_is_accepted(data):
    X, y = data
    FusionClassifier(fusion="maxout", fusion__width=1, max_epochs=1).fit(X, y)
