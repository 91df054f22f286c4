"""Nested tuning: choose estimator parameters inside each outer training fold.

``BenchConfig(tune={"lr": [1e-3, 1e-2], "max_epochs": [10, 30]})``: for each outer fold, every
combination of the grid (:class:`sklearn.model_selection.ParameterGrid`) is scored by an inner
k-fold split (``tune_folds``, stratified for classification, shuffled with the unit's fit seed)
of the outer *training* rows only; the combination with the best mean inner score (the first
listed on ties) is refitted on the whole outer training fold and scored on the outer test fold.
The outer test rows are never passed here. The chosen values go to the ``tuned`` column of
``results.csv`` (JSON). Reference rows are not tuned (their parameters are scikit-learn's).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.metrics import get_scorer
from sklearn.model_selection import KFold, ParameterGrid, StratifiedKFold


def choose(
    make: Callable[[dict[str, Any]], Any],
    grid: Mapping[str, Sequence[Any]],
    X_train: Any,
    y_train: np.ndarray,
    task: str,
    metric: str,
    folds: int,
    seed: int,
) -> dict[str, Any]:
    """The parameters of ``grid`` with the best mean inner-CV score on the training rows.

    ``make(params)`` builds an unfitted estimator with ``params`` set."""
    splitter = (StratifiedKFold if task == "classification" else KFold)(
        n_splits=folds, shuffle=True, random_state=seed
    )
    target = y_train if task == "classification" else np.zeros(len(y_train))
    inner = list(splitter.split(np.zeros(len(y_train)), target))
    scorer = get_scorer(metric)
    best, best_score = None, -np.inf
    for params in ParameterGrid({k: list(v) for k, v in grid.items()}):
        scores = []
        for fit_rows, score_rows in inner:
            estimator = make(params).fit(X_train[fit_rows], y_train[fit_rows])
            scores.append(float(scorer(estimator, X_train[score_rows], y_train[score_rows])))
        if np.mean(scores) > best_score:
            best, best_score = params, float(np.mean(scores))
    return dict(best or {})


def as_text(params: Mapping[str, Any]) -> str:
    return json.dumps(dict(params), sort_keys=True, default=str) if params else ""
