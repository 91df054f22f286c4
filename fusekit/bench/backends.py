"""Where the units run: in this process (``serial``), in ``n_jobs`` worker processes forked from
this one (``processes``, the default), in joblib's loky process pool (``joblib``) or on a Dask
cluster (``dask``: ``scheduler`` address, or a ``LocalCluster`` on loopback with ``n_jobs``
single-threaded worker processes).

``processes`` forks the workers from this process after it has imported torch, fusekit and the
plugins and fitted a tiny model once (:func:`~fusekit.bench.runner.warm_up`) with one torch
thread: workers start in milliseconds instead of paying those seconds each (a loky worker is a
fresh interpreter: about 5 s of imports and set-up on a 2-core machine), and they inherit the
data sets instead of receiving a pickled copy with every unit. Forking is used on Linux only (the
platform where a process that imported torch forks safely, as ``DataLoader`` workers do); elsewhere
``processes`` runs on loky. The parent forks before any thread of the pool exists.

Results come back as units finish and are handed to ``on_result`` in this process, so they are
saved at once; workers only return rows, they never write. Torch uses one thread per unit in
every backend (see :func:`fusekit.bench.runner.torch_threads`), so numbers do not depend on it.

Dask runs each unit as one future (key ``fusekit-bench-<unit_id>-<run>``) that depends on its data
set's ``X`` and ``y``, each one a task of the graph rather than ``scatter``-ed: the scheduler keeps
one copy of each data set (the price) and rebuilds it on a live worker when every worker holding it
has died, which scattered data cannot survive; a worker fetches it from a peer once. Lost workers
are Dask's job: the scheduler reruns the tasks of a worker that died on another worker, up to
``allowed-failures`` deaths per task (:data:`ALLOWED_FAILURES` on our ``LocalCluster``, the
scheduler's own setting on a remote one), after which that unit is recorded as an ``error`` row
(``KilledWorker``) and the rest of the bench goes on. A task that raises outside :func:`run_unit`
(e.g. a plugin raising a ``BaseException`` that is no ``Exception``) is retried :data:`RETRIES`
times (``submit(retries=...)``). One future per unit, collected once by this process, means a
unit that ran twice is saved once.

Stopping: a ``KeyboardInterrupt`` (Ctrl-C) or :class:`~fusekit.bench.stopping.Terminated`
(SIGTERM, see :mod:`fusekit.bench.stopping`) in this process ends every worker before it
propagates: forked workers are terminated at once (they ignore SIGINT, leaving it to this
process, and die on SIGTERM), joblib aborts and kills its loky workers, and the Dask client and
``LocalCluster`` are closed. A unit's interrupt is never saved as its result.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import sys
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from joblib import Parallel, delayed

from fusekit.bench import placement
from fusekit.bench.config import Unit
from fusekit.bench.runner import error_rows, run_unit, run_unit_on_dask, torch_threads, warm_up
from fusekit.bench.stopping import signals_ignored

BACKENDS = ("serial", "processes", "joblib", "dask")
DASK_HINT = 'the dask backend needs dask.distributed: pip install "dask[distributed]"'
ALLOWED_FAILURES = 3  # worker deaths one task may cause before it is given up (KilledWorker)
RETRIES = 2  # reruns of a task that raised outside run_unit (run_unit itself never raises)


def check_backend(backend: str, n_jobs: int, devices: Sequence[str] = ()) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}.")
    if not isinstance(n_jobs, int) or n_jobs == 0 or n_jobs < -1:
        raise ValueError(f"n_jobs must be a positive integer or -1 (all cores), got {n_jobs!r}.")
    if devices and (backend == "joblib" or (backend == "processes" and not can_fork())):
        raise ValueError(
            f"devices={list(devices)}: the {backend} backend cannot give each worker its own "
            "device (loky workers are not told apart); use backend 'processes' on Linux, "
            "'dask' or 'serial'."
        )


def _workers(n_jobs: int) -> int:
    return (os.cpu_count() or 1) if n_jobs == -1 else n_jobs


@contextlib.contextmanager
def local_cluster(n_workers: int, resources: dict[str, float] | None = None) -> Iterator[Any]:
    """A ``LocalCluster`` on 127.0.0.1: ``n_workers`` single-threaded processes (each restarted
    by its nanny if it dies), no dashboard, up to :data:`ALLOWED_FAILURES` deaths per task;
    each worker holds ``resources``."""
    try:
        from distributed import LocalCluster
    except ImportError as error:
        raise ImportError(DASK_HINT) from error
    with LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=logging.ERROR,
        scheduler_kwargs={"allowed_failures": ALLOWED_FAILURES},
        resources=resources,
    ) as cluster:
        yield cluster


@contextlib.contextmanager
def dask_client(
    scheduler: str | None,
    n_jobs: int,
    timeout: float = 120,
    resources: dict[str, float] | None = None,
) -> Iterator[Any]:
    """A ``distributed.Client`` on ``scheduler``, or on a new loopback :func:`local_cluster`
    (its workers holding ``resources``)."""
    try:
        from distributed import Client
    except ImportError as error:
        raise ImportError(DASK_HINT) from error
    if scheduler:
        with Client(scheduler, timeout=timeout) as client:
            yield client
        return
    cluster_of = local_cluster(_workers(n_jobs), resources)
    with cluster_of as cluster, Client(cluster, timeout=timeout) as client:
        client.wait_for_workers(_workers(n_jobs), timeout=timeout)
        yield client


def can_fork() -> bool:
    """Whether the ``processes`` backend forks (Linux) rather than falling back to loky."""
    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


_INHERITED: dict[str, tuple[Any, Any]] = {}  # the data sets, as forked workers see them


def _run_inherited(unit: Unit) -> list[dict[str, Any]]:
    return run_unit(unit, *_INHERITED[unit.dataset])


def run_in_forked_processes(
    units: Sequence[Unit],
    data: dict[str, tuple[Any, Any]],
    on_result: Callable[[list[dict[str, Any]]], None],
    n_workers: int,
    devices: tuple[str, ...] = (),
) -> None:
    """Run the units in ``n_workers`` processes forked from this warmed-up one; with
    ``devices``, one worker per entry, each training on its own (:mod:`fusekit.bench.placement`).

    A worker that dies (out of memory, segfault) breaks the pool: the run stops with an error
    saying so, what finished is saved, and a rerun resumes (Dask reruns lost units instead).
    """
    global _INHERITED
    with torch_threads(1):
        warm_up()  # once here, inherited by every worker
    _INHERITED = data
    context = multiprocessing.get_context("fork")
    queue = None
    if devices:
        n_workers, queue = len(devices), context.Queue()
        for device in devices:
            queue.put(device)
    pool = ProcessPoolExecutor(
        n_workers,
        mp_context=context,
        initializer=placement.worker_initializer,
        initargs=(queue,),
    )
    try:
        futures = [pool.submit(_run_inherited, unit) for unit in units]
        for future in as_completed(futures):
            on_result(future.result())
    except BrokenProcessPool as error:
        pool.shutdown(wait=True, cancel_futures=True)
        raise RuntimeError(
            "a bench worker process died (out of memory, a crash in native code or a kill "
            "signal); the units that finished are saved in results.csv and a rerun into the same "
            "directory resumes. The dask backend reruns units of lost workers instead."
        ) from error
    except BaseException:  # Ctrl-C, SIGTERM, an error saving: no unit in flight is waited for
        with signals_ignored():
            terminate_workers(pool)
            pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True)
        _INHERITED = {}


def terminate_workers(pool: ProcessPoolExecutor, grace: float = 5.0) -> None:
    """End every worker process of ``pool`` now: SIGTERM, then SIGKILL after ``grace`` s."""
    # no public API before Python 3.14 (terminate_workers); None once the pool is shut down
    workers = list((getattr(pool, "_processes", None) or {}).values())
    for worker in workers:
        if worker.is_alive():
            worker.terminate()
    for worker in workers:
        worker.join(grace)
        if worker.is_alive():
            worker.kill()
            worker.join()


def _value(value: Any) -> Any:
    return value


def run_on_dask(
    client: Any,
    units: Sequence[Unit],
    data: dict[str, tuple[Any, Any]],
    on_result: Callable[[list[dict[str, Any]]], None],
    devices: tuple[str, ...] = (),
) -> None:
    """Submit one future per unit to ``client``; hand each unit's rows to ``on_result`` once.
    With ``devices``, each unit needs one ``device`` resource and trains on its worker's entry."""
    from distributed import as_completed

    run = uuid.uuid4().hex[:8]  # a fresh key per run: no result is shared with an earlier run
    with warnings.catch_warnings():  # the data is meant to be in the graph (see above)
        warnings.filterwarnings("ignore", message="Sending large graph")
        shared = {
            name: [
                client.submit(_value, part, key=f"fusekit-bench-data{d}-{i}-{run}")
                for i, part in enumerate(pair)
            ]
            for d, (name, pair) in enumerate(data.items())
        }
    pending: dict[str, Unit] = {}
    futures = []
    for unit in units:
        key = f"fusekit-bench-{unit.unit_id}-{run}"
        if devices:
            future = client.submit(
                run_unit_on_dask,
                unit,
                *shared[unit.dataset],
                devices,
                key=key,
                retries=RETRIES,
                resources={placement.RESOURCE: 1},
            )
        else:
            future = client.submit(run_unit, unit, *shared[unit.dataset], key=key, retries=RETRIES)
        futures.append(future)
        pending[key] = unit
    for future in as_completed(futures):
        unit = pending.pop(future.key, None)
        if unit is None:  # this unit was saved already
            continue
        # erred: raised RETRIES + 1 times, or took ALLOWED_FAILURES + 1 workers (KilledWorker);
        # a cancelled future (the cluster is gone) raises in result() and stops the run
        erred = future.status == "error"
        if erred and isinstance(future.exception(), KeyboardInterrupt):
            raise future.exception()  # an interrupt is never a unit's result
        rows = error_rows(unit, future.exception()) if erred else future.result()
        future.release()
        on_result(rows)


