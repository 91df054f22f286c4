"""Run one work unit: fit on the training fold, score the test fold clean, under each corruption
level and with each subset of modalities removed. Any exception becomes an ``error`` row; an
interrupt (``KeyboardInterrupt``, SIGTERM's ``Terminated``) is no exception and stops the bench.

Every unit runs with one torch thread and one OpenMP / BLAS thread (threadpoolctl; both restored
afterwards), whatever the process: this is what
keeps serial, forked, joblib and Dask runs bit-identical and stops N workers x N threads from
oversubscribing the machine. Corruptions come from :mod:`fusekit.robustness`; the draws use
``numpy.random.default_rng([eval_seed, sweep, modality])``, the same at every level (common random
numbers, as in :func:`fusekit.robustness.robustness_curve`).
"""

from __future__ import annotations

import contextlib
import itertools
import time
import traceback
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch
from sklearn.metrics import get_scorer
from threadpoolctl import threadpool_limits

from fusekit.bench import placement
from fusekit.bench.config import Unit
from fusekit.bench.reference import make_reference
from fusekit.bench.streamed import StreamedTable, fit_and_score
from fusekit.bench.tuning import as_text, choose
from fusekit.data import Modalities
from fusekit.estimator import FusionClassifier, FusionRegressor
from fusekit.robustness.corruptions import apply_corruption, feature_stats, get_corruption

#: The training a fusekit fit had (see :func:`training_record`).
TRAINING_COLUMNS = (
    "lr",
    "optimizer",
    "lr_schedule",
    "n_epochs",
    "train_loss_first",
    "train_loss_last",
    "train_task_loss_first",
    "train_task_loss_last",
)
COLUMNS = [
    "unit_id",
    "dataset",
    "fusion",
    "weighting",
    "calibration",
    "backbone",
    "repeat",
    "fold",
    "seed",
    "scenario",
    "corruption",
    "modality",
    "level",
    "metric",
    "score",
    "fit_time",
    "predict_time",
    "n_train",
    "n_test",
    "status",
    "error",
    "tuned",
    *TRAINING_COLUMNS,
    "device",
]
"""One row per score. ``lr`` ... ``train_task_loss_last``: the training the fit actually had (the
resolved ``lr_``, ``optimizer_``, ``lr_schedule_`` of a fusekit estimator, its epochs, first /
last training loss, total and of the fused prediction's task loss alone), so a low score can be
told from a diverged or under-trained fit; empty for the scikit-learn reference rows.
``device``: the torch device the unit trained on (``cpu`` for the reference rows; see
:mod:`fusekit.bench.placement`)."""


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads, then restore the previous number."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


_WARM = False


def warm_up() -> None:
    """Fit a tiny model once per process, so no unit's fit time carries the one-off cost of
    torch's and skorch's lazy first-use set-up (several seconds on a busy machine)."""
    global _WARM
    if _WARM:
        return
    rng = np.random.default_rng(0)
    X = Modalities(a=rng.normal(size=(8, 2)), b=rng.normal(size=(8, 2)))
    FusionClassifier(max_epochs=1, random_state=0).fit(X, np.arange(8) % 2).predict(X)
    _WARM = True


def make_estimator(
    unit: Unit,
    tuned: dict[str, Any] | None = None,
    device: str | None = None,
    names: tuple[str, ...] = (),
) -> Any:
    """The unit's unfitted estimator (``tuned`` parameters on top of the unit's; on ``device``
    when one is given, whatever the unit's parameters say).

    A ``backbone`` parameter ``{modality: backbone}`` (``--param 'backbone={"text":
    "hashed_text"}'``) fixes those modalities' backbones; the grid's goes to the others
    (``names``: the data set's modalities)."""
    if unit.reference is not None:
        return make_reference(unit.reference, unit.task, unit.fit_seed)
    cls = FusionClassifier if unit.task == "classification" else FusionRegressor
    params = {"verbose": 0, **unit.params, **(tuned or {}), "random_state": unit.fit_seed}
    components = dict(unit.components)
    if "backbone" in params:
        components["backbone"] = fixed_backbones(
            components.get("backbone", "mlp"), params.pop("backbone"), names
        )
    if device is not None:
        params["device"] = device
    return cls(**components, **params)


