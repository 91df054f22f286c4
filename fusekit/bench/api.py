"""``run_bench``: load the data sets, plan the units, run the ones not done yet, then write
``results.csv``, ``manifest.json`` (what to rerun it from), ``leaderboard.md``, the PNG plots and
``report.html`` into ``out_dir``; ``rerun``: run the bench a ``manifest.json`` records again."""

from __future__ import annotations

import dataclasses
import os
import platform
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from fusekit.atomic import atomic_write_text
from fusekit.bench import placement
from fusekit.bench.aliases import dealias
from fusekit.bench.backends import check_backend, execute
from fusekit.bench.config import GRID_KINDS, BenchConfig, Unit, axes, label, plan
from fusekit.bench.data import BenchData, from_arrays, is_file_name, load_file, load_named
from fusekit.bench.leaderboard import summarize, to_markdown
from fusekit.bench.manifest import (
    MANIFEST,
    IgnoredRunSettings,
    config_from_json,
    environment,
    read_manifest,
    write_manifest,
)
from fusekit.bench.outdir import claim
from fusekit.bench.plots import Figure, write_plots
from fusekit.bench.preflight import preflight
from fusekit.bench.report import write_report
from fusekit.bench.runner import expected_keys
from fusekit.bench.splitters import check_cv
from fusekit.bench.stopping import (
    BenchInterrupted,
    Terminated,
    signals_ignored,
    sigterm_raises,
    stop_signal,
)
from fusekit.bench.store import ResultStore
from fusekit.bench.streamed import REFERENCES_NOTE, is_streamable, load_streamed
from fusekit.bench.tuning import check_search
from fusekit.robustness.corruptions import get_corruption


@dataclass
class BenchResult:
    """What a bench produced (the same numbers as the files in ``out_dir``)."""

    results: pd.DataFrame  # every row of this run's plan (results.csv may hold more)
    summary: pd.DataFrame  # the leaderboard as a table
    leaderboard: str  # the leaderboard as markdown
    out_dir: Path
    report: Path
    figures: list[Figure]
    n_run: int
    n_skipped: int
    data_checksums: dict[str, str] = dataclasses.field(default_factory=dict)
    manifest: Path | None = None


def load_data(
    config: BenchConfig, data: Mapping[str, tuple[Any, ...]] | None = None
) -> list[BenchData]:
    """``config.datasets`` (names or files) plus in-memory ``{name: (X, y)}`` or
    ``{name: (X, y, groups)}``, loaded once."""
    loaded = []
    for entry in config.datasets:
        if config.stream and is_streamable(entry):  # read chunk by chunk: fusekit.bench.streamed
            if config.target is None:
                raise ValueError(f"data file {entry!r} needs target= (--target COLUMN).")
            loaded.append(load_streamed(entry, config.target, config.modalities))
        elif is_file_name(entry):
            if config.target is None:
                raise ValueError(f"data file {entry!r} needs target= (--target COLUMN).")
            loaded.append(load_file(entry, config.target, config.modalities, config.groups))
        else:
            if config.groups is not None:
                raise ValueError(
                    f"groups={config.groups!r} names a column of data files, but {entry!r} is a "
                    "registered data set; pass a file (--data FILE --groups COLUMN) or "
                    "data={name: (X, y, groups)}."
                )
            loaded.append(load_named(entry))
    for name, arrays in (data or {}).items():
        if not isinstance(arrays, (tuple, list)) or len(arrays) not in (2, 3):
            raise ValueError(
                f"data[{name!r}] must be (X, y) or (X, y, groups), got {type(arrays).__name__}"
                f"{' of length ' + str(len(arrays)) if isinstance(arrays, (tuple, list)) else ''}."
            )
        X, y, *groups = arrays
        loaded.append(from_arrays(name, X, y, {"in_memory": True}, *groups))
    if not loaded:
        raise ValueError("no data set: pass datasets=[names or files] or data={name: (X, y)}.")
    names = [d.name for d in loaded]
    if len(set(names)) != len(names):
        raise ValueError(f"data set names must be distinct, got {names}.")
    return loaded


def _check_sweeps(config: BenchConfig, data: list[BenchData]) -> None:
    for sweep in config.sweeps:
        get_corruption(sweep.corruption)
        for bench_data in data:
            unknown = [m for m in sweep.modalities or () if m not in bench_data.X]
            if unknown:
                raise ValueError(
                    f"corruption sweep {sweep.corruption!r} names modalities {unknown}, but data "
                    f"set {bench_data.name!r} has {list(bench_data.X)}."
                )


