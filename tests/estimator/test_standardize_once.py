"""The input standardisation is fitted once per new fit: weighted by ``sample_weight`` when
given, and never by a continued fit (``warm_start``, later ``partial_fit`` calls).

Before, ``fit`` fitted it unweighted while reading ``X`` and again weighted once the weights were
known. Expected statistics are ``np.average`` over the rows, computed here.
"""

import numpy as np
import pytest

from fusekit import FusionClassifier, FusionRegressor
from fusekit.data import Standardizer

SPEC = {"a": 2, "b": 1}


@pytest.fixture
def fits(monkeypatch):
    """Each ``Standardizer.fit`` call's weights (``None`` when unweighted)."""
    calls = []
    original = Standardizer.fit.__func__

    def counting(cls, data, sample_weight=None, names=None):
        calls.append(sample_weight)
        return original(cls, data, sample_weight, names=names)

    monkeypatch.setattr(Standardizer, "fit", classmethod(counting))
    return calls


def _data(n=12, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)) * [1.0, 3.0, 0.5] + [0.0, 2.0, -1.0]
    return X, (X[:, 0] > 0).astype(int)


@pytest.mark.parametrize("weighted", [False, True])
def test_fit_fits_the_standardisation_once_weighted_when_weights_are_given(fits, weighted):
    X, y = _data()
    weights = np.arange(1.0, len(y) + 1) if weighted else None
    model = FusionClassifier(modalities=SPEC, max_epochs=1, random_state=0)
    model.fit(X, y, sample_weight=weights)
    assert len(fits) == 1
    assert (fits[0] is None) == (not weighted)
    mean = np.average(X[:, :2], axis=0, weights=weights)
    std = np.sqrt(np.average((X[:, :2] - mean) ** 2, axis=0, weights=weights))
    np.testing.assert_allclose(model.standardizer_.means["a"].ravel(), mean, rtol=1e-6)
    np.testing.assert_allclose(model.standardizer_.scales["a"].ravel(), std, rtol=1e-6)


def test_a_continued_fit_keeps_the_standardisation(fits):
    X, y = _data()
    model = FusionRegressor(modalities=SPEC, max_epochs=1, warm_start=True, random_state=0)
    model.fit(X, y * 1.0)
    fitted = model.standardizer_
    model.fit(X + 5.0, y * 1.0, sample_weight=np.ones(len(y)))
    assert len(fits) == 1 and model.standardizer_ is fitted
    chunked = FusionClassifier(modalities=SPEC, random_state=0)
    chunked.partial_fit(X[:6], y[:6], classes=[0, 1])
    chunked.partial_fit(X[6:], y[6:])
    assert len(fits) == 2  # the first chunk's, once


def test_standardize_false_fits_nothing(fits):
    X, y = _data()
    model = FusionClassifier(modalities=SPEC, standardize=False, max_epochs=1, random_state=0)
    assert model.fit(X, y, sample_weight=np.ones(len(y))).standardizer_ is None
    assert fits == []