def fixed_backbones(grid_backbone: Any, fixed: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """``{modality: backbone}``: ``fixed``'s where it names one, else the grid's."""
    if not isinstance(fixed, Mapping):
        raise ValueError(
            f"the backbone parameter fixes backbones per modality, {{modality: backbone}}; got "
            f"{fixed!r}. Put backbones to compare in the grid (--backbone)."
        )
    unknown = [m for m in fixed if m not in names]
    if unknown:
        raise ValueError(f"backbone parameter: {unknown} are not modalities of {list(names)}")
    return {m: fixed.get(m, grid_backbone) for m in names}


def _row(unit: Unit, **values: Any) -> dict[str, Any]:
    row = {column: None for column in COLUMNS}
    row.update(
        unit.key(),
        unit_id=unit.unit_id,
        seed=unit.fit_seed,
        metric=unit.metric,
        n_train=len(unit.train),
        n_test=len(unit.test),
        status="ok",
        error="",
        tuned="",
    )
    row.update(values)
    return row


def training_record(estimator: Any) -> dict[str, Any]:
    """What the fitted estimator's training was (the ``lr`` ... ``train_loss_last`` columns);
    empty for an estimator that is not a fusekit one (the reference rows)."""
    if not hasattr(estimator, "lr_"):
        return {}
    curve = list(getattr(estimator, "loss_curve_", []))
    history = getattr(getattr(estimator, "net_", None), "history", None) or []
    task = [row["train_task_loss"] for row in history if "train_task_loss" in row]
    schedule = estimator.lr_schedule_
    return {
        "lr": float(estimator.lr_),
        "optimizer": estimator.optimizer_.__name__,
        "lr_schedule": "constant" if schedule is None else repr(schedule),
        "n_epochs": int(getattr(estimator, "n_iter_", len(curve))),
        "train_loss_first": curve[0] if curve else None,
        "train_loss_last": curve[-1] if curve else None,
        # the fused prediction's task loss alone (what the divergence flag reads)
        "train_task_loss_first": task[0] if task else None,
        "train_task_loss_last": task[-1] if task else None,
    }


def _timed_score(scorer: Any, estimator: Any, X: Any, y: np.ndarray) -> tuple[float, float]:
    start = time.perf_counter()
    score = float(scorer(estimator, X, y))
    return score, time.perf_counter() - start


RowKey = tuple[str, str, str, "float | None"]
"""What tells the rows of one unit apart: scenario, corruption, modality, level."""


def row_key(scenario: Any, corruption: Any, modality: Any, level: Any) -> RowKey:
    """The :data:`RowKey` of a row's values (``None`` / NaN / empty: the clean row's blanks)."""

    def text(value: Any) -> str:
        return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)

    blank = level is None or (isinstance(level, float) and np.isnan(level))
    return (text(scenario), text(corruption), text(modality), None if blank else float(level))


def _sweep_targets(unit: Unit, X: Modalities) -> Iterator[tuple[int, Any, int, str, list[float]]]:
    """``(sweep index, corruption spec, modality position, modality, levels)`` of every sweep
    that applies (a sequence corruption skips vector modalities)."""
    for index, sweep in enumerate(unit.sweeps):
        spec = get_corruption(sweep.corruption)
        levels = spec.default_levels if sweep.levels is None else sweep.levels
        names = list(X) if sweep.modalities is None else list(sweep.modalities)
        for position, modality in enumerate(names):
            if spec.needs_sequence and np.ndim(X[modality]) != 3:
                continue  # e.g. temporal_shuffle on a vector modality: not applicable
            if np.asarray(X[modality]).dtype == object:
                continue  # text / categories: the corruptions perturb numbers
            yield index, spec, position, modality, [float(level) for level in levels]


def _removals(names: list[str]) -> Iterator[tuple[str, tuple[str, ...], float]]:
    """``(scenario, removed modalities, level)``: every modality removed (``empty``), then each
    non-empty proper subset (``missing``)."""
    yield "empty", tuple(names), 1.0
    for size in range(1, len(names)):
        for removed in itertools.combinations(names, size):
            yield "missing", removed, size / len(names)


def expected_keys(unit: Unit, X: Modalities) -> frozenset[RowKey]:
    """The keys of the rows a successful :func:`run_unit` of ``unit`` on ``X`` writes, each once
    (how resume tells a finished unit from one whose rows were lost or duplicated)."""
    keys = {row_key("clean", None, None, None)}
    for _, spec, _, modality, levels in _sweep_targets(unit, X):
        keys.update(row_key("corruption", spec.name, modality, level) for level in levels)
    if unit.missing:
        keys.update(
            row_key(scenario, "remove_modality", "+".join(removed), level)
            for scenario, removed, level in _removals(list(X))
        )
    return frozenset(keys)