def _progress(total: int, quiet: bool) -> Any:
    from tqdm.auto import tqdm

    # no tqdm monitor thread: the processes backend forks this process, best with one thread
    bar = type("BenchProgress", (tqdm,), {"monitor_interval": 0})
    return bar(
        total=total,
        desc="fusekit bench",
        unit="fit",
        disable=quiet,
        file=sys.stderr,
        dynamic_ncols=True,
    )


def run_bench(
    config: BenchConfig | None = None,
    *,
    out_dir: str | Path = "bench-out",
    backend: str = "processes",
    n_jobs: int = 1,
    scheduler: str | None = None,
    devices: str | Sequence[str] | None = None,
    resume: bool = True,
    quiet: bool = False,
    data: Mapping[str, tuple[Any, ...]] | None = None,
    **settings: Any,
) -> BenchResult:
    """Run a cross-validated bench and write its report.

    Parameters:
        config: a :class:`BenchConfig`; ``**settings`` override its fields (or build one:
            ``run_bench(datasets=["mfeat"], fusion="all", folds=5)``).
        out_dir: where ``results.csv``, ``leaderboard.md``, the PNGs and ``report.html`` go.
        backend: ``"serial"``, ``"processes"`` (``n_jobs`` forked processes; loky off Linux),
            ``"joblib"`` (``n_jobs`` loky processes) or ``"dask"`` (``scheduler``
            address, or a loopback ``LocalCluster`` of ``n_jobs`` workers).
        devices: torch devices to train on, one unit per device at a time (``"cuda:0,cuda:1"``
            or a list; one worker per entry, replacing ``n_jobs``); each row records its
            ``device``. See :mod:`fusekit.bench.placement`.
        resume: skip units already finished in ``out_dir/results.csv`` (False: start afresh).
        quiet: no progress bar.
        data: in-memory data sets ``{name: (X, y)}``, or ``{name: (X, y, groups)}`` for
            grouped splits (or ``groups=labels`` with one in-memory data set; ``groups="COL"``
            names the column of data files; ``cv=`` any scikit-learn splitter, or a registered
            name); without ``config`` or ``datasets=`` they are the only data sets (with them:
            added to those).
    """
    labels = settings.get("groups")
    if labels is not None and not isinstance(labels, str):  # group labels of in-memory data
        data = _with_groups(data, settings.pop("groups"))
    if config is None and data and "datasets" not in settings:
        settings["datasets"] = ()  # in-memory data alone: not the default data set as well
    config = dataclasses.replace(config or BenchConfig(), **settings)
    config.validate()
    axes(config)  # a misspelt name fails before any data is loaded or any probe is fitted
    devices = placement.parse_devices(devices)
    check_backend(backend, n_jobs, devices)
    check_cv(config.cv, config.cv_params)
    if config.tune:
        check_search(config.tune_search)
    # the probe fits that find aliases, once; the checks and the plan see the distinct axes, the
    # manifest records the grid as given (``all`` stays ``all``)
    given = config
    config, dropped = dealias(given)
    out_dir = Path(out_dir)
    started = time.perf_counter()
    with claim(out_dir), sigterm_raises():  # one bench per directory; SIGTERM unwinds like Ctrl-C
        loaded = load_data(config, data)
        _check_sweeps(config, loaded)
        preflight(config, loaded)  # every setting no unit could run with, before the first fit
        units = plan(config, loaded)
        store = ResultStore(out_dir)
        modalities = {d.name: d.X for d in loaded}
        expected = {u.unit_id: expected_keys(u, modalities[u.dataset]) for u in units}
        done = store.start(resume, expected)
        todo = [u for u in units if u.unit_id not in done]
        _run(
            todo,
            loaded,
            store,
            quiet,
            plan_ids={u.unit_id for u in units},
            backend=backend,
            n_jobs=n_jobs,
            scheduler=scheduler,
            **({"devices": devices} if devices else {}),
        )
        order = [u.unit_id for u in units]
        everything = store.finalize(order)
        results = everything[everything["unit_id"].isin(set(order))].reset_index(drop=True)
        info = _run_info(config, loaded, backend, n_jobs, scheduler)
        if devices:
            info["devices"] = ", ".join(devices) + " (one unit per device at a time)"
        info["units"] = f"{len(todo)} run, {len(units) - len(todo)} resumed from results.csv"
        info["wall time"] = f"{time.perf_counter() - started:.1f} s"
        summary = summarize(
            results, rank_by=config.rank_by, baseline=config.baseline, rope=config.rope
        )
        notes = (
            [f"Not listed, the same method under another name: {alias_note(dropped)}."]
            if dropped
            else []
        )
        if dropped:
            info["aliases dropped"] = alias_note(dropped)
        leaderboard = to_markdown(summary, notes=notes)
        atomic_write_text(out_dir / "leaderboard.md", leaderboard + "\n")
        figures = write_plots(results, summary, out_dir)
        report = write_report(out_dir, results, summary, figures, info)
        manifest = write_manifest(
            out_dir, given, loaded, {"backend": backend, "n_jobs": n_jobs, "scheduler": scheduler}
        )
    return BenchResult(
        results,
        summary,
        leaderboard,
        out_dir,
        report,
        figures,
        len(todo),
        len(units) - len(todo),
        {d.name: d.fingerprint for d in loaded},
        manifest,
    )


