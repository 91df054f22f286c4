"""Nested tuning: choose estimator parameters inside each outer training fold, with
scikit-learn's search classes.

``BenchConfig(tune={"lr": [1e-3, 1e-2], "max_epochs": [10, 30]})``: for each outer fold, a
search over the grid (``tune_search``: ``"grid"``, :class:`~sklearn.model_selection.GridSearchCV`,
the default; ``"halving"``, :class:`~sklearn.model_selection.HalvingGridSearchCV`, successive
halving over training rows; ``"optuna"``, ``optuna_integration.OptunaSearchCV`` over the listed
values as categorical choices, when installed) scores each candidate by an inner k-fold split
(``tune_folds``, stratified for classification, grouped when the bench has groups, shuffled with
the unit's fit seed) of the outer *training* rows only; the best candidate (scikit-learn's
``best_params_``: the first listed on ties) is refitted on the whole outer training fold and
scored on the outer test fold. The outer test rows are never passed here. The chosen values go
to the ``tuned`` column of ``results.csv`` (JSON). Reference rows are not tuned (their parameters
are scikit-learn's).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.metrics import get_scorer

from fusekit.bench.splitters import SPLITTERS, default_name

SEARCHES = ("grid", "halving", "optuna")


def check_search(search: str) -> None:
    """An ImportError before the first fit when the chosen search is not installed."""
    if search == "optuna":
        try:
            import optuna_integration  # noqa: F401
        except ImportError as error:
            raise ImportError(
                "tune_search='optuna' needs optuna and optuna-integration: pip install "
                "optuna-integration (or use --tune-search grid / halving)."
            ) from error
    elif search not in SEARCHES:
        raise ValueError(f"tune_search must be one of {list(SEARCHES)}, got {search!r}.")


def _search(
    search: str, estimator: Any, grid: dict[str, list[Any]], cv: Any, scoring: Any, seed: int
) -> Any:
    if search == "grid":
        from sklearn.model_selection import GridSearchCV

        return GridSearchCV(
            estimator, grid, scoring=scoring, cv=cv, refit=False, error_score="raise"
        )
    if search == "halving":
        from sklearn.experimental import enable_halving_search_cv  # noqa: F401
        from sklearn.model_selection import HalvingGridSearchCV

        return HalvingGridSearchCV(
            estimator, grid, scoring=scoring, cv=cv, refit=False, random_state=seed,
            error_score="raise",
        )  # fmt: skip
    check_search(search)
    from optuna.distributions import CategoricalDistribution
    from optuna_integration import OptunaSearchCV

    distributions = {k: CategoricalDistribution(v) for k, v in grid.items()}
    return OptunaSearchCV(
        estimator, distributions, cv=cv, scoring=scoring, refit=False, random_state=seed,
        n_trials=int(np.prod([len(v) for v in grid.values()])), error_score="raise",
    )  # fmt: skip


def choose(
    make: Callable[[dict[str, Any]], Any],
    grid: Mapping[str, Sequence[Any]],
    X_train: Any,
    y_train: np.ndarray,
    task: str,
    metric: str,
    folds: int,
    seed: int,
    *,
    search: str = "grid",
    groups: np.ndarray | None = None,
) -> dict[str, Any]:
    """The parameters of ``grid`` the search finds best on the training rows (inner CV).

    ``make(params)`` builds an unfitted estimator with ``params`` set (``make({})``: the one
    the search clones); ``groups``: the training rows' groups (a grouped inner split)."""
    splitter = SPLITTERS[default_name(task, groups is not None)](
        n_splits=folds, shuffle=True, random_state=seed
    )
    target = y_train if task == "classification" else np.zeros(len(y_train))
    inner = list(splitter.split(np.zeros(len(y_train)), target, groups))
    finder = _search(
        search, make({}), {k: list(v) for k, v in grid.items()}, inner, get_scorer(metric), seed
    )
    finder.fit(X_train, y_train)
    return dict(finder.best_params_)


def as_text(params: Mapping[str, Any]) -> str:
    return json.dumps(dict(params), sort_keys=True, default=str) if params else ""
