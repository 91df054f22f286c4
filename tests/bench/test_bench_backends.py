"""Same seeds, same numbers: serial, forked processes, joblib (loky) processes and a real Dask
LocalCluster give identical metrics in ``results.csv``, each unit's rows written once."""

import builtins
import os
import time
from types import SimpleNamespace

import pandas as pd
import pytest

from fusekit.bench import Sweep, backends, run_bench
from fusekit.bench.backends import can_fork
from fusekit.bench.store import ResultStore

METRICS = ["unit_id", "scenario", "corruption", "modality", "level", "metric", "score"]


def _metrics(result):
    return result.results[METRICS].sort_values(METRICS[:5]).reset_index(drop=True)


def _written(result):
    """The metrics of ``results.csv`` on disk; fails if any row was written twice."""
    frame = ResultStore(result.out_dir).read()
    assert not frame.duplicated(METRICS[:5]).any()
    return frame[METRICS].sort_values(METRICS[:5]).reset_index(drop=True)


@pytest.fixture(scope="module")
def serial(tmp_path_factory, toy):
    settings = {
        "datasets": (),
        "max_epochs": 2,
        "folds": 2,
        "batch_size": 32,
        "fusion": ["concat", "late"],
        "sweeps": [Sweep("gaussian", levels=(1.0,))],
    }
    result = run_bench(
        out_dir=tmp_path_factory.mktemp("serial"),
        data={"toy": toy},
        backend="serial",
        quiet=True,
        **settings,
    )
    return settings, result


def test_joblib_processes_give_the_serial_numbers(serial, tmp_path, toy):
    settings, expected = serial
    result = run_bench(
        out_dir=tmp_path, data={"toy": toy}, backend="joblib", n_jobs=2, quiet=True, **settings
    )
    pd.testing.assert_frame_equal(_metrics(result), _metrics(expected))
    pd.testing.assert_frame_equal(_written(result), _written(expected))


@pytest.mark.skipif(not can_fork(), reason="the processes backend forks on Linux only")
def test_forked_processes_give_the_serial_numbers_in_other_processes(serial, tmp_path, toy):
    settings, expected = serial
    result = run_bench(
        out_dir=tmp_path, data={"toy": toy}, backend="processes", n_jobs=2, quiet=True, **settings
    )
    pd.testing.assert_frame_equal(_metrics(result), _metrics(expected))
    pd.testing.assert_frame_equal(_written(result), _written(expected))


def _toy_units(n):
    """Stand-ins for planned units: the forked backend only reads ``unit_id`` and ``dataset``."""
    return [SimpleNamespace(unit_id=f"u{i}", dataset="toy") for i in range(n)]


def _pid_rows(unit, X, y):
    return [{"unit_id": unit.unit_id, "pid": os.getpid(), "rows": len(y)}]


@pytest.mark.skipif(not can_fork(), reason="the processes backend forks on Linux only")
def test_forked_workers_inherit_the_data_and_run_units_outside_this_process(monkeypatch, toy):
    monkeypatch.setattr(backends, "run_unit", _pid_rows)
    X, y = toy
    units = _toy_units(8)
    rows = []
    backends.execute(units, {"toy": (X, y)}, rows.extend, backend="processes", n_jobs=2)
    assert sorted(r["unit_id"] for r in rows) == sorted(u.unit_id for u in units)
    pids = {r["pid"] for r in rows}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    assert {r["rows"] for r in rows} == {len(y)}
    assert backends._INHERITED == {}  # released after the run


def _dies(unit, X, y):
    os._exit(3)  # stands in for a segfault or the OOM killer


@pytest.mark.skipif(not can_fork(), reason="the processes backend forks on Linux only")
def test_a_dead_forked_worker_stops_the_run_with_a_clear_error(monkeypatch, toy):
    monkeypatch.setattr(backends, "run_unit", _dies)
    X, y = toy
    units = _toy_units(3)
    with pytest.raises(RuntimeError, match="bench worker process died.*rerun .* resumes"):
        backends.execute(units, {"toy": (X, y)}, lambda rows: None, backend="processes", n_jobs=2)
    assert backends._INHERITED == {}


def test_dask_local_cluster_with_two_workers_gives_the_serial_numbers(serial, tmp_path, toy):
    # no importorskip: Dask comes with the test install (the bench extra); broken, it fails here
    settings, expected = serial
    start = time.perf_counter()
    result = run_bench(
        out_dir=tmp_path, data={"toy": toy}, backend="dask", n_jobs=2, quiet=True, **settings
    )
    assert time.perf_counter() - start < 240  # cluster start-up and work, bounded
    written = pd.read_csv(tmp_path / "results.csv")
    assert len(written) == len(expected.results)
    pd.testing.assert_frame_equal(_metrics(result), _metrics(expected))
    pd.testing.assert_frame_equal(_written(result), _written(expected))


def test_dask_backend_without_dask_is_a_clear_error(monkeypatch, tmp_path, toy):
    real_import = builtins.__import__

    def no_distributed(name, *args, **kwargs):
        if name.split(".")[0] in ("distributed", "dask"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_distributed)
    with pytest.raises(ImportError, match=r'pip install "dask\[distributed\]"'):
        run_bench(
            out_dir=tmp_path,
            data={"toy": toy},
            datasets=(),
            backend="dask",
            quiet=True,
            max_epochs=1,
            folds=2,
        )


def test_unknown_backend_names_the_choices(tmp_path, toy):
    choices = r"\['serial', 'processes', 'joblib', 'dask'\]"
    with pytest.raises(ValueError, match=rf"backend must be one of {choices}"):
        run_bench(
            out_dir=tmp_path,
            data={"toy": toy},
            datasets=(),
            backend="spark",
            quiet=True,
            max_epochs=1,
            folds=2,
        )
