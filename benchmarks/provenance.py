"""Provenance of a committed results file, and its raw per-run values.

Every reproduction script writes, at the top of its results file, the lines of
:func:`header_lines` (the commit it ran from, its command, the library versions and the
machine) and, at the bottom, :meth:`Records.block`: one line per run (``key=value`` pairs that
name the configuration, then the measured values) that ``tests/benchmarks/test_reproduce.py``
reruns for the cheapest configuration and compares exactly. ``--only KEY=VALUE`` (repeatable;
:func:`add_arguments`) restricts a script to the runs that match and prints their records
instead of a report.

Scripts live in several folders (``benchmarks/``, each plugin's ``benchmarks/``); they import
this module by putting the repository's ``benchmarks/`` folder on ``sys.path``:
``sys.path.insert(0, str(Path(__file__).resolve().parents[N] / "benchmarks"))``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

__all__ = [
    "RECORDS_BEGIN",
    "RECORDS_END",
    "Only",
    "Records",
    "add_arguments",
    "header_lines",
    "parse_records",
]

ROOT = Path(__file__).resolve().parents[1]
#: Libraries whose version can change a figure; the ones not installed are left out.
VERSIONED = ("fusekit-learn", "torch", "numpy", "scipy", "scikit-learn", "skorch", "pandas")
RECORDS_BEGIN = "<!-- raw records: one line per run, compared exactly by tests/benchmarks -->"
RECORDS_END = "<!-- end of raw records -->"
_RECORD = re.compile(r"[A-Za-z_][\w.]*=\S+( [A-Za-z_][\w.]*=\S+)*")


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def commit_line() -> str:
    """``commit: <hash>`` of the checkout, ``+ uncommitted changes`` when a tracked file that
    can change a result differs from it: Python source or a ``pyproject.toml`` /
    ``constraints.txt`` (not the docs, nor the results files a ``make reproduce`` rewrites)."""
    commit = _git("rev-parse", "--short=10", "HEAD") or "unknown (not a git checkout)"
    changed = [
        line[3:]
        for line in _git("status", "--porcelain", "--untracked-files=no").splitlines()
        if line.endswith((".py", "pyproject.toml", "constraints.txt"))
    ]
    return f"commit: {commit}" + (" + uncommitted changes" if changed else "")


def command_line(argv: list[str] | None = None) -> str:
    """``command: python <script path from the repository root> <arguments>``."""
    argv = list(sys.argv if argv is None else argv)
    script = Path(argv[0]).resolve()
    if script.is_relative_to(ROOT):
        argv[0] = str(script.relative_to(ROOT))
    return "command: python " + " ".join(argv)


def versions_line(extra: tuple[str, ...] = ()) -> str:
    """``versions: python 3.11.7, torch 2.13.0+cpu, ...`` (installed distributions only):
    :data:`VERSIONED`, then the distributions ``extra`` names (a script's own dependencies)."""
    found = [f"python {platform.python_version()}"]
    for name in (*VERSIONED, *extra):
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return "versions: " + ", ".join(found)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_id() -> str:
    """``x86_64, <CPU model>``: what float32 results depend on (kernels differ between CPUs)."""
    return f"{platform.machine()}, {_cpu_model()}"


def machine_line() -> str:
    """``machine: x86_64, <CPU model>, N cores, T torch thread(s), <OS>``."""
    try:
        import torch

        threads = f", {torch.get_num_threads()} torch thread(s)"
    except ImportError:
        threads = ""
    return (
        f"machine: {machine_id()}, {os.cpu_count()} cores{threads}, "
        f"{platform.system()} {platform.release()}"
    )


def header_lines(argv: list[str] | None = None, extra_versions: tuple[str, ...] = ()) -> list[str]:
    """The four provenance lines: commit, command, versions (``extra_versions``: distributions
    the script depends on beyond :data:`VERSIONED`), machine (call it after setting the torch
    thread count, so the machine line records it)."""
    return [commit_line(), command_line(argv), versions_line(extra_versions), machine_line()]


class Only:
    """The ``--only KEY=VALUE`` filter: :meth:`keeps` is true for a run whose named keys all
    match (keys it does not name are free); compared as strings."""

    def __init__(self, pairs: list[str] | None) -> None:
        self.wanted: dict[str, str] = {}
        for pair in pairs or []:
            key, sep, value = pair.partition("=")
            if not sep or not key:
                raise ValueError(f"--only takes KEY=VALUE, got {pair!r}.")
            self.wanted[key] = value

    def __bool__(self) -> bool:
        return bool(self.wanted)

    def keeps(self, **config: object) -> bool:
        return all(str(config[k]) == v for k, v in self.wanted.items() if k in config)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--only KEY=VALUE`` (repeatable) to a reproduction script's parser."""
    parser.add_argument(
        "--only",
        action="append",
        default=None,
        metavar="KEY=VALUE",
        help="run only the configurations that match (e.g. seed=0) and print their raw records",
    )


def _cell(value: object, measured: bool) -> str:
    """A measured float to 6 decimals; anything else (a configuration value) as ``str``."""
    if measured and isinstance(value, float):
        return f"{value:.6f}"
    text = str(value)
    if any(c.isspace() for c in text) or "=" in text:
        raise ValueError(f"record value {text!r} must hold no spaces and no '='.")
    return text


class Records:
    """Raw per-run values: :meth:`add` one run's configuration and measurements, in order."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, config: dict[str, object], **values: float) -> None:
        """One run: its configuration (``key=str(value)``, the same strings ``--only`` matches)
        and its measured values (floats to 6 decimals)."""
        cells = [f"{k}={_cell(v, False)}" for k, v in config.items()]
        cells += [f"{k}={_cell(v, True)}" for k, v in values.items()]
        self.lines.append(" ".join(cells))

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"

    def block(self) -> list[str]:
        """The records as the closing lines of a Markdown results file."""
        return ["", RECORDS_BEGIN, "", "```", *self.lines, "```", "", RECORDS_END]


def parse_records(text: str) -> list[str]:
    """The record lines of a results file's raw block (``[]`` when it has none) or of a
    script's ``--only`` output (every non-empty line)."""
    if RECORDS_BEGIN in text:
        text = text.split(RECORDS_BEGIN, 1)[1].split(RECORDS_END, 1)[0]
    return [line.strip() for line in text.splitlines() if _RECORD.fullmatch(line.strip())]
