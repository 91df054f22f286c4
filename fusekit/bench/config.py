"""What a bench runs: the grid of method combinations and the list of work units (one fit: data
set x configuration x repeat x fold) of its settings (:class:`BenchConfig`, defined in
:mod:`fusekit.bench.settings` and importable from here).

Planning trains nothing: :func:`grid` and :func:`plan` take each axis as the configuration lists
it (names checked, ``all`` expanded). Components that are another under a new name are dropped
before, once per bench, by :func:`fusekit.bench.aliases.dealias` (which fits probe models).

A unit's id is a hash of everything that decides its numbers (data checksum, components,
estimator parameters, split, seeds, evaluation sweeps), so resume skips exactly the units whose
results would come out the same.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from fusekit.bench.budget import epochs_for
from fusekit.bench.data import has_raw
from fusekit.bench.reference import reference_names
from fusekit.bench.settings import (
    DESIGNS,
    EQUAL_BUDGET_LR,
    GRID_KINDS,
    QUICK_DATASETS,
    BenchConfig,
    Sweep,
    quick_config,
)
from fusekit.bench.splitters import describe as describe_cv
from fusekit.bench.splitters import splits as outer_splits
from fusekit.engine.registry import available, get_registry
from fusekit.plugin import COMPONENT_KINDS

assert set(GRID_KINDS) == set(COMPONENT_KINDS), "a bench grid axis per component kind"

__all__ = [
    "DESIGNS",
    "EQUAL_BUDGET_LR",
    "GRID_KINDS",
    "QUICK_DATASETS",
    "BenchConfig",
    "Sweep",
    "Unit",
    "axes",
    "estimator_default",
    "expand",
    "grid",
    "label",
    "plan",
    "quick_config",
    "splits",
]


def estimator_default(kind: str) -> Any:
    """The estimator's own default for ``kind`` (``FusionClassifier(...)`` signature)."""
    from fusekit.estimator import FusionClassifier

    parameter = inspect.signature(FusionClassifier).parameters.get(kind)
    return None if parameter is None else parameter.default


def label(kind: str, spec: Any) -> str:
    """The name a component goes by in results: its registered name, else its class name."""
    if isinstance(spec, str):
        return spec
    cls = spec if isinstance(spec, type) else type(spec)
    return get_registry().name_of(kind, cls) or cls.__qualname__


def expand(kind: str, value: Any) -> list[Any]:
    """A grid axis: ``"all"`` (alone or in a list: ``["concat", "all"]``) -> every installed
    name; one value -> ``[value]``; names checked; repeats dropped."""
    if isinstance(value, str):
        value = [value]
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    values = [
        name
        for v in values
        for name in (available(kind) if isinstance(v, str) and v == "all" else [v])
    ]
    values = list(dict.fromkeys(values))
    if not values:
        raise ValueError(f"{kind} must name at least one {kind} (or 'all'), got none.")
    known = available(kind)
    unknown = [v for v in values if isinstance(v, str) and v not in known]
    if unknown:
        raise ValueError(f"unknown {kind} {unknown}; installed: {known} (or 'all').")
    return values


def axes(config: BenchConfig) -> dict[str, list[Any]]:
    """Each axis's values as :func:`expand` gives them (no training: aliases are dropped
    beforehand by :func:`fusekit.bench.aliases.dealias`)."""
    return {kind: expand(kind, getattr(config, kind)) for kind in GRID_KINDS}


def grid(config: BenchConfig) -> list[dict[str, Any]]:
    """The configurations of ``config.design`` (see :class:`BenchConfig`), fusion slowest.

    ``axes``: the pivot of each axis is the estimator's default for it (``concat``, ``none``,
    ...) when listed, else the axis's first value."""
    values = axes(config)
    lists = [values[kind] for kind in GRID_KINDS]
    if config.design == "product":
        return [dict(zip(GRID_KINDS, combo, strict=True)) for combo in itertools.product(*lists)]
    baseline = {}
    for kind in GRID_KINDS:
        default = estimator_default(kind)
        baseline[kind] = default if default in values[kind] else values[kind][0]
    combos = [baseline]
    for kind in GRID_KINDS:
        combos += [{**baseline, kind: v} for v in values[kind] if v != baseline[kind]]
    return combos