def rerun(
    run_dir: str | Path,
    out_dir: str | Path | None = None,
    *,
    backend: str = "processes",
    n_jobs: int = 1,
    scheduler: str | None = None,
    **overrides: Any,
) -> BenchResult:
    """Run the bench recorded in ``run_dir/manifest.json`` again, into ``out_dir`` (default
    ``run_dir/rerun``), from scratch. Warns when versions or data checksums differ.

    The manifest is data: its components are registered names (a class recorded in it is
    refused: pass it in ``overrides``, ``fusion=[MyFusion]``), and where the work runs
    (``backend``, ``n_jobs``, ``scheduler``) comes from the arguments, never from the file; the
    recorded ones that differ are named in an :class:`IgnoredRunSettings` warning.
    ``overrides``: :func:`~fusekit.bench.run_bench` arguments (``quiet``) or configuration
    fields."""
    manifest = read_manifest(run_dir)
    source = str(Path(run_dir) / MANIFEST)
    components = {kind: overrides.pop(kind) for kind in (*GRID_KINDS, "cv") if kind in overrides}
    config = config_from_json(manifest["config"], source, components)
    in_memory = [d["name"] for d in manifest["data"] if d["source"].get("in_memory")]
    if in_memory:
        raise ValueError(
            f"{run_dir} benchmarked in-memory data {in_memory} (run_bench(data=...)); a rerun "
            "can only reload registered data sets and files. Pass the same data again with "
            "run_bench(config, data=...) instead."
        )
    now = environment()
    changed = {
        k: (manifest["environment"].get(k), v)
        for k, v in now.items()
        if k != "platform" and manifest["environment"].get(k) != v
    }
    if changed:
        warnings.warn(f"rerun with other versions than recorded: {changed}", stacklevel=2)
    run = {"backend": backend, "n_jobs": n_jobs, "scheduler": scheduler}
    ignored = {k: v for k, v in manifest["run"].items() if run[k] != v}
    if ignored:
        warnings.warn(
            f"{source}: the rerun runs with {run}, not the recorded {ignored}: a file never "
            "chooses where work runs or where data is sent. To use them, pass them yourself "
            "(--backend, --n-jobs, --scheduler; or rerun(DIR, backend=..., ...)).",
            IgnoredRunSettings,
            stacklevel=2,
        )
    target = Path(out_dir) if out_dir is not None else Path(run_dir) / "rerun"
    result = run_bench(config, out_dir=target, resume=False, **run, **overrides)
    recorded = {d["name"]: d["checksum"] for d in manifest["data"]}
    loaded = result.data_checksums
    if recorded != loaded:
        warnings.warn(
            f"data checksums differ from the record: recorded {recorded}, now {loaded}",
            stacklevel=2,
        )
    return result


def _with_groups(
    data: Mapping[str, tuple[Any, ...]] | None, groups: Any
) -> dict[str, tuple[Any, ...]]:
    """``groups=labels`` given beside one in-memory data set: its third element."""
    if not data or len(data) != 1:
        raise ValueError(
            "groups= as labels needs exactly one in-memory data set (data={name: (X, y)}); "
            f"got {len(data or {})}. Pass data={{name: (X, y, groups)}} for each, or groups='COL' "
            "for the column of data files."
        )
    ((name, arrays),) = data.items()
    if len(arrays) != 2:
        raise ValueError(f"data[{name!r}] has its own groups; do not pass groups= as well.")
    return {name: (*arrays, groups)}


