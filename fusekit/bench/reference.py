"""Reference rows: scikit-learn models a fusion method has to beat to earn its cost.

Every leaderboard gets, under the same folds, corruptions and missing-modality protocol:

* ``logistic``: every modality flattened (a sequence ``(n, T, d)`` or image becomes ``T * d``
  columns) and concatenated, then ``SimpleImputer(strategy="mean", add_indicator=True,
  keep_empty_features=True)`` -> ``StandardScaler`` -> ``LogisticRegression`` (``Ridge`` for
  regression). An absent modality is NaN columns, so its features are imputed with the training
  mean (and flagged, for columns that had gaps in training).
* Both drop, per training fold, the columns that are NaN in every training row
  (:class:`DropEmptyColumns`: NaN-padded sequence steps, a modality absent from the fold), so
  no legal input makes a reference row fail.
* ``hist_gb``: the same concatenated columns into ``HistGradientBoostingClassifier`` /
  ``Regressor``, which routes NaN natively (a column with no NaN in training sends NaN to the
  larger child).
* ``only <modality>``: the best single modality, i.e. the ``logistic`` pipeline on that
  modality's columns alone (one row per modality). With its own modality removed it predicts from
  the imputed training means: what a unimodal model can do when its only input is gone.

Reference names go in the ``fusion`` column of ``results.csv`` (``ref:logistic``,
``ref:hist_gb``, ``ref:only fou``) with ``-`` in the other component columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

PREFIX = "ref:"
MODELS = ("logistic", "hist_gb")
ONLY = "only "


class FlattenModalities(TransformerMixin, BaseEstimator):
    """``{modality: (n, ...)}`` -> ``(n, sum of flattened widths)``, the chosen modalities in
    order (all of them when ``modalities`` is None)."""

    def __init__(self, modalities: Sequence[str] | None = None) -> None:
        self.modalities = modalities

    def fit(self, X: Mapping[str, Any], y: Any = None) -> FlattenModalities:
        self.names_ = list(X) if self.modalities is None else list(self.modalities)
        missing = [m for m in self.names_ if m not in X]
        if missing:
            raise ValueError(f"reference model needs modalities {missing}; X has {list(X)}.")
        return self

    def transform(self, X: Mapping[str, Any]) -> np.ndarray:
        blocks = [np.asarray(X[m], dtype=np.float64) for m in self.names_]
        return np.hstack([b.reshape(len(b), -1) for b in blocks])


class DropEmptyColumns(TransformerMixin, BaseEstimator):
    """Drop the columns that are NaN in every training row (NaN-padded sequence steps no
    training sequence reaches, a modality absent from the whole fold).

    Such a column carries nothing to learn from, and scikit-learn's gradient boosting fails on
    it (binning an all-NaN column); no scikit-learn transformer drops them while leaving the
    other NaN in place for the booster to route, hence this one. A fold where every column is
    empty keeps one zero column, so the model still fits (it predicts the prior)."""

    def fit(self, X: np.ndarray, y: Any = None) -> DropEmptyColumns:
        X = np.asarray(X, dtype=np.float64)
        self.keep_ = np.flatnonzero(~np.isnan(X).all(axis=0))
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if not len(self.keep_):
            return np.zeros((len(X), 1))
        return X[:, self.keep_]


def reference_names(modalities: Sequence[str]) -> list[str]:
    """The reference rows of a data set with these modalities (with the ``ref:`` prefix)."""
    return [PREFIX + m for m in MODELS] + [f"{PREFIX}{ONLY}{m}" for m in modalities]


def is_reference(name: Any) -> bool:
    return isinstance(name, str) and name.startswith(PREFIX)


def make_reference(name: str, task: str, seed: int) -> Pipeline:
    """The unfitted pipeline of reference row ``name`` (``ref:logistic``, ``ref:only fou``)."""
    model = name.removeprefix(PREFIX)
    classify = task == "classification"
    if model == "hist_gb":
        booster = HistGradientBoostingClassifier if classify else HistGradientBoostingRegressor
        return Pipeline(
            [
                ("flatten", FlattenModalities()),
                ("drop_empty", DropEmptyColumns()),
                ("model", booster(random_state=seed)),
            ]
        )
    if model == "logistic" or model.startswith(ONLY):
        only = [model.removeprefix(ONLY)] if model.startswith(ONLY) else None
        linear = LogisticRegression(max_iter=1000) if classify else Ridge()
        return Pipeline(
            [
                ("flatten", FlattenModalities(only)),
                ("drop_empty", DropEmptyColumns()),
                (
                    "impute",
                    SimpleImputer(strategy="mean", add_indicator=True, keep_empty_features=True),
                ),
                ("scale", StandardScaler()),
                ("model", linear),
            ]
        )
    raise ValueError(f"unknown reference model {name!r}; known: {list(MODELS)} and 'only <m>'.")
