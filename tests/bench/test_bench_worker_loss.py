"""Dask workers lost mid-run: a worker killed by its pid (SIGKILL) while it fits a unit.

Its unit is rerun on another worker (the scheduler's ``allowed-failures``), every unit is saved
exactly once (results come back to the driver, one future per unit) and the numbers are the
serial run's. A unit that keeps killing its workers becomes an ``error`` row (``KilledWorker``)
and the run ends normally. The weightings below are in this module, which the worker
processes import (they start with the test process's ``sys.path``).
"""

import os
import signal
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from distributed import Client, get_worker  # the bench extra is part of the test install

from fusekit.bench import backends, run_bench
from fusekit.builtin.no_weighting import NoWeighting

KEYS = ["dataset", "fusion", "weighting", "repeat", "fold", "scenario", "modality", "level"]
METRICS = [*KEYS, "metric", "score", "status"]
SETTINGS = {"datasets": (), "folds": 2, "batch_size": 32, "fusion": ["concat", "late"]}


class PausingWeighting(NoWeighting):
    """No weighting; each fit leaves a file named ``<pid>-<ns>`` in ``started_dir`` and each
    epoch sleeps ``pause`` s, so a test knows which worker is fitting and has time to kill it."""

    def __init__(self, started_dir: str = "", pause: float = 0.0) -> None:
        super().__init__()
        self.started_dir = started_dir
        self.pause = pause

    def on_train_begin(self, ctx) -> None:
        if self.started_dir:
            (Path(self.started_dir) / f"{os.getpid()}-{time.monotonic_ns()}").touch()

    def on_epoch_begin(self, ctx) -> None:
        time.sleep(self.pause)


class WorkerKillingWeighting(NoWeighting):
    """Kills the Dask worker process that fits it (stands in for a segfault or the OOM killer);
    does nothing outside a Dask worker."""

    def on_train_begin(self, ctx) -> None:
        try:
            get_worker()
        except ValueError:  # not in a Dask worker: never kill the test process
            return
        os.kill(os.getpid(), signal.SIGKILL)


class Abort(BaseException):
    """Escapes ``run_unit``'s ``except Exception``, as a task failing outside it would."""


class AbortingWeighting(PausingWeighting):
    """Notes each fit in ``started_dir``, then raises :class:`Abort` inside a Dask worker."""

    def on_train_begin(self, ctx) -> None:
        super().on_train_begin(ctx)
        try:
            get_worker()
        except ValueError:
            return
        raise Abort("aborted by the plugin")


def _run_in_thread(**kwargs):
    """``run_bench(**kwargs)`` in a daemon thread; returns (thread, outcome dict)."""
    outcome = {}

    def target():
        try:
            outcome["result"] = run_bench(quiet=True, backend="dask", references=False, **kwargs)
        except BaseException as error:  # noqa: BLE001 - reported by the test
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, outcome


def _finish(thread, outcome, timeout=120):
    thread.join(timeout)
    assert not thread.is_alive(), f"the bench did not finish within {timeout} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def _wait_for_file(folder: Path, timeout: float = 60) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(folder.iterdir())
        if found:
            return found[0]
        time.sleep(0.01)
    raise AssertionError(f"no fit started within {timeout} s")


@pytest.fixture(scope="module")
def cluster():
    """The bench's own loopback LocalCluster (2 worker processes, no dashboard), always closed."""
    with backends.local_cluster(2) as cluster, Client(cluster, timeout=60) as client:
        client.wait_for_workers(2, timeout=60)
        yield cluster, client


def test_worker_killed_mid_fit_reruns_its_unit_elsewhere_and_saves_each_unit_once(
    cluster, tmp_path, toy
):
    cluster, client = cluster
    started = tmp_path / "started"
    started.mkdir()
    pausing = {"max_epochs": 4, "weighting": [PausingWeighting], **SETTINGS}
    params = {"weighting__started_dir": str(started), "weighting__pause": 0.3}
    thread, outcome = _run_in_thread(
        out_dir=tmp_path / "dask",
        data={"toy": toy},
        scheduler=cluster.scheduler_address,
        params=params,
        **pausing,
    )
    first = _wait_for_file(started)  # a worker has begun fitting a unit (>= 1.2 s of epochs)
    killed = int(first.name.split("-")[0])
    assert killed in client.run(os.getpid).values() and killed != os.getpid()
    os.kill(killed, signal.SIGKILL)
    start = time.perf_counter()
    result = _finish(thread, outcome)
    assert time.perf_counter() - start < 120

    written = pd.read_csv(tmp_path / "dask" / "results.csv", keep_default_na=False)
    assert (written["status"] == "ok").all()
    assert not written.duplicated(KEYS).any()  # no row saved twice
    clean = written[written["scenario"] == "clean"]
    assert sorted(zip(clean["fusion"], clean["fold"], strict=True)) == [
        (f, k) for f in SETTINGS["fusion"] for k in (0, 1)
    ]
    fits = [p.name for p in started.iterdir()]
    assert len(fits) == len(clean) + 1  # the killed fit was started once more, elsewhere
    assert sum(name.startswith(f"{killed}-") for name in fits) == 1
    assert killed not in client.run(os.getpid).values()  # the nanny started a fresh worker

    serial = run_bench(
        out_dir=tmp_path / "serial",
        data={"toy": toy},
        backend="serial",
        quiet=True,
        references=False,
        **pausing,
    )
    assert len(written) == len(serial.results)
    pd.testing.assert_frame_equal(_metrics(result.results), _metrics(serial.results))


def _metrics(frame):
    return frame[METRICS].sort_values(KEYS).reset_index(drop=True)


@pytest.mark.filterwarnings("ignore:Port .* is already in use")  # two clusters: health port
def test_unit_that_keeps_killing_its_workers_becomes_an_error_row(monkeypatch, tmp_path, toy):
    # give up on a task at its first worker death (default 3: four deaths per unit, ~30 s here)
    monkeypatch.setattr(backends, "ALLOWED_FAILURES", 0)
    with backends.local_cluster(2) as cluster:
        thread, outcome = _run_in_thread(
            out_dir=tmp_path,
            data={"toy": toy},
            scheduler=cluster.scheduler_address,
            max_epochs=2,
            weighting=[WorkerKillingWeighting],
            **{**SETTINGS, "fusion": ["concat"]},
        )
        result = _finish(thread, outcome)  # the run ends normally, with the units recorded
    written = pd.read_csv(tmp_path / "results.csv", keep_default_na=False)
    assert sorted(written["fold"]) == [0, 1] and (written["status"] == "error").all()
    assert written["error"].str.startswith("KilledWorker: ").all()
    assert "KilledWorker" in result.leaderboard


def test_task_raising_outside_run_unit_is_retried_then_recorded(cluster, tmp_path, toy):
    cluster, _ = cluster
    started = tmp_path / "started"
    started.mkdir()
    thread, outcome = _run_in_thread(
        out_dir=tmp_path,
        data={"toy": toy},
        scheduler=cluster.scheduler_address,
        max_epochs=1,
        weighting=[AbortingWeighting],
        params={"weighting__started_dir": str(started)},
        **{**SETTINGS, "fusion": ["concat"]},
    )
    _finish(thread, outcome)
    written = pd.read_csv(tmp_path / "results.csv", keep_default_na=False)
    assert sorted(written["fold"]) == [0, 1] and (written["status"] == "error").all()
    assert written["error"].str.startswith("Abort: aborted by the plugin (at ").all()
    assert len(list(started.iterdir())) == 2 * (1 + backends.RETRIES)  # every attempt was made
