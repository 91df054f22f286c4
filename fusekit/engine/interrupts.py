"""Tell a real interrupt (Ctrl-C, SIGINT) from a callback's request to stop training.

skorch's convention is that a callback ends ``fit_loop`` by raising ``KeyboardInterrupt``
(``skorch.callbacks.EarlyStopping`` does, and so does fusekit's validation stopping), and skorch's
``partial_fit`` swallows every ``KeyboardInterrupt``, so a user's Ctrl-C also returned normally from
``fit`` with a half-trained model. :func:`watch_interrupts` installs, for the duration of a fit, a
SIGINT handler that records that the signal came before raising ``KeyboardInterrupt`` as Python's
default handler does; the training loop re-raises a ``KeyboardInterrupt`` when the signal was seen
and treats it as a stop request otherwise.

Signals are delivered to the main thread only, so outside it no handler is installed and no
``KeyboardInterrupt`` can be a signal's.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any


class _Seen:
    def __init__(self) -> None:
        self.signal = False

    def __call__(self) -> bool:
        return self.signal


@contextlib.contextmanager
def watch_interrupts() -> Iterator[Callable[[], bool]]:
    """Yield a function that tells whether SIGINT arrived inside the block.

    The previous handler is chained (called after the record) and restored on exit. A process
    that ignores SIGINT (``SIG_IGN``) keeps ignoring it.
    """
    seen = _Seen()
    if threading.current_thread() is not threading.main_thread():
        yield seen
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN or previous is None:
        yield seen
        return

    def record(signum: int, frame: Any) -> None:
        seen.signal = True
        if callable(previous):
            previous(signum, frame)
        raise KeyboardInterrupt  # SIG_DFL, or a chained handler that returned

    signal.signal(signal.SIGINT, record)
    try:
        yield seen
    finally:
        signal.signal(signal.SIGINT, previous)
