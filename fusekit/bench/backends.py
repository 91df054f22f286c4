"""Where the units run: in this process (``serial``), in joblib's process pool (``joblib``,
``n_jobs`` workers) or on a Dask cluster (``dask``: ``scheduler`` address, or a
``LocalCluster`` on loopback with ``n_jobs`` single-threaded worker processes).

All three go through joblib (the Dask one with joblib's ``dask`` backend, which ships each data
set to the workers once with ``scatter``). Results come back as units finish and are handed to
``on_result`` in this process, so they are saved at once. Torch uses one thread per unit in every
backend (see :func:`fusekit.bench.runner.torch_threads`), so numbers do not depend on it.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from joblib import Parallel, delayed, parallel_config

from fusekit.bench.config import Unit
from fusekit.bench.runner import run_unit

BACKENDS = ("serial", "joblib", "dask")
DASK_HINT = 'the dask backend needs dask.distributed: pip install "dask[distributed]"'


def check_backend(backend: str, n_jobs: int) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}.")
    if not isinstance(n_jobs, int) or n_jobs == 0 or n_jobs < -1:
        raise ValueError(f"n_jobs must be a positive integer or -1 (all cores), got {n_jobs!r}.")


def _workers(n_jobs: int) -> int:
    return (os.cpu_count() or 1) if n_jobs == -1 else n_jobs


@contextlib.contextmanager
def dask_client(scheduler: str | None, n_jobs: int, timeout: float = 120) -> Iterator[Any]:
    """A ``distributed.Client`` on ``scheduler``, or on a new loopback ``LocalCluster``."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as error:
        raise ImportError(DASK_HINT) from error
    if scheduler:
        with Client(scheduler, timeout=timeout) as client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=_workers(n_jobs),
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster, timeout=timeout) as client,
    ):
        client.wait_for_workers(_workers(n_jobs), timeout=timeout)
        yield client


def execute(
    units: Sequence[Unit],
    data: dict[str, tuple[Any, Any]],
    on_result: Callable[[list[dict[str, Any]]], None],
    backend: str = "joblib",
    n_jobs: int = 1,
    scheduler: str | None = None,
) -> None:
    """Run every unit, calling ``on_result(rows)`` in this process as each one finishes."""
    check_backend(backend, n_jobs)
    if not units:
        return
    if backend == "serial" or (backend == "joblib" and n_jobs == 1):
        for unit in units:
            on_result(run_unit(unit, *data[unit.dataset]))
        return
    tasks = (delayed(run_unit)(unit, *data[unit.dataset]) for unit in units)
    if backend == "joblib":
        for rows in Parallel(n_jobs=n_jobs, return_as="generator_unordered")(tasks):
            on_result(rows)
        return
    shared = [part for pair in data.values() for part in pair]
    with (
        dask_client(scheduler, n_jobs) as client,
        parallel_config(backend="dask", scatter=shared, wait_for_workers_timeout=120),
    ):
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        parallel = Parallel(n_jobs=n_workers, return_as="generator_unordered")
        for rows in parallel(tasks):
            on_result(rows)
