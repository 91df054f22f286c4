"""Tiny ``fusekit bench`` runs in subprocesses, and the clean-up of every process they start."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

ROOT = Path(__file__).resolve().parents[2]  # the checkout under test, first on the path
SLOW = ("--max-epochs", "400", "--batch-size", "2")  # seconds per fit on 40 rows
MEDIUM = ("--max-epochs", "100", "--batch-size", "4")  # about a second per fit


def tiny_csv(folder: Path) -> Path:
    """40 rows, modalities ``a`` (2 columns) and ``b`` (1), a binary target ``y``."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "a__x1": rng.normal(size=40),
            "a__x2": rng.normal(size=40),
            "b__x1": rng.normal(size=40),
            "y": np.arange(40) % 2,
        }
    )
    path = folder / "tiny.csv"
    frame.to_csv(path, index=False)
    return path


def bench_args(
    data: Path, out: Path, *extra: str, fusion: str = "concat", folds: int = 2
) -> list[str]:
    """``fusekit bench`` arguments of a ``folds``-fold bench of ``fusion`` on ``data`` into
    ``out``."""
    return [
        "bench",
        "--data",
        str(data),
        "--target",
        "y",
        "--fusion",
        fusion,
        "--weighting",
        "none",
        "--calibration",
        "none",
        "--backbone",
        "mlp",
        "--no-references",
        "--folds",
        str(folds),
        "--quiet",
        "--out",
        str(out),
        *extra,
    ]


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def wait_for(condition: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def saved_units(out: Path) -> int:
    """Units with rows in ``out/results.csv`` (0 while it is absent or has only its header)."""
    path = out / "results.csv"
    try:
        return pd.read_csv(path)["unit_id"].nunique()
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return 0


class Tracked:
    """A started process and every descendant seen while it ran (orphans leave its tree)."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process
        self.seen: dict[int, psutil.Process] = {}

    def children(self) -> list[psutil.Process]:
        try:
            found = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        self.seen.update({p.pid: p for p in found})
        return found

    def alive_descendants(self) -> list[psutil.Process]:
        return [p for p in self.seen.values() if _alive(p)]


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@contextlib.contextmanager
def started(args: list[str], **popen: object) -> Iterator[Tracked]:
    """``python -m fusekit ARGS`` in its own session; killed with all it started, afterwards."""
    process = subprocess.Popen(
        [sys.executable, "-m", "fusekit", *args],
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **popen,
    )
    tracked = Tracked(process)
    try:
        yield tracked
    finally:
        tracked.children()
        for leftover in tracked.seen.values():
            with contextlib.suppress(psutil.NoSuchProcess):
                leftover.kill()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # its own session: only what it started
        if process.poll() is None:
            process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            stream.close()


def python_holding(code: str) -> subprocess.Popen:
    """``python -c CODE`` with the checkout on the path (the caller cleans it up)."""
    return subprocess.Popen(
        [sys.executable, "-c", code],
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
