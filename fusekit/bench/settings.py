"""The settings of a bench (:class:`BenchConfig`, :class:`Sweep`, :func:`quick_config`).

Plain data with checks of their own: this module imports neither torch, numpy nor the plugin
registry, so the command line can build its parser (defaults in the help) without them. The grid
and the work units built from these settings are in :mod:`fusekit.bench.config`.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: The component kinds a bench grids over, in the order of the grid's axes (results row order).
#: The component kinds, in the order a grid's configurations are named and iterated
#: (``fusekit.plugin.COMPONENT_KINDS`` is the same set; written out: this module imports no torch).
GRID_KINDS = ("fusion", "weighting", "calibration", "backbone")
DESIGNS = ("product", "axes")
#: The shared lr of ``equal_budget=True`` when ``lr`` is None (Adam, constant).
EQUAL_BUDGET_LR = 0.01
#: Default region of practical equivalence of the leaderboard (one point of accuracy or r2; the
#: ROPE Benavoli et al. 2017 use for accuracies; :mod:`fusekit.bench.stats`).
ROPE = 0.01
#: Searches of ``tune`` (:mod:`fusekit.bench.tuning`).
TUNE_SEARCHES = ("grid", "halving", "optuna")
#: The default suite's step budget (:mod:`fusekit.bench.budget`).
QUICK_BUDGET_STEPS = 100


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
        stream: read Parquet files and folders among ``datasets`` chunk by chunk instead of
            loading them (:mod:`fusekit.bench.streamed`): clean scores only, no reference rows;
            ``sweeps``, ``missing`` and ``tune`` are refused.
        tune_search: the scikit-learn search of ``tune``: ``"grid"`` (``GridSearchCV``),
            ``"halving"`` (``HalvingGridSearchCV``) or ``"optuna"`` (``OptunaSearchCV``, when
            optuna-integration is installed).
        groups: for data files, the column of group labels (subjects, sessions): the outer and
            inner splits keep each group on one side (:mod:`fusekit.bench.splitters`).
        cv, cv_params: the outer splitter, a registered name (``"group_kfold"``, ...) and its
            parameters; from Python also any scikit-learn splitter object. None: stratified
            k-fold (grouped when there are groups).
        budget_steps: train every configuration for the same number of optimiser steps
            (``max_epochs`` per fold from the training-fold size and batch size;
            :mod:`fusekit.bench.budget`); None: ``max_epochs`` epochs.
        rope: region of practical equivalence of the verdict "practically equivalent to the
            best" (:data:`ROPE` by default; in the metric's units).

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
    stream: bool = False
    tune_search: str = "grid"
    groups: str | None = None
    cv: Any = None
    cv_params: Mapping[str, Any] = field(default_factory=dict)
    budget_steps: int | None = None
    rope: float = ROPE

    def validate(self) -> None:
        if self.budget_steps is not None:
            _check_positive_int("budget_steps", self.budget_steps, 1)
        if (
            not isinstance(self.rope, numbers.Real)
            or isinstance(self.rope, bool)
            or not 0 <= self.rope < float("inf")
        ):
            raise ValueError(f"rope must be a number >= 0, got {self.rope!r}.")
        if self.tune_search not in TUNE_SEARCHES:
            raise ValueError(
                f"tune_search must be one of {list(TUNE_SEARCHES)}, got {self.tune_search!r}."
            )
        if self.groups is not None and not isinstance(self.groups, str):
            raise TypeError(
                f"groups must be a column name of the data files, got {type(self.groups).__name__}"
                "; for in-memory data pass data={name: (X, y, groups)}."
            )
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
        tuned_clashes = [k for k in self.tune if k in ("random_state", *GRID_KINDS)]
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
        clashes = [
            k
            for k in self.params
            if k in ("random_state", *GRID_KINDS)
            and not (k == "backbone" and isinstance(self.params[k], Mapping))
        ]  # backbone={modality: name} fixes some modalities' backbones (text, categories)
        if clashes:
            raise ValueError(
                f"params must not set {clashes}: the bench sets random_state from seed= and the "
                "components from the grid (fusion=, weighting=, calibration=, backbone=); "
                "backbone={modality: name} may fix the backbones of some modalities."
            )
        for sweep in self.sweeps:
            if not isinstance(sweep, Sweep):
                raise TypeError(f"sweeps must hold fusekit.bench.Sweep, got {sweep!r}.")
        in_memory = [
            n
            for n, on in (
                ("sweeps (--corrupt)", self.sweeps),
                ("the removed-modality table (--missing)", self.missing),
                ("tune (--tune)", self.tune),
            )
            if on
        ]
        if self.stream and in_memory:
            raise ValueError(
                f"a streamed bench (stream=True, --stream) cannot run {', '.join(in_memory)}: "
                "they corrupt, blank or re-split the features in memory. Bench the clean score "
                "streamed, and a sample of the data in memory for those tables."
            )


def _check_positive_int(name: str, value: Any, minimum: int) -> None:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")


QUICK_DATASETS = ("mfeat:views=fou,kar", "basic_motions")


def quick_config() -> BenchConfig:
    """The default suite (``fusekit bench`` with no arguments, ``make run``): UCI Multiple
    Features (Fourier + Karhunen-Loève views: vectors) and BasicMotions (accelerometer +
    gyroscope: sequences), every distinct installed fusion with no weighting and every distinct
    installed weighting with concat fusion (``--design axes``), the reference rows, 3-fold CV,
    a budget of :data:`QUICK_BUDGET_STEPS` optimiser steps per fit (5 epochs on UCI Multiple
    Features' 1333-row folds, as before; 100 on BasicMotions' 53-row ones, where 5 epochs were 5
    steps; :mod:`fusekit.bench.budget`), a
    Gaussian-noise sweep on each modality and the removed-modality table."""
    return BenchConfig(
        datasets=QUICK_DATASETS,
        fusion="all",
        weighting="all",
        design="axes",
        max_epochs=None,
        budget_steps=QUICK_BUDGET_STEPS,
        folds=3,
        sweeps=(Sweep("gaussian", levels=(0.0, 0.5, 1.0, 2.0)),),
        missing=True,
    )
