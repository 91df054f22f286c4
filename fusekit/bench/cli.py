"""The ``fusekit bench`` sub-command: its options (:func:`add_bench_parser`), the
:class:`BenchConfig` they give (:func:`config_from_args`) and its handler (:func:`bench_command`,
which returns the exit code).

The command line itself is :mod:`fusekit.cli`; this module never imports it back.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

# Light modules only: building the parser (``fusekit bench --help``) imports neither torch nor
# pandas; the handlers import the bench itself.
from fusekit.bench.parsing import parse_dataset_name, parse_value
from fusekit.bench.settings import GRID_KINDS, BenchConfig, Sweep, quick_config

GRID_FLAGS = ("datasets", "data", *GRID_KINDS)


def _names(text: str) -> list[str] | str:
    names = [n.strip() for n in text.split(",") if n.strip()]
    return "all" if names == ["all"] else names


def parse_sweep(text: str) -> Sweep:
    """``gaussian``, ``gaussian@0,0.5,1``, ``gaussian:fou+kar@0,1`` -> :class:`Sweep`."""
    head, _, levels = text.partition("@")
    corruption, _, modalities = head.partition(":")
    try:
        parsed = tuple(float(v) for v in levels.split(",") if v) if levels else None
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"--corrupt {text!r}: levels after @ must be numbers separated by commas."
        ) from error
    names = tuple(m for m in modalities.split("+") if m) or None
    return Sweep(corruption.strip(), names, parsed)


def parse_param(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--param expects KEY=VALUE, got {text!r}.")
    key, value = text.split("=", 1)
    return key.strip(), parse_value(value.strip())


def parse_tune(text: str) -> tuple[str, list[Any]]:
    key, value = parse_param(text)
    return key, value if isinstance(value, list) else [value]


def add_bench_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``bench`` to an ``add_subparsers()`` object; returns the sub-parser."""
    parser = subparsers.add_parser(
        "bench",
        help="cross-validated leaderboard, robustness sweeps and HTML report",
        description="Cross-validate a grid of fusion x weighting x calibration x backbone on "
        "data sets, sweep test-time corruptions, and write results.csv, leaderboard.md, PNG "
        "plots, manifest.json and report.html. With no data set or grid option: the default suite "
        "(UCI Multiple Features views and BasicMotions sequences, every distinct installed "
        "fusion and weighting, scikit-learn reference rows).",
    )
    data = parser.add_argument_group("data")
    data.add_argument(
        "--dataset",
        dest="datasets",
        action="append",
        metavar="NAME",
        help="registered data set, optionally with loader arguments "
        "(mfeat:views=fou,kar); repeatable. `fusekit datasets` lists them",
    )
    data.add_argument(
        "--data",
        action="append",
        metavar="FILE",
        help="a CSV or Parquet file (needs --target); repeatable",
    )
    data.add_argument("--target", help="target column of --data files")
    data.add_argument(
        "--stream",
        action="store_true",
        default=None,
        help="read --data Parquet files and folders chunk by chunk (row groups) instead of "
        "loading them: clean scores only (no reference rows; --corrupt, --missing and --tune "
        "are refused)",
    )
    data.add_argument(
        "--groups",
        metavar="COLUMN",
        help="column of group labels (subject, session) of --data files: no group is on both "
        "sides of a split (default splitter then stratified_group_kfold / group_kfold; the "
        "nested --tune splits are grouped too)",
    )
    data.add_argument(
        "--modalities",
        metavar="JSON",
        help='modality spec of --data files: {"audio": ["a1", "a2"], "video": '
        '"^v_"} (columns or regex), or a JSON file; default: modality__ prefixes',
    )
    grid = parser.add_argument_group("grid (comma-separated names, or 'all')")
    defaults = BenchConfig()
    for kind in GRID_KINDS:
        grid.add_argument(
            f"--{kind}",
            type=_names,
            metavar="NAMES",
            help=f"default {','.join(getattr(defaults, kind))} (default suite: "
            f"{getattr(quick_config(), kind)})",
        )
    grid.add_argument(
        "--design",
        choices=["product", "axes"],
        help="every combination (product, default) or one axis at a time around the "
        "estimator's default of each (concat, none, none, mlp) when listed (axes)",
    )
    grid.add_argument(
        "--param",
        type=parse_param,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="estimator parameter for every configuration (fusion__rank=4); repeatable",
    )
    grid.add_argument(
        "--suite",
        action="store_true",
        help="the default suite's grid and sweeps (every distinct fusion and weighting, axes "
        "design, Gaussian sweep, removed-modality table) on the --dataset/--data given",
    )
    grid.add_argument(
        "--no-references",
        dest="references",
        action="store_false",
        default=None,
        help="leave out the scikit-learn reference rows (logistic, hist_gb, each modality alone)",
    )
    base = BenchConfig()
    quick = quick_config()
    cv = parser.add_argument_group(
        "cross-validation and training (defaults: with a --dataset/--data or grid option, "
        "else the default suite's)"
    )
    for flag, kind in (
        ("--folds", int),
        ("--repeats", int),
        ("--seed", int),
        ("--max-epochs", int),
        ("--batch-size", int),
        ("--lr", float),
    ):
        field = flag[2:].replace("-", "_")
        cv.add_argument(
            flag,
            type=kind,
            help="default: each method's recommended lr (Adam 0.01 if none); given: the same lr "
            "for every configuration"
            if field == "lr"
            else f"default {base.max_epochs} (default suite: a budget of "
            f"{quick.budget_steps} optimiser steps, --budget-steps; given: epochs, no step budget)"
            if field == "max_epochs"
            else f"default {getattr(base, field)} (default suite: {getattr(quick, field)})",
        )
    cv.add_argument(
        "--cv",
        metavar="NAME",
        help="outer splitter: kfold, stratified_kfold, group_kfold, stratified_group_kfold, "
        "leave_one_group_out, shuffle_split, stratified_shuffle_split (default stratified k-fold, "
        "grouped with --groups)",
    )
    cv.add_argument(
        "--cv-param",
        type=parse_param,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="parameter of --cv (test_size=0.2); repeatable",
    )
    cv.add_argument(
        "--budget-steps",
        type=int,
        metavar="N",
        help="train every configuration for N optimiser steps (epochs per fold from the "
        "training-fold size and batch size; replaces --max-epochs) (default suite: "
        f"{quick.budget_steps})",
    )
    cv.add_argument(
        "--equal-budget",
        action="store_true",
        default=None,
        help="the same training settings for every configuration: Adam at --lr (default "
        "0.01), constant lr; without it each method trains with the lr, optimiser and schedule "
        "its components recommend (unless --lr is given)",
    )
    cv.add_argument("--metric", help="sklearn scorer name (default accuracy / r2)")
    cv.add_argument(
        "--tune",
        type=parse_tune,
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="choose this estimator parameter per outer fold by nested CV on the training fold "
        "(lr=1e-3,1e-2); repeatable: every combination is tried",
    )
    cv.add_argument("--tune-folds", type=int, help="inner folds of --tune (default 3)")
    cv.add_argument(
        "--tune-search",
        choices=["grid", "halving", "optuna"],
        help="scikit-learn search of --tune: GridSearchCV (default), HalvingGridSearchCV, or "
        "OptunaSearchCV (needs optuna-integration)",
    )
    board = parser.add_argument_group("leaderboard")
    board.add_argument(
        "--rank-by",
        choices=["clean", "robust", "missing"],
        help="criterion of the verdicts (default clean); robust needs --corrupt, missing --missing",
    )
    board.add_argument(
        "--rope",
        type=float,
        metavar="DELTA",
        help="region of practical equivalence of the verdict 'equivalent to the best', in the "
        f"metric's units (default {base.rope:g}: one point of accuracy or r2)",
    )
    board.add_argument(
        "--baseline",
        metavar="CONFIG",
        help="add each configuration's paired difference from this one (concat+none, ref:logistic)",
    )
    robust = parser.add_argument_group("robustness")
    robust.add_argument(
        "--corrupt",
        type=parse_sweep,
        action="append",
        metavar="SPEC",
        help="corruption sweep: NAME[:MOD+MOD][@L1,L2,...], e.g. "
        "gaussian@0,0.5,1 or salt_and_pepper:fou; repeatable",
    )
    robust.add_argument(
        "--missing",
        action="store_true",
        default=None,
        help="also score every subset of modalities removed at test time",
    )
    run = parser.add_argument_group("running")
    run.add_argument("--out", help="output directory (default bench-out; with --rerun: DIR/rerun)")
    run.add_argument(
        "--rerun",
        metavar="DIR",
        help="run the bench recorded in DIR/manifest.json again (into --out or DIR/rerun); "
        "where it runs comes from --backend, --n-jobs and --scheduler, never from the file; "
        "--fusion/--weighting/--calibration/--backbone replace the recorded axis",
    )
    run.add_argument(
        "--backend",
        choices=["serial", "processes", "joblib", "dask"],
        default="processes",
        help="where the fits run (default processes)",
    )
    run.add_argument(
        "--n-jobs", type=int, default=1, help="parallel workers (-1: all cores; default 1)"
    )
    run.add_argument(
        "--devices",
        metavar="LIST",
        help="torch devices to train on, one unit per device at a time, e.g. cuda:0,cuda:1 "
        "(one worker per entry; backends processes, dask, serial); recorded per row",
    )
    run.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="Dask scheduler (tcp://host:8786); default: a LocalCluster on loopback",
    )
    run.add_argument(
        "--no-resume",
        dest="resume",
        action="store_false",
        help="start afresh instead of skipping units already in results.csv",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=bench_command)
    return parser


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    """The quick suite when no data set or grid option is given, else plain defaults; then
    every option given overrides."""
    given = any(getattr(args, flag) is not None for flag in GRID_FLAGS)
    config = BenchConfig() if given and not args.suite else quick_config()
    overrides: dict[str, Any] = {}
    if args.datasets or args.data:
        overrides["datasets"] = tuple((args.datasets or []) + (args.data or []))
    for name in (
        *GRID_KINDS,
        "design",
        "folds",
        "repeats",
        "seed",
        "max_epochs",
        "batch_size",
        "lr",
        "equal_budget",
        "metric",
        "target",
        "modalities",
        "missing",
        "references",
        "rank_by",
        "baseline",
        "tune_folds",
        "stream",
        "tune_search",
        "groups",
        "cv",
        "budget_steps",
        "rope",
    ):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    if args.param:
        overrides["params"] = dict(args.param)
    if args.corrupt:
        overrides["sweeps"] = tuple(args.corrupt)
    if args.tune:
        overrides["tune"] = dict(args.tune)
    if args.cv_param:
        overrides["cv_params"] = dict(args.cv_param)
    if args.max_epochs is not None and args.budget_steps is None:
        overrides["budget_steps"] = None  # epochs asked for: no step budget
    return dataclasses.replace(config, **overrides)


