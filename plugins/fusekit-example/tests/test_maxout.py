"""The example plugin, used the way a third party's would be: installed, then found by name."""

from importlib import metadata

import numpy as np
import pytest
from fusekit_example import MaxoutFusion
from sklearn.model_selection import GridSearchCV

from fusekit import FusionClassifier, Modalities
from fusekit.registry import get_registry


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 120)
    X = Modalities(
        a=rng.normal(size=(120, 4)) + y[:, None],
        b=rng.normal(size=(120, 3)) - y[:, None],
    )
    return X, y


def test_entry_point_is_installed():
    names = [ep.name for ep in metadata.entry_points(group="fusekit")]
    assert "maxout" in names


def test_found_by_name_with_its_distribution():
    entry = get_registry().entry("fusion", "maxout")
    assert entry.obj is MaxoutFusion
    assert entry.distribution == "fusekit-example"


def test_runs_in_grid_search(data):
    X, y = data
    search = GridSearchCV(
        FusionClassifier(max_epochs=5, random_state=0),
        [{"fusion": ["concat"]}, {"fusion": ["maxout"], "fusion__width": [8, 16]}],
        cv=3,
    )
    search.fit(X, y)
    assert search.best_score_ > 0.7


def test_absent_modality_does_not_change_output(data):
    X, y = data
    model = FusionClassifier(fusion="maxout", max_epochs=5, random_state=0).fit(X, y)
    a = np.array(X["a"], copy=True)
    a[:10] = np.nan
    first = model.predict_proba(Modalities(a=a, b=X["b"]))
    b_only = model.predict_proba(Modalities(a=np.full_like(a, np.nan), b=X["b"]))
    assert np.isfinite(first).all()
    np.testing.assert_allclose(first[:10], b_only[:10], rtol=1e-6)