def execute(
    units: Sequence[Unit],
    data: dict[str, tuple[Any, Any]],
    on_result: Callable[[list[dict[str, Any]]], None],
    backend: str = "processes",
    n_jobs: int = 1,
    scheduler: str | None = None,
    devices: tuple[str, ...] = (),
) -> None:
    """Run every unit, calling ``on_result(rows)`` in this process as each one finishes; with
    ``devices``, one unit per listed device at a time (:mod:`fusekit.bench.placement`)."""
    check_backend(backend, n_jobs, devices)
    if not units:
        return
    workers = len(devices) if devices else _workers(n_jobs)
    if backend == "serial" or (backend in ("processes", "joblib") and workers == 1):
        for unit in units:
            placed = {"device": devices[0]} if devices else {}
            on_result(run_unit(unit, *data[unit.dataset], **placed))
        return
    if backend == "processes" and can_fork():
        run_in_forked_processes(units, data, on_result, workers, devices)
        return
    if backend in ("processes", "joblib"):
        tasks = (delayed(run_unit)(unit, *data[unit.dataset]) for unit in units)
        parallel = Parallel(n_jobs=n_jobs, backend="loky", return_as="generator_unordered")
        for rows in parallel(tasks):
            on_result(rows)
        return
    n_dask = len(devices) if devices else n_jobs
    resources = {placement.RESOURCE: 1} if devices else None
    with dask_client(scheduler, n_dask, resources=resources) as client:
        run_on_dask(client, units, data, on_result, devices)