def alias_note(dropped: Mapping[str, Mapping[Any, Any]]) -> str:
    """``weighting compose = none`` for each alias the grid dropped."""
    return "; ".join(
        f"{kind} {label(kind, alias)} = {label(kind, kept)}"
        for kind, pairs in dropped.items()
        for alias, kept in pairs.items()
    )


def _run(
    todo: list[Unit],
    loaded: list[BenchData],
    store: ResultStore,
    quiet: bool,
    plan_ids: set[str],
    **backend: Any,
) -> None:
    """Execute the units, saving each one's rows as it arrives, under one progress bar.

    SIGINT or SIGTERM stops the run at once: the units in flight are not saved (a unit's rows
    are saved only when it has finished) and :class:`BenchInterrupted` says what was kept."""
    arrays = {d.name: (d.X, d.y) for d in loaded}
    failures = saved = 0
    with _progress(len(todo), quiet) as bar:

        def on_result(rows: list[dict[str, Any]]) -> None:
            nonlocal failures, saved
            store.append(rows)
            saved += 1
            failures += any(r["status"] != "ok" for r in rows)
            bar.update(1)
            if failures:
                bar.set_postfix(failed=failures)

        try:
            execute(todo, arrays, on_result, **backend)
        except (KeyboardInterrupt, Terminated) as error:
            with signals_ignored():  # count what is on disk (a second Ctrl-C must not cut it)
                try:
                    kept = len(store.unit_ids() & plan_ids)
                except ValueError:
                    kept = len(plan_ids) - len(todo) + saved
            signum = stop_signal(error)
            raise BenchInterrupted(signum, kept, len(plan_ids), store.path) from error


def _run_info(
    config: BenchConfig,
    loaded: list[BenchData],
    backend: str,
    n_jobs: int,
    scheduler: str | None,
) -> dict[str, Any]:
    from fusekit import __version__

    shapes = "; ".join(
        f"{d.name}: n={len(d.y)}, {d.task}, " + ", ".join(f"{m} {s}" for m, s in d.shapes.items())
        for d in loaded
    )
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "data sets": shapes,
        "cross-validation": _protocol(config, loaded),
        "training": (
            f"budget {config.budget_steps} optimiser steps per fit (epochs per fold from its "
            "size and batch size)"
            if config.budget_steps is not None
            else f"max_epochs={config.max_epochs}"
        )
        + f", batch_size={config.batch_size}, "
        f"lr={'recommended' if config.lr is None else config.lr}"
        f"{', equal budget (Adam, constant lr)' if config.equal_budget else ''}, "
        f"params={dict(config.params)}"
        + (
            f"; tuned per fold by nested {config.tune_folds}-fold CV ({config.tune_search} "
            f"search) over {dict(config.tune)}"
            if config.tune
            else ""
        ),
        "sweeps": ", ".join(
            f"{s.corruption} on {list(s.modalities) if s.modalities else 'each modality'} "
            f"at {list(s.levels) if s.levels else 'default levels'}"
            for s in config.sweeps
        )
        or "none",
        "missing-modality table": config.missing,
        **(
            {"reference rows": REFERENCES_NOTE}
            if config.references and any(d.source.get("streamed") for d in loaded)
            else {}
        ),
        "equivalence": f"ROPE ±{config.rope:g} (practically equivalent to the best)",
        "backend": f"{backend} (n_jobs={n_jobs}{', scheduler ' + scheduler if scheduler else ''})",
        "machine": f"{platform.platform()}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"(1 thread per unit), fusekit {__version__}",
    }


def _protocol(config: BenchConfig, loaded: list[BenchData]) -> str:
    """The outer cross-validation in words (splitter, folds, repeats, seed, groups)."""
    from fusekit.bench.splitters import default_name, describe

    grouped = [d.name for d in loaded if d.groups is not None]
    spec = describe(config.cv, config.cv_params)
    if spec is None:
        names = sorted({default_name(d.task, d.groups is not None) for d in loaded})
        spec_text = f"{config.folds}-fold {'/'.join(names)}"
    else:
        spec_text = f"{spec.get('name', spec.get('class'))} {spec['params']}"
    groups = f", grouped by {config.groups or 'the given groups'} on {grouped}" if grouped else ""
    return f"{spec_text} x {config.repeats} repeat(s), seed {config.seed}{groups}"
