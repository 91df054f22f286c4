"""What a bench runs: the settings (:class:`BenchConfig`), the grid of method combinations and
the list of work units (one fit: data set x configuration x repeat x fold).

A unit's id is a hash of everything that decides its numbers (data checksum, components,
estimator parameters, split, seeds, evaluation sweeps), so resume skips exactly the units whose
results would come out the same.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold

from fusekit.bench.aliases import distinct, estimator_default
from fusekit.bench.reference import reference_names
from fusekit.engine.registry import available, get_registry
from fusekit.plugin import COMPONENT_KINDS

#: The component kinds a bench grids over, in the order of the grid's axes (results row order).
KINDS = ("fusion", "weighting", "calibration", "backbone")
assert set(KINDS) == set(COMPONENT_KINDS), "a bench grid axis per component kind"
DESIGNS = ("product", "axes")
#: The shared lr of ``equal_budget=True`` when ``lr`` is None (Adam, constant).
EQUAL_BUDGET_LR = 0.01


@dataclass(frozen=True)
class Sweep:
    """A test-time corruption swept over ``levels`` on each of ``modalities`` (None: each one).

    ``levels`` None: the corruption's defaults (``fusekit.robustness.CORRUPTIONS``).
    """

    corruption: str
    modalities: tuple[str, ...] | None = None
    levels: tuple[float, ...] | None = None


@dataclass
class BenchConfig:
    """Every setting of one bench run (the CLI fills this; so can Python code).

    Parameters:
        datasets: registered names (``"mfeat"``, ``"mfeat:views=fou,kar"``) or CSV/Parquet paths.
        target, modalities: for files: the target column and the modality spec
            (``{name: [columns] | regex}``, JSON text or file; None: ``modality__`` prefixes).
        fusion, weighting, calibration, backbone: a list of names (or component classes), one
            name, or ``"all"`` (every installed one).
        design: ``"product"`` (every combination of the four axes) or ``"axes"`` (one axis
            varied at a time around the baseline made of each axis's estimator default
            (``concat``, ``none``, ``none``, ``mlp``) when listed, else its first value: for
            ``fusion=[late, concat, tensor], weighting=[udml, none]`` that is concat/none,
            late/none, tensor/none, concat/udml). Components that are another one under a
            different name are dropped (:mod:`fusekit.bench.aliases`).
        params: fixed estimator parameters for every configuration (``{"fusion__rank": 4}``).
        max_epochs, batch_size, lr: training settings of every fit.
        folds, repeats: k-fold cross-validation (stratified for classification), repeated with
            a fresh shuffle.
        seed: seeds the splits, every fit (the same seed for every configuration in one fold)
            and the corruption draws.
        metric: sklearn scorer name; default accuracy (classification) or r2 (regression).
        sweeps: test-time corruption sweeps (:class:`Sweep`).
        missing: also score every subset of modalities removed at test time.
        references: add the scikit-learn reference rows (:mod:`fusekit.bench.reference`) to
            every data set's leaderboard.
        rank_by: the leaderboard's criterion: ``"clean"``, ``"robust"`` (mean over the
            corruption sweeps) or ``"missing"`` (mean over the removed-modality subsets).
        baseline: a configuration (``"concat+none"``, matched on its first components, or
            ``"ref:logistic"``): the leaderboard adds each one's paired difference from it.
        tune: ``{parameter: [values]}`` chosen per outer fold by nested CV on the outer
            training fold (``tune_folds`` inner folds; :mod:`fusekit.bench.tuning`); the chosen
            values are in the ``tuned`` column of ``results.csv``.

    ``max_epochs``, ``batch_size`` and ``lr`` set to None are not passed: the estimator's own
    defaults apply. ``lr`` is None by default, so each configuration trains with the lr,
    optimiser and lr schedule its components recommend (``Component.recommended_params``; Adam
    at 0.01, constant, for those that recommend nothing). Set, they are the same for every
    configuration. ``equal_budget=True`` gives every configuration the same training settings:
    Adam at ``lr`` (:data:`EQUAL_BUDGET_LR` when None), constant lr, recommendations ignored.
    """

    datasets: Sequence[str] = ("mfeat:views=fou,kar",)
    target: str | None = None
    modalities: Any = None
    fusion: Any = ("concat",)
    weighting: Any = ("none",)
    calibration: Any = ("none",)
    backbone: Any = ("mlp",)
    design: str = "product"
    params: Mapping[str, Any] = field(default_factory=dict)
    max_epochs: int | None = 10
    batch_size: int | None = 64
    lr: float | None = None
    equal_budget: bool = False
    folds: int = 3
    repeats: int = 1
    seed: int = 0
    metric: str | None = None
    sweeps: Sequence[Sweep] = ()
    missing: bool = False
    references: bool = True
    rank_by: str = "clean"
    baseline: str | None = None
    tune: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    tune_folds: int = 3

    def validate(self) -> None:
        for name in ("max_epochs", "batch_size"):
            if getattr(self, name) is not None:
                _check_positive_int(name, getattr(self, name), 1)
        _check_positive_int("repeats", self.repeats, 1)
        _check_positive_int("tune_folds", self.tune_folds, 2)
        for key, values in dict(self.tune).items():
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
                raise ValueError(
                    f"tune[{key!r}] must be a non-empty list of values, got {values!r}."
                )
        tuned_clashes = [k for k in self.tune if k in ("random_state", *KINDS)]
        if tuned_clashes:
            raise ValueError(f"tune must not set {tuned_clashes} (seed= and the grid set those).")
        _check_positive_int("folds", self.folds, 2)
        if not isinstance(self.seed, numbers.Integral) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}.")
        if self.rank_by not in ("clean", "robust", "missing"):
            raise ValueError(
                f"rank_by must be one of ['clean', 'robust', 'missing'], got {self.rank_by!r}."
            )
        if self.rank_by == "robust" and not self.sweeps:
            raise ValueError("rank_by='robust' needs corruption sweeps (--corrupt).")
        if self.rank_by == "missing" and not self.missing:
            raise ValueError("rank_by='missing' needs the removed-modality table (--missing).")
        if self.design not in DESIGNS:
            raise ValueError(f"design must be one of {list(DESIGNS)}, got {self.design!r}.")
        if isinstance(self.datasets, str):
            raise ValueError(f"datasets must be a list of names, got the string {self.datasets!r}.")
        clashes = [k for k in self.params if k in ("random_state", *KINDS)]
        if clashes:
            raise ValueError(
                f"params must not set {clashes}: the bench sets random_state from seed= and the "
                "components from the grid (fusion=, weighting=, calibration=, backbone=)."
            )
        for sweep in self.sweeps:
            if not isinstance(sweep, Sweep):
                raise TypeError(f"sweeps must hold fusekit.bench.Sweep, got {sweep!r}.")


def _check_positive_int(name: str, value: Any, minimum: int) -> None:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")


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


def axes(config: BenchConfig) -> tuple[dict[str, list[Any]], dict[str, dict[Any, Any]]]:
    """Each axis's distinct values and, per axis, the aliases dropped (``{alias: kept}``; see
    :mod:`fusekit.bench.aliases`)."""
    values, dropped = {}, {}
    for kind in KINDS:
        values[kind], dropped[kind] = distinct(kind, expand(kind, getattr(config, kind)))
    return values, {kind: d for kind, d in dropped.items() if d}


def grid(config: BenchConfig) -> list[dict[str, Any]]:
    """The configurations of ``config.design`` (see :class:`BenchConfig`), fusion slowest.

    ``axes``: the pivot of each axis is the estimator's default for it (``concat``, ``none``,
    ...) when listed, else the axis's first value."""
    values, _ = axes(config)
    lists = [values[kind] for kind in KINDS]
    if config.design == "product":
        return [dict(zip(KINDS, combo, strict=True)) for combo in itertools.product(*lists)]
    baseline = {}
    for kind in KINDS:
        default = estimator_default(kind)
        baseline[kind] = default if default in values[kind] else values[kind][0]
    combos = [baseline]
    for kind in KINDS:
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

    def key(self) -> dict[str, Any]:
        return {"dataset": self.dataset, **self.labels, "repeat": self.repeat, "fold": self.fold}


