"""How many CPU threads an estimator's torch work uses: the ``n_jobs`` parameter.

``n_jobs`` follows scikit-learn's idiom (``joblib.effective_n_jobs``): ``None`` is one thread
(or the ``n_jobs`` of an enclosing ``joblib.parallel_config``), ``-1`` every CPU this process may
use, ``-2`` all but one, a positive number that many. It is applied for the duration of ``fit``,
``partial_fit`` and the prediction methods, to torch's intra-op pool (``torch.set_num_threads``)
and to the BLAS / OpenMP pools of numpy and scikit-learn (``threadpoolctl``), and the previous
settings are restored afterwards.

Why one thread by default: torch's own default is one thread per core, which on a shared or busy
machine, and inside the worker processes of ``GridSearchCV(n_jobs=k)``, runs more threads than
there are free cores; the spinning threads then slow each other down by an order of magnitude
(``docs/scaling.md`` has the measurements). The small networks fusion models mostly are gain
little from more threads; large encoders on a machine of their own want ``n_jobs=-1``.

Estimators fitted at the same time in several threads of one process (joblib's threading
backend): torch's thread count (OpenMP's) belongs to each calling thread, so each call sets and
restores its own; the BLAS pools are one per process, so the first call in limits them and the
last one out restores them.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from numbers import Integral
from typing import Any

import joblib
import torch
from joblib.parallel import get_active_backend
from threadpoolctl import ThreadpoolController

_lock = threading.Lock()
_active = 0  # estimator calls inside ``limited`` right now, in any thread
_restore: list[Any] = []  # the pool limiter the first call in made (it restores the pools)


@functools.cache
def _controller() -> ThreadpoolController:
    """The thread pools of the libraries loaded now, found once (finding them costs ~30 ms)."""
    return ThreadpoolController()


def in_joblib_worker() -> bool:
    """Whether this code runs inside a joblib worker (``GridSearchCV(n_jobs=...)``,
    ``cross_val_score(n_jobs=...)``): joblib gives nested calls a backend of nesting level >= 1."""
    backend, _ = get_active_backend()
    return getattr(backend, "nesting_level", 0) > 0


def resolve(n_jobs: Any) -> int:
    """The number of threads ``n_jobs`` means here (see the module docstring).

    A negative ``n_jobs`` counts the CPUs of this process; inside a joblib worker it is capped
    at the threads the worker was started with (loky starts each with ``cores // k``), so
    ``n_jobs=-1`` inside a parallel search does not oversubscribe either."""
    if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, Integral)):
        raise TypeError(f"n_jobs must be None or a non-zero integer, got {n_jobs!r}.")
    if n_jobs == 0:
        raise ValueError("n_jobs=0 means no thread at all; use None (one), -1 (all) or k >= 1.")
    threads = int(joblib.effective_n_jobs(n_jobs))
    if n_jobs is not None and n_jobs < 0 and in_joblib_worker():
        threads = min(threads, torch.get_num_threads())
    return max(threads, 1)


@contextlib.contextmanager
def limited(n_jobs: Any) -> Iterator[int]:
    """Run the body with ``resolve(n_jobs)`` CPU threads; the previous settings come back after."""
    global _active
    threads = resolve(n_jobs)
    previous = torch.get_num_threads()  # this thread's (OpenMP keeps one per calling thread)
    if previous != threads:
        torch.set_num_threads(threads)
    with _lock:  # the BLAS pools are one per process: the first call in limits them
        if _active == 0:
            _restore[:] = [_controller().limit(limits=threads)]
        _active += 1
    try:
        yield threads
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                _restore.pop().restore_original_limits()
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)