def bench_command(args: argparse.Namespace) -> int:
    """Exit codes: 0 every unit ran, 1 some unit failed (the leaderboard and report are still
    written), 2 the bench could not start (bad option, data or output directory, another bench
    holding ``--out``, a damaged results file), 130 / 143 stopped by SIGINT / SIGTERM."""
    from fusekit.bench.api import rerun, run_bench
    from fusekit.bench.outdir import OutputLockedError
    from fusekit.bench.stopping import BenchInterrupted

    try:
        if args.rerun:
            result = rerun(
                args.rerun,
                args.out,
                backend=args.backend,
                n_jobs=args.n_jobs,
                scheduler=args.scheduler,
                devices=args.devices,
                quiet=args.quiet,
                **{
                    kind: getattr(args, kind)
                    for kind in GRID_KINDS
                    if getattr(args, kind) is not None
                },
            )
        else:
            result = run_bench(
                config_from_args(args),
                out_dir=args.out or "bench-out",
                backend=args.backend,
                n_jobs=args.n_jobs,
                scheduler=args.scheduler,
                devices=args.devices,
                resume=args.resume,
                quiet=args.quiet,
            )
    except BenchInterrupted as stop:
        print(f"fusekit bench: {stop}", file=sys.stderr)
        return stop.exit_code
    except (
        ValueError,
        TypeError,
        ImportError,
        FileNotFoundError,
        NotADirectoryError,
        OutputLockedError,
    ) as error:
        print(f"fusekit bench: error: {error}", file=sys.stderr)
        return 2
    print(result.leaderboard)
    print(f"{result.n_run} fits run, {result.n_skipped} resumed; report: {result.report}")
    statuses = result.results.groupby("unit_id")["status"]
    failed = int(statuses.agg(lambda s: bool((s != "ok").any())).sum())
    if failed:
        print(
            f"fusekit bench: {failed} of {statuses.ngroups} unit(s) failed: see the failures in "
            f"{result.report}; a rerun into the same --out retries them.",
            file=sys.stderr,
        )
        return 1
    return 0


__all__ = ["add_bench_parser", "bench_command", "config_from_args", "parse_dataset_name"]