def splits(y: np.ndarray, task: str, folds: int, repeats: int, seed: int) -> list:
    """``[(repeat, fold, train, test)]``: k-fold, stratified for classification, reshuffled."""
    out = []
    for repeat in range(repeats):
        splitter_cls = StratifiedKFold if task == "classification" else KFold
        splitter = splitter_cls(n_splits=folds, shuffle=True, random_state=seed + repeat)
        target = y if task == "classification" else np.zeros(len(y))
        for fold, (train, test) in enumerate(splitter.split(np.zeros(len(y)), target)):
            out.append((repeat, fold, train, test))
    return out


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
        folds = splits(bench_data.y, bench_data.task, config.folds, config.repeats, config.seed)
        references = reference_names(list(bench_data.X)) if config.references else []
        for combo, reference in [*combos, *((None, r) for r in references)]:
            if reference is None:
                labels = {kind: label(kind, spec) for kind, spec in combo.items()}
                unit_params = params
            else:
                labels = {kind: "-" for kind in KINDS} | {"fusion": reference}
                unit_params = {}
            for repeat, fold, train, test in folds:
                fit_seed = config.seed * 10_007 + repeat * 101 + fold
                payload = {
                    "data": bench_data.fingerprint,
                    "labels": labels,
                    "params": unit_params,
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
                        params=unit_params,
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
                    )
                )
    return units


QUICK_DATASETS = ("mfeat:views=fou,kar", "basic_motions")


def quick_config() -> BenchConfig:
    """The default suite (``fusekit bench`` with no arguments, ``make run``): UCI Multiple
    Features (Fourier + Karhunen-Loève views: vectors) and BasicMotions (accelerometer +
    gyroscope: sequences), every distinct installed fusion with no weighting and every distinct
    installed weighting with concat fusion (``--design axes``), the reference rows, 3-fold CV,
    5 epochs, a Gaussian-noise sweep on each modality and the removed-modality table."""
    return BenchConfig(
        datasets=QUICK_DATASETS,
        fusion="all",
        weighting="all",
        design="axes",
        max_epochs=5,
        folds=3,
        sweeps=(Sweep("gaussian", levels=(0.0, 0.5, 1.0, 2.0)),),
        missing=True,
    )
