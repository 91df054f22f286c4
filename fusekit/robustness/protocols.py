"""The seed papers' robustness protocols as one call each, on any fitted estimator.

* :func:`robustness_curve`: corrupt one modality (or several jointly) at increasing levels,
  ``n_repeats`` random draws per level, score each; a tidy DataFrame
  ``modality, corruption, level, metric, mean, std, n_repeats``.
* :func:`missing_modality_table`: every subset of modalities kept at test time (the others made
  absent), scored; ``present, removed, n_present, metric, score``.

Determinism: draws come from ``numpy.random.default_rng([seed, repeat])`` with ``seed`` from
``random_state``; the *same* draws are reused at every level (common random numbers), so the
differences between levels are the corruption's, not the draws'.

``estimator`` is a fitted fusekit estimator or a ``Pipeline`` ending in one; corruption and
removal act on the ``X`` passed in (the pipeline's input), split as
:mod:`fusekit.robustness.blocks` describes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import is_classifier
from sklearn.metrics import get_scorer
from sklearn.utils import check_random_state

from fusekit.robustness.blocks import ModalityBlocks
from fusekit.robustness.corruptions import (
    Corruption,
    apply_corruption,
    feature_stats,
    get_corruption,
)


def _scorer(estimator: Any, metric: str | Callable | None) -> tuple[str, Callable]:
    """``(name, scorer(estimator, X, y))``; default accuracy (classifiers) or R^2."""
    if metric is None:
        metric = "accuracy" if is_classifier(estimator) else "r2"
    if isinstance(metric, str):
        return metric, get_scorer(metric)
    if callable(metric):
        return getattr(metric, "__name__", "score"), metric
    raise ValueError(f"metric must be a scorer name, a scorer callable or None, got {metric!r}.")


def _as_list(modality: str | Sequence[str]) -> list[str]:
    return [modality] if isinstance(modality, str) else list(modality)


def corrupt(
    X: Any,
    modality: str | Sequence[str],
    corruption: str | Corruption = "gaussian",
    level: float = 1.0,
    rate: float | None = None,
    random_state: int | np.random.Generator | None = None,
    estimator: Any = None,
) -> Any:
    """A corrupted copy of ``X`` (same form): ``corruption`` at ``level`` on ``modality``.

    ``rate``: fraction of samples hit, for severity corruptions (default all). Tables need the
    fitted fusekit ``estimator`` (or a ``Pipeline`` ending in one) to know the columns of each
    modality (see :mod:`fusekit.robustness.blocks` for the pipelines supported).
    """
    blocks = ModalityBlocks(estimator, X)
    names = _as_list(modality)
    blocks.check(names)
    rng = np.random.default_rng(random_state)
    return blocks.rebuild(
        {m: apply_corruption(blocks.array(m), corruption, level, rate, rng, m) for m in names}
    )


def robustness_curve(
    estimator: Any,
    X: Any,
    y: Any,
    modality: str | Sequence[str] | None = None,
    corruption: str | Corruption = "gaussian",
    levels: Sequence[float] | None = None,
    rate: float | None = None,
    n_repeats: int = 5,
    metric: str | Callable | None = None,
    random_state: int | np.random.RandomState | None = 0,
) -> pd.DataFrame:
    """Score a fitted ``estimator`` on ``X`` with ``modality`` corrupted at each of ``levels``.

    Parameters:
        modality: a modality, a list corrupted jointly (labelled ``"a+b"``), or ``None`` for one
            curve per modality.
        corruption: a name in ``fusekit.robustness.CORRUPTIONS`` or a ``Corruption``.
        levels: severities (or fractions of samples hit, see the corruption); default the
            corruption's ``default_levels``.
        rate: fraction of samples hit by a severity corruption (default 1).
        n_repeats: random draws per level; ``mean``/``std`` are over them.
        metric: sklearn scorer name or ``scorer(estimator, X, y)``; default accuracy / R^2.
        random_state: seed of the draws; same seed, same table.

    Returns a DataFrame ``modality, corruption, level, metric, mean, std, n_repeats``.
    """
    spec = get_corruption(corruption)
    if not isinstance(n_repeats, int) or n_repeats < 1:
        raise ValueError(f"n_repeats must be a positive integer, got {n_repeats!r}.")
    levels = spec.default_levels if levels is None else tuple(levels)
    if not levels:
        raise ValueError("levels must hold at least one level, got none.")
    metric_name, scorer = _scorer(estimator, metric)
    blocks = ModalityBlocks(estimator, X)
    if spec.name == "remove":
        blocks.check_absence()
    groups = [[m] for m in blocks.names] if modality is None else [_as_list(modality)]
    seed = int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
    rows = []
    for names in groups:
        blocks.check(names)
        arrays = {m: blocks.array(m) for m in names}
        stats = {m: feature_stats(arrays[m]) for m in names}
        scores = np.empty((len(levels), n_repeats))
        for repeat in range(n_repeats):
            for position, level in enumerate(levels):
                rng = np.random.default_rng([seed, repeat])  # common random numbers
                corrupted = {
                    m: apply_corruption(arrays[m], spec, level, rate, rng, m, stats[m])
                    for m in names
                }
                scores[position, repeat] = scorer(estimator, blocks.rebuild(corrupted), y)
        for position, level in enumerate(levels):
            rows.append(
                {
                    "modality": "+".join(names),
                    "corruption": spec.name,
                    "level": float(level),
                    "metric": metric_name,
                    "mean": float(scores[position].mean()),
                    "std": float(scores[position].std()),
                    "n_repeats": n_repeats,
                }
            )
    return pd.DataFrame(rows)


def missing_modality_table(
    estimator: Any,
    X: Any,
    y: Any,
    metric: str | Callable | None = None,
    include_empty: bool = False,
) -> pd.DataFrame:
    """Score ``estimator`` with every subset of modalities kept and the rest absent (NaN rows).

    One row per subset, most modalities first: ``present`` and ``removed`` (names joined by
    ``+``, ``""`` for none), ``n_present``, ``metric``, ``score``. ``include_empty`` adds the row
    with every modality removed (the network then sees only absent inputs).
    """
    metric_name, scorer = _scorer(estimator, metric)
    blocks = ModalityBlocks(estimator, X)
    blocks.check_absence()
    names = blocks.names
    smallest = 0 if include_empty else 1
    rows = []
    for size in range(len(names), smallest - 1, -1):
        for kept in itertools.combinations(names, size):
            removed = [m for m in names if m not in kept]
            rows.append(
                {
                    "present": "+".join(kept),
                    "removed": "+".join(removed),
                    "n_present": size,
                    "metric": metric_name,
                    "score": float(scorer(estimator, blocks.without(removed), y)),
                }
            )
    return pd.DataFrame(rows)
