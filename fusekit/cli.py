"""The ``fusekit`` command line: ``fusekit plugins`` lists every registered method, ``fusekit
new-plugin`` writes a plugin distribution, ``fusekit bench`` cross-validates methods on data sets
and ``fusekit datasets`` lists the data sets it can load."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence

# The one command line (``python -m fusekit``; the Makefile runs it too). Building
# the parser imports nothing heavy (``fusekit --help`` answers at once): the handlers import the
# registry, the scaffold, the data sets and the bench when they run.
from fusekit.bench.cli import add_bench_parser

#: The plugin kinds and, of those, the network component kinds, as ``fusekit.plugin.KINDS`` and
#: ``COMPONENT_KINDS`` define them (that package imports torch, so they are written out here;
#: ``tests/cli/test_startup.py`` checks that the two agree).
PLUGIN_KINDS = ("backbone", "calibration", "fusion", "weighting", "dataset")
COMPONENT_KINDS = ("backbone", "calibration", "fusion", "weighting")


def methods_markdown(entries: list) -> str:
    """The method list as a Markdown table (README's method section is generated from it)."""
    lines = ["| kind | name | distribution | what it is |", "|---|---|---|---|"]
    for e in sorted(entries, key=lambda e: (e.kind, e.name)):
        lines.append(f"| {e.kind} | `{e.name}` | {e.distribution} | {e.description} |")
    return "\n".join(lines)


def _plugins(args: argparse.Namespace) -> int:
    from fusekit.engine.registry import get_registry

    registry = get_registry()
    rows = sorted(
        (e for e in registry.entries() if args.kind in (None, e.kind)),
        key=lambda e: (e.kind, e.name),
    )
    if args.format == "markdown":
        print(methods_markdown(rows))
        return 0
    header = ("kind", "name", "distribution", "version", "description")
    table = [header] + [(e.kind, e.name, e.distribution, e.version, e.description) for e in rows]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True))
            + "  "
            + row[4]
        )
    for failure in registry.failures:
        print(
            f"failed: {failure.plugin} ({failure.distribution} {failure.version}): {failure.error}",
            file=sys.stderr,
        )
    for (kind, name), claimants in sorted(registry.conflicts.items()):
        who = ", ".join(f"{c.distribution} {c.version}" for c in claimants)
        print(f"conflict: {kind} {name!r} is claimed by {who}", file=sys.stderr)
    return 0


def _new_plugin(args: argparse.Namespace) -> int:
    from fusekit.scaffold import new_plugin

    try:
        root = new_plugin(args.name, args.kind, args.dir)
    except (FileExistsError, ValueError) as error:
        print(f"fusekit new-plugin: error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {root}\nnext: pip install -e {root} && pytest {root / 'tests'}")
    return 0


def describe(name: str) -> str:
    """``n=2000, 10 classes; fou (76,), kar (64,)`` for one registered data set."""
    import pandas as pd

    from fusekit.bench.data import from_arrays
    from fusekit.engine.registry import get_registry

    try:
        X, y = get_registry().get("dataset", name)()
        if isinstance(X, pd.DataFrame):
            return (
                f"n={len(X)}, a table of {X.shape[1]} columns (raw; featurise it into "
                "modalities before benching, see its data card)"
            )
        data = from_arrays(name, X, y, {})
    except Exception as error:  # noqa: BLE001 - report, keep listing the others
        return f"not loadable: {type(error).__name__}: {str(error)[:120]}"
    target = (
        f"{len(set(data.y.tolist()))} classes" if data.task == "classification" else "regression"
    )
    shapes = ", ".join(f"{m} {s}" for m, s in data.shapes.items())
    return f"n={len(data.y)}, {target}; {shapes}"


def _datasets(args: argparse.Namespace) -> int:
    from fusekit.engine.registry import get_registry

    entries = sorted(
        (e for e in get_registry().entries() if e.kind == "dataset"), key=lambda e: e.name
    )
    width = max((len(e.name) for e in entries), default=4)
    for entry in entries:
        print(f"{entry.name.ljust(width)}  {entry.distribution}  {entry.description}")
        if args.load:
            print(f"{' ' * width}  {describe(entry.name)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fusekit", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    plugins = commands.add_parser("plugins", help="list registered methods")
    plugins.add_argument("--kind", choices=PLUGIN_KINDS)
    plugins.add_argument("--format", choices=["table", "markdown"], default="table")
    plugins.set_defaults(handler=_plugins)
    scaffold = commands.add_parser("new-plugin", help="write a ready plugin distribution")
    scaffold.add_argument("name", help="method name, e.g. my_fusion")
    scaffold.add_argument("--kind", required=True, choices=COMPONENT_KINDS)
    scaffold.add_argument("--dir", default=".", help="where to create fusekit-NAME/")
    scaffold.set_defaults(handler=_new_plugin)
    add_bench_parser(commands)
    datasets = commands.add_parser("datasets", help="list loadable data sets with shapes")
    datasets.add_argument(
        "--no-load",
        dest="load",
        action="store_false",
        help="names and descriptions only (do not load to get shapes)",
    )
    datasets.set_defaults(handler=_datasets)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return call_handler(build_parser().parse_args(argv))


def call_handler(args: argparse.Namespace) -> int:
    """Run the parsed command's handler; a reader that closed the pipe ends it quietly, Ctrl-C
    (SIGINT) or SIGTERM with 130 / 143 and one line."""
    from fusekit.bench.stopping import EXIT_CODES, Terminated, stop_signal

    try:
        status = args.handler(args)
        sys.stdout.flush()  # a reader that left early shows up here, not at interpreter exit
    except (KeyboardInterrupt, Terminated) as error:  # outside a bench's run loop (which says more)
        signum = stop_signal(error)
        name = signal.Signals(signum).name
        print(f"fusekit {args.command}: interrupted by {name}", file=sys.stderr)
        return EXIT_CODES[signum]
    except BrokenPipeError:
        # ``fusekit plugins | head``: the reader closed the pipe, which is not our error. Point
        # stdout at devnull so the interpreter's final flush does not raise again (the recipe of
        # the Python docs, "Note on SIGPIPE" in the signal module).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return status


if __name__ == "__main__":
    raise SystemExit(main())
