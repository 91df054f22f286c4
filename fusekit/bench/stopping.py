"""Stopping a bench: Ctrl-C (SIGINT) or SIGTERM ends the run at once, saves nothing of the units
in flight, shuts the workers down and says what was kept.

SIGINT raises ``KeyboardInterrupt`` (Python's default, and a real one propagates out of ``fit``).
SIGTERM would end the process on the spot, leaving worker processes behind; during a run
:func:`sigterm_raises` turns it into :class:`Terminated` instead, a ``BaseException`` that is
neither an ``Exception`` (which a unit records as its error) nor a ``KeyboardInterrupt`` (which
skorch takes as a callback's request to stop training), so it unwinds the run like Ctrl-C.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + signal number, as a shell reports


class Terminated(BaseException):
    """SIGTERM arrived during a bench run."""


class BenchInterrupted(KeyboardInterrupt):
    """A bench stopped by SIGINT or SIGTERM; the finished units are saved, the others are not."""

    def __init__(self, signum: int, saved: int, total: int, path: Path) -> None:
        self.signum = signum
        self.saved, self.total, self.path = saved, total, path
        name = signal.Signals(signum).name
        super().__init__(
            f"interrupted by {name}: {saved} of {total} units are finished and saved in {path}; "
            f"the unit(s) in progress were not saved. Run the same command again to resume the "
            f"other {total - saved}."
        )

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.signum, 1)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` in the block (main thread, default handler only: a
    handler of the caller's own is left alone); the previous handler is restored after."""
    if not _in_main_thread() or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def signals_ignored() -> Iterator[None]:
    """Ignore SIGINT and SIGTERM in the block (a second Ctrl-C must not cut the shutdown of the
    workers short); the previous handlers are restored after."""
    if not _in_main_thread():
        yield
        return
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back for the block and deliver them right after it, so that a
    write is never cut in the middle (main thread only: Python runs signal handlers there; a
    signal mask would not do, another thread of the process would take the signal).
    An ignored signal stays ignored."""
    if not _in_main_thread():
        yield
        return
    pending: list[int] = []

    def defer(signum: int, frame: Any) -> None:
        if signum not in pending:
            pending.append(signum)

    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) not in (signal.SIG_IGN, None):
            previous[signum] = signal.signal(signum, defer)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in pending:
            signal.raise_signal(signum)  # now, to the handler of before the block


def stop_signal(error: BaseException) -> int | None:
    """The signal behind ``error`` (SIGINT for a ``KeyboardInterrupt``), else ``None``."""
    if isinstance(error, Terminated):
        return signal.SIGTERM
    if isinstance(error, KeyboardInterrupt):
        return signal.SIGINT
    return None


def worker_signals() -> None:
    """In a worker process: leave SIGINT to the driver (which stops the workers itself) and let
    SIGTERM end the worker (a forked worker inherits the driver's handlers)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
