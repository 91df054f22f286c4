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

from fusekit.registry import available, get_registry

KINDS = ("fusion", "weighting", "calibration", "backbone")
DESIGNS = ("product", "axes")


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
            varied at a time around the baseline made of each axis's first value: for
            ``fusion=[concat, late, tensor], weighting=[none, udml]`` that is concat/none,
            late/none, tensor/none, concat/udml).
        params: fixed estimator parameters for every configuration (``{"fusion__rank": 4}``).
        max_epochs, batch_size, lr: training settings of every fit.
        folds, repeats: k-fold cross-validation (stratified for classification), repeated with
            a fresh shuffle.
        seed: seeds the splits, every fit (the same seed for every configuration in one fold)
            and the corruption draws.
        metric: sklearn scorer name; default accuracy (classification) or r2 (regression).
        sweeps: test-time corruption sweeps (:class:`Sweep`).
        missing: also score every subset of modalities removed at test time.
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
    max_epochs: int = 10
    batch_size: int = 64
    lr: float = 0.01
    folds: int = 3
    repeats: int = 1
    seed: int = 0
    metric: str | None = None
    sweeps: Sequence[Sweep] = ()
    missing: bool = False

    def validate(self) -> None:
        for name in ("max_epochs", "batch_size", "repeats"):
            _check_positive_int(name, getattr(self, name), 1)
        _check_positive_int("folds", self.folds, 2)
        if not isinstance(self.seed, numbers.Integral) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}.")
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
    """A grid axis: ``"all"`` -> every installed name; one value -> ``[value]``; names checked."""
    if isinstance(value, str):
        value = available(kind) if value == "all" else [value]
    values = list(dict.fromkeys(value)) if isinstance(value, (list, tuple)) else [value]
    if not values:
        raise ValueError(f"{kind} must name at least one {kind} (or 'all'), got none.")
    known = available(kind)
    unknown = [v for v in values if isinstance(v, str) and v not in known]
    if unknown:
        raise ValueError(f"unknown {kind} {unknown}; installed: {known} (or 'all').")
    return values


def grid(config: BenchConfig) -> list[dict[str, Any]]:
    """The configurations of ``config.design`` (see :class:`BenchConfig`), fusion slowest."""
    axes = [expand(kind, getattr(config, kind)) for kind in KINDS]
    if config.design == "product":
        return [dict(zip(KINDS, combo, strict=True)) for combo in itertools.product(*axes)]
    baseline = {kind: values[0] for kind, values in zip(KINDS, axes, strict=True)}
    combos = [baseline]
    for kind, values in zip(KINDS, axes, strict=True):
        combos += [{**baseline, kind: value} for value in values[1:]]
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
    """The work units of ``config`` over the loaded data sets (``BenchData``), in a fixed order."""
    config.validate()
    combos = grid(config)
    params = {
        "max_epochs": config.max_epochs,
        "batch_size": config.batch_size,
        "lr": config.lr,
        **dict(config.params),
    }
    units = []
    for bench_data in data:
        metric = config.metric or ("accuracy" if bench_data.task == "classification" else "r2")
        folds = splits(bench_data.y, bench_data.task, config.folds, config.repeats, config.seed)
        for combo in combos:
            labels = {kind: label(kind, spec) for kind, spec in combo.items()}
            for repeat, fold, train, test in folds:
                fit_seed = config.seed * 10_007 + repeat * 101 + fold
                payload = {
                    "data": bench_data.fingerprint,
                    "labels": labels,
                    "params": params,
                    "split": [config.folds, config.repeats, config.seed, repeat, fold],
                    "metric": metric,
                    "sweeps": [asdict(s) for s in config.sweeps],
                    "missing": config.missing,
                }
                units.append(
                    Unit(
                        unit_id=_digest(payload),
                        dataset=bench_data.name,
                        task=bench_data.task,
                        components=dict(combo),
                        labels=labels,
                        params=params,
                        repeat=repeat,
                        fold=fold,
                        fit_seed=fit_seed,
                        eval_seed=fit_seed + 1,
                        train=train,
                        test=test,
                        metric=metric,
                        sweeps=tuple(config.sweeps),
                        missing=config.missing,
                    )
                )
    return units


def quick_config() -> BenchConfig:
    """The default suite (``fusekit bench`` with no arguments, ``make run``): UCI Multiple
    Features (Fourier + Karhunen-Loève views), every installed fusion with no weighting and every
    installed weighting (but ``compose``, which needs steps) with concat fusion, 3-fold CV, 5
    epochs, a Gaussian-noise sweep on each view and the removed-view table."""
    fusions = ["concat", *(f for f in available("fusion") if f != "concat")]
    # compose without steps is "none" again: a combination is benchmarked by naming its steps
    weightings = ["none", *(w for w in available("weighting") if w not in ("none", "compose"))]
    return BenchConfig(
        datasets=("mfeat:views=fou,kar",),
        fusion=fusions,
        weighting=weightings,
        design="axes",
        max_epochs=5,
        folds=3,
        sweeps=(Sweep("gaussian", levels=(0.0, 0.5, 1.0, 2.0)),),
        missing=True,
    )
