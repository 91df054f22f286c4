"""The output directory of a bench: created if absent, and held by one bench at a time.

Two benches writing one ``results.csv`` would both append the same units (which the leaderboard
would count twice), so :func:`claim` takes an exclusive lock on ``DIR/.fusekit-bench.lock``
(:class:`filelock.FileLock`, an ``flock`` off Windows: the operating system lets it go when its
process ends, however it ends, so a killed bench never leaves a stale lock) and records who holds
it (pid, host, start time) in ``DIR/.fusekit-bench.holder.json``. A second bench fails at once
with :class:`OutputLockedError` naming the holder; it never waits.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from filelock import FileLock, Timeout

from fusekit.atomic import atomic_write_text

LOCK = ".fusekit-bench.lock"
HOLDER = ".fusekit-bench.holder.json"


class OutputLockedError(RuntimeError):
    """Another bench is writing into the same output directory."""


def make_out_dir(out_dir: str | Path) -> Path:
    """``out_dir``, created with its parents; ``NotADirectoryError`` naming it when it (or a
    folder above it) is a file."""
    path = Path(out_dir)
    blocking = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise NotADirectoryError(
            f"--out {str(path)!r}: {str(blocking)!r} is a file, not a directory. Pass a "
            "directory (new or one of an earlier bench) to --out."
        )
    path.mkdir(parents=True, exist_ok=True)
    return path


def holder(out_dir: str | Path) -> str:
    """Who holds the lock of ``out_dir``, as recorded by its holder (``unknown`` if unreadable)."""
    try:
        record = json.loads((Path(out_dir) / HOLDER).read_text(encoding="utf-8"))
        return f"pid {record['pid']} on host {record['host']}, started {record['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that left no readable record"


@contextlib.contextmanager
def claim(out_dir: str | Path) -> Iterator[Path]:
    """Hold ``out_dir`` (created if absent) for the block; :class:`OutputLockedError` at once if
    another process holds it."""
    path = make_out_dir(out_dir)
    lock = FileLock(path / LOCK, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise OutputLockedError(
            f"another fusekit bench is writing into {str(path)!r} ({holder(path)}; lock file "
            f"{path / LOCK}). Wait for it to finish, or pass another --out."
        ) from None
    try:
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        }
        atomic_write_text(path / HOLDER, json.dumps(record) + "\n")
        yield path
    finally:
        lock.release()
