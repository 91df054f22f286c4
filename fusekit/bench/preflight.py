"""Checks of a bench before its first fit: a setting that would fail in every unit, after the
units before it trained, fails here once, naming the setting, what was expected and what came.

:func:`preflight` runs in :func:`~fusekit.bench.run_bench` once the data sets are loaded, before
any unit is planned. It checks

* the grid: every component name is installed (:func:`~fusekit.bench.config.grid`);
* the metric: a scikit-learn scorer name that can score each data set's target (tried on a
  ``DummyClassifier`` / ``DummyRegressor`` fitted to it, so ``f1`` or ``roc_auc`` on three
  classes and ``accuracy`` on a continuous target fail here, in scikit-learn's own words);
* the data sets: enough samples for ``folds``, and for classification two classes or more, the
  largest with at least ``folds`` members (what stratified k-fold needs);
* the parameters (``params`` and the keys of ``tune``): each is an estimator parameter, or a
  nested one (``fusion__rank``) that the components of every configuration accept, checked by
  building them unfitted through the estimator's own resolution (:mod:`fusekit.engine.resolve`);
* the baseline: it names exactly one configuration of each data set's leaderboard.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.metrics import get_scorer, get_scorer_names

from fusekit.bench.config import GRID_KINDS, BenchConfig, grid, label
from fusekit.bench.data import BenchData, has_raw
from fusekit.bench.leaderboard import match_baseline
from fusekit.bench.reference import reference_names
from fusekit.bench.runner import fixed_backbones
from fusekit.engine.resolve import (
    backbones_for,
    instantiate,
    resolve_backbones,
    split_nested,
    weightings_for,
)
from fusekit.estimator import NESTED_PREFIXES, FusionClassifier
from fusekit.raw_inputs import resolve_kinds


class PreflightError(ValueError):
    """A bench setting that no unit could run with, found before the first fit."""


def preflight(config: BenchConfig, data: Sequence[BenchData]) -> None:
    """Raise :class:`PreflightError` for the first setting of ``config`` that cannot run on the
    loaded ``data``; return quietly when every check passes."""
    combos = grid(config)
    _check_metric(config.metric, data)
    _check_folds(config.folds, data)
    _check_params(config, combos, data)
    _check_raw_modalities(config, combos, data)
    _check_baseline(config, combos, data)


def _default_metric(task: str) -> str:
    return "accuracy" if task == "classification" else "r2"


def _check_metric(metric: Any, data: Sequence[BenchData]) -> None:
    if isinstance(metric, str) and metric not in get_scorer_names():
        close = difflib.get_close_matches(metric, get_scorer_names(), n=3)
        hint = f" Did you mean {close}?" if close else ""
        raise PreflightError(
            f"metric {metric!r} is not a scikit-learn scorer name.{hint} "
            "sklearn.metrics.get_scorer_names() lists them."
        )
    if metric is not None and not isinstance(metric, str):
        return  # a scorer object given in Python: only the estimator it was written for can say
    for bench_data in data:
        name = metric or _default_metric(bench_data.task)
        dummy = DummyClassifier() if bench_data.task == "classification" else DummyRegressor()
        features = np.zeros((len(bench_data.y), 1))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                dummy.fit(features, bench_data.y)
                get_scorer(name)(dummy, features, bench_data.y)
        except (TypeError, ValueError, AttributeError) as error:
            raise PreflightError(
                f"metric {name!r} cannot score data set {bench_data.name!r} "
                f"({_describe_target(bench_data)}): {error}"
            ) from None


def _describe_target(bench_data: BenchData) -> str:
    if bench_data.task != "classification":
        return "a regression target"
    return f"classification, {len(np.unique(bench_data.y))} classes"


def _check_folds(folds: int, data: Sequence[BenchData]) -> None:
    for bench_data in data:
        n = len(bench_data.y)
        if n < folds:
            raise PreflightError(
                f"data set {bench_data.name!r} has {n} samples, fewer than folds={folds}."
            )
        if bench_data.task != "classification":
            continue
        classes, counts = np.unique(bench_data.y, return_counts=True)
        if len(classes) < 2:
            raise PreflightError(
                f"data set {bench_data.name!r} has one class ({classes.tolist()[0]!r}): a "
                "classifier needs at least 2."
            )
        if counts.max() < folds:
            raise PreflightError(
                f"data set {bench_data.name!r}: stratified folds={folds} need a class with at "
                f"least {folds} samples, but its largest class has {int(counts.max())}. Use fewer "
                "folds (--folds)."
            )


def _combo_name(combo: Mapping[str, Any]) -> str:
    return "+".join(label(kind, combo[kind]) for kind in GRID_KINDS)


def _check_params(
    config: BenchConfig, combos: Sequence[Mapping[str, Any]], data: Sequence[BenchData]
) -> None:
    tuned = {key: values[0] for key, values in dict(config.tune).items() if len(values)}
    params = {**dict(config.params), **tuned}
    known = sorted(FusionClassifier().get_params())
    for key in params:
        source = "tune" if key in tuned else "params"
        prefix, _, rest = key.partition("__")
        if rest and prefix not in NESTED_PREFIXES:
            raise PreflightError(
                f"{source}: {key!r} is not a parameter of the estimator: nested parameters start "
                f"with one of {[p + '__' for p in NESTED_PREFIXES]}."
            )
        if not rest and key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise PreflightError(
                f"{source}: {key!r} is not a parameter of the estimator.{hint} Its parameters: "
                f"{known}."
            )
    nested = {key: value for key, value in params.items() if key.partition("__")[0] in GRID_KINDS}
    if not nested:
        return
    modality_sets = list(dict.fromkeys(tuple(d.X) for d in data))
    for combo in combos:
        for names in modality_sets:
            try:
                backbone = combo["backbone"]
                if "backbone" in params:
                    backbone = fixed_backbones(backbone, params["backbone"], names)
                backbones_for(backbone, split_nested(nested, "backbone"), names)
                instantiate(
                    "calibration", combo["calibration"], split_nested(nested, "calibration")
                )
                instantiate("fusion", combo["fusion"], split_nested(nested, "fusion"))
                weightings_for(combo["weighting"], split_nested(nested, "weighting"))
            except (TypeError, ValueError) as error:
                raise PreflightError(
                    f"configuration {_combo_name(combo)} (modalities {list(names)}) cannot take "
                    f"the parameters {sorted(nested)}: {error} Give a parameter only to a grid "
                    "whose every configuration accepts it."
                ) from None


def _check_raw_modalities(
    config: BenchConfig, combos: Sequence[Mapping[str, Any]], data: Sequence[BenchData]
) -> None:
    """Text and categorical modalities only where every configuration's backbone reads them."""
    params = dict(config.params)
    nested = split_nested(params, "backbone")
    for bench_data in data:
        if bench_data.source.get("streamed") or not has_raw(bench_data):
            continue  # a streamed data set is numeric (checked as it is read)
        names = tuple(bench_data.X)
        head = {m: np.asarray(v[:2]) for m, v in bench_data.X.items()}
        for combo in combos:
            backbone = combo["backbone"]
            if "backbone" in params:
                backbone = fixed_backbones(backbone, params["backbone"], names)
            try:
                resolve_kinds(head, resolve_backbones(backbone, nested, names))
            except (TypeError, ValueError) as error:
                raise PreflightError(
                    f"data set {bench_data.name!r}, configuration {_combo_name(combo)}: {error} "
                    "In the bench, fix a modality's backbone with --param "
                    '\'backbone={"text": "hashed_text"}\'.'
                ) from None


def _check_baseline(
    config: BenchConfig, combos: Sequence[Mapping[str, Any]], data: Sequence[BenchData]
) -> None:
    if config.baseline is None:
        return
    names = [_combo_name(combo) for combo in combos]
    for bench_data in data:
        streamed = bench_data.source.get("streamed", False)
        references = (
            reference_names(list(bench_data.X)) if config.references and not streamed else []
        )
        try:
            match_baseline([*names, *references], config.baseline)
        except ValueError as error:
            raise PreflightError(f"data set {bench_data.name!r}: {error}") from None