def _sweep_rows(unit: Unit, estimator: Any, X: Modalities, y: np.ndarray, fit_time: float):
    scorer = get_scorer(unit.metric)
    for index, spec, position, modality, levels in _sweep_targets(unit, X):
        values = np.asarray(X[modality], dtype=np.float64)
        stats = feature_stats(values)
        for level in levels:
            rng = np.random.default_rng([unit.eval_seed, index, position])
            corrupted = apply_corruption(values, spec, level, None, rng, modality, stats)
            X_level = Modalities({**X, modality: corrupted})
            score, predict_time = _timed_score(scorer, estimator, X_level, y)
            yield _row(
                unit,
                scenario="corruption",
                corruption=spec.name,
                modality=modality,
                level=level,
                score=score,
                fit_time=fit_time,
                predict_time=predict_time,
            )


def _missing_rows(unit: Unit, estimator: Any, X: Modalities, y: np.ndarray, fit_time: float):
    """Each non-empty proper subset of modalities removed (all-NaN rows) for every sample, then
    every modality removed (scenario ``empty``: the model's prediction from nothing, which the
    modality-importance table needs as the value of the empty coalition)."""
    scorer = get_scorer(unit.metric)
    for scenario, removed, level in _removals(list(X)):
        blanked = {m: np.full(np.shape(X[m]), np.nan) for m in removed}
        score, predict_time = _timed_score(scorer, estimator, Modalities({**X, **blanked}), y)
        yield _row(
            unit,
            scenario=scenario,
            corruption="remove_modality",
            modality="+".join(removed),
            level=level,
            score=score,
            fit_time=fit_time,
            predict_time=predict_time,
        )


def run_unit(
    unit: Unit, X: Modalities, y: np.ndarray, device: str | None = None
) -> list[dict[str, Any]]:
    """Fit and evaluate one unit (on ``device``, default: the one this worker was given, else
    the unit's parameter); never raises for the configuration's own errors."""
    device = device or placement.assigned_device()
    rows = _run_unit(unit, X, y, device)
    for row in rows:
        row["device"] = row.get("device") or device or unit.params.get("device") or "cpu"
    return rows


def run_unit_on_dask(
    unit: Unit, X: Modalities, y: np.ndarray, listed: tuple[str, ...]
) -> list[dict[str, Any]]:
    """:func:`run_unit` on the device of the Dask worker it runs on (``listed`` devices)."""
    return run_unit(unit, X, y, placement.dask_worker_device(listed))


def _run_unit(unit: Unit, X: Modalities, y: np.ndarray, device: str | None) -> list[dict[str, Any]]:
    with torch_threads(1), threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit_time = None
        try:
            warm_up()
            if isinstance(X, StreamedTable):  # out of core: fusekit.bench.streamed
                estimator = make_estimator(unit)
                measured = fit_and_score(unit, estimator, X, y)
                return [_row(unit, scenario="clean", **measured, **training_record(estimator))]
            X_train, X_test = X[unit.train], X[unit.test]
            y_train, y_test = y[unit.train], y[unit.test]
            tuned = {}
            if unit.tune and unit.reference is None:  # nested: the training rows only
                tuned = choose(
                    lambda params: make_estimator(unit, params, device, tuple(X)),
                    unit.tune,
                    X_train,
                    y_train,
                    unit.task,
                    unit.metric,
                    unit.tune_folds,
                    unit.fit_seed,
                    search=unit.tune_search,
                    groups=unit.groups,
                )
            estimator = make_estimator(unit, tuned, device, tuple(X))
            start = time.perf_counter()
            estimator.fit(X_train, y_train)
            fit_time = time.perf_counter() - start
            score, predict_time = _timed_score(get_scorer(unit.metric), estimator, X_test, y_test)
            rows = [
                _row(
                    unit,
                    scenario="clean",
                    score=score,
                    fit_time=fit_time,
                    predict_time=predict_time,
                )
            ]
            rows += _sweep_rows(unit, estimator, X_test, y_test, fit_time)
            if unit.missing:
                rows += _missing_rows(unit, estimator, X_test, y_test, fit_time)
            record = training_record(estimator)
            record["device"] = getattr(estimator, "device_", "cpu")  # where it trained
            for row in rows:
                row["tuned"] = as_text(tuned)
                row.update(record)
            return rows
        except Exception as error:  # noqa: BLE001 - one bad configuration must not stop the bench
            return error_rows(unit, error, fit_time)


def error_rows(
    unit: Unit, error: BaseException, fit_time: float | None = None
) -> list[dict[str, Any]]:
    """The one ``error`` row that records a failed unit: ``Type: message (at file:line)``."""
    frames = traceback.extract_tb(error.__traceback__)
    where = f" (at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno})" if frames else ""
    message = f"{type(error).__name__}: {error}{where}".replace("\n", " ")
    return [_row(unit, scenario="clean", fit_time=fit_time, status="error", error=message)]