@dataclass
class Unit:
    """One fit and its evaluations: data set x configuration x repeat x fold."""

    unit_id: str
    dataset: str
    task: str
    components: dict[str, Any]  # kind -> name or class
    labels: dict[str, str]  # kind -> name used in results
    params: dict[str, Any]  # estimator parameters (besides the components)
    repeat: int
    fold: int
    fit_seed: int
    eval_seed: int
    train: np.ndarray
    test: np.ndarray
    metric: str
    sweeps: tuple[Sweep, ...]
    missing: bool
    reference: str | None = None  # a reference row (``ref:logistic``): no fusekit components
    tune: dict[str, list[Any]] = field(default_factory=dict)  # nested-CV grid
    tune_folds: int = 3
    tune_search: str = "grid"  # grid | halving | optuna (fusekit.bench.tuning)
    groups: np.ndarray | None = None  # the training rows' groups (grouped inner CV of --tune)

    def key(self) -> dict[str, Any]:
        return {"dataset": self.dataset, **self.labels, "repeat": self.repeat, "fold": self.fold}


def splits(y: np.ndarray, task: str, folds: int, repeats: int, seed: int, **cv: Any) -> list:
    """``[(repeat, fold, train, test)]``: k-fold, stratified for classification, reshuffled per
    repeat; ``groups=``, ``cv=``, ``cv_params=``: see :mod:`fusekit.bench.splitters`."""
    return outer_splits(y, task, folds, repeats, seed, **cv)


def _digest(payload: dict[str, Any]) -> str:
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def plan(config: BenchConfig, data: Sequence[Any]) -> list[Unit]:
    """The work units of ``config`` over the loaded data sets (``BenchData``), in a fixed order:
    per data set, every configuration of the grid, then the reference rows."""
    config.validate()
    combos = [(combo, None) for combo in grid(config)]
    budget = {"max_epochs": config.max_epochs, "batch_size": config.batch_size, "lr": config.lr}
    shared = {k: v for k, v in budget.items() if v is not None}  # None: the estimator decides
    if config.equal_budget:  # one optimiser, lr and (constant) schedule for every configuration
        shared |= {"lr": config.lr or EQUAL_BUDGET_LR, "optimizer": "adam", "lr_schedule": None}
    params = {**shared, **dict(config.params)}
    tune = {k: list(v) for k, v in dict(config.tune).items()}
    units = []
    for bench_data in data:
        metric = config.metric or ("accuracy" if bench_data.task == "classification" else "r2")
        groups = getattr(bench_data, "groups", None)
        folds = splits(
            bench_data.y,
            bench_data.task,
            config.folds,
            config.repeats,
            config.seed,
            groups=groups,
            cv=config.cv,
            cv_params=config.cv_params,
        )
        # the outer protocol, in the unit ids only where it is not the default k-fold
        protocol = (
            {"cv": describe_cv(config.cv, config.cv_params), "grouped": groups is not None}
            if config.cv is not None or groups is not None
            else {}
        )
        streamed = bench_data.source.get("streamed", False)  # references need X in memory
        references = (  # reference rows read numbers only, from X in memory
            reference_names(list(bench_data.X))
            if config.references and not streamed and not has_raw(bench_data)
            else []
        )
        for combo, reference in [*combos, *((None, r) for r in references)]:
            if reference is None:
                labels = {kind: label(kind, spec) for kind, spec in combo.items()}
                unit_params = params
            else:
                labels = {kind: "-" for kind in GRID_KINDS} | {"fusion": reference}
                unit_params = {}
            for repeat, fold, train, test in folds:
                fit_seed = config.seed * 10_007 + repeat * 101 + fold
                fold_params = unit_params
                if config.budget_steps is not None and reference is None:
                    # the same number of optimiser steps for every configuration
                    fold_params = {
                        **unit_params,
                        "max_epochs": epochs_for(
                            config.budget_steps, len(train), unit_params.get("batch_size")
                        ),
                    }
                payload = {
                    "data": bench_data.fingerprint,
                    "labels": labels,
                    "params": fold_params,
                    **protocol,
                    "split": [config.folds, config.repeats, config.seed, repeat, fold],
                    "metric": metric,
                    "sweeps": [asdict(s) for s in config.sweeps],
                    "missing": config.missing,
                    **({"tune": [tune, config.tune_folds]} if tune and reference is None else {}),
                }
                units.append(
                    Unit(
                        unit_id=_digest(payload),
                        dataset=bench_data.name,
                        task=bench_data.task,
                        components=dict(combo or {}),
                        labels=labels,
                        params=fold_params,
                        repeat=repeat,
                        fold=fold,
                        fit_seed=fit_seed,
                        eval_seed=fit_seed + 1,
                        train=train,
                        test=test,
                        metric=metric,
                        sweeps=tuple(config.sweeps),
                        missing=config.missing,
                        reference=reference,
                        tune=tune if reference is None else {},
                        tune_folds=config.tune_folds,
                        tune_search=config.tune_search,
                        groups=None if groups is None else groups[train],
                    )
                )
    return units
