"""``devices=``: one bench unit per listed device at a time, the device recorded per row.

On a machine without a GPU the devices are told apart as ``cpu:0`` and ``cpu:1`` (torch accepts
both and computes on the CPU), so the assignment is visible in ``results.csv``."""

import os
import time

import pandas as pd
import pytest
import torch

from fusekit.bench import Sweep, backends, placement, run_bench, runner
from fusekit.bench.backends import can_fork
from fusekit.bench.config import Unit

LISTED = ("cpu:0", "cpu:1")
METRICS = ["unit_id", "scenario", "corruption", "modality", "level", "metric", "score"]


def _bench(tmp_path, toy, tiny, **run):
    settings = {**tiny, "fusion": ["concat", "late"], "sweeps": [Sweep("gaussian", levels=(1.0,))]}
    return run_bench(out_dir=tmp_path, data={"toy": toy}, quiet=True, **settings, **run)


def _metrics(result):
    return result.results[METRICS].sort_values(METRICS[:5]).reset_index(drop=True)


@pytest.fixture(scope="module")
def plain(tmp_path_factory, toy):
    """The same bench without devices, serial: the numbers every placement must give."""
    tiny = {"datasets": (), "max_epochs": 2, "folds": 2, "batch_size": 32, "references": False}
    return _bench(tmp_path_factory.mktemp("plain"), toy, tiny, backend="serial")


def test_without_devices_every_row_records_the_cpu(plain):
    assert set(plain.results["device"]) == {"cpu"}


def test_serial_runs_on_the_first_listed_device(plain, tmp_path, toy, tiny):
    result = _bench(tmp_path, toy, tiny, backend="serial", devices="cpu:1,cpu:0")
    assert set(result.results["device"]) == {"cpu:1"}
    pd.testing.assert_frame_equal(_metrics(result), _metrics(plain))


@pytest.mark.skipif(not can_fork(), reason="the processes backend forks on Linux only")
def test_each_forked_worker_trains_on_its_own_device(plain, tmp_path, toy, tiny):
    result = _bench(tmp_path, toy, tiny, backend="processes", devices=",".join(LISTED))
    assert set(result.results["device"]) <= set(LISTED)
    pd.testing.assert_frame_equal(_metrics(result), _metrics(plain))
    on_disk = pd.read_csv(tmp_path / "results.csv")
    assert on_disk["device"].tolist() == result.results["device"].tolist()


@pytest.mark.skipif(not can_fork(), reason="the processes backend forks on Linux only")
def test_a_forked_worker_keeps_one_device_and_no_two_workers_share_one(monkeypatch):
    """Four slow units on two listed devices: two workers, each always on the same device."""

    def fake_unit(unit, X, y, device):
        time.sleep(0.3)  # long enough that both workers take units
        return [{"unit_id": unit.unit_id, "error": str(os.getpid()), "device": device}]

    monkeypatch.setattr(runner, "_run_unit", fake_unit)  # inherited by the forked workers
    monkeypatch.setattr(backends, "warm_up", lambda: None)
    units = [Unit.__new__(Unit) for _ in range(4)]
    for number, unit in enumerate(units):
        object.__setattr__(unit, "unit_id", f"u{number}")
        object.__setattr__(unit, "dataset", "toy")
    rows = []
    backends.execute(units, {"toy": (None, None)}, rows.extend, "processes", 1, devices=LISTED)
    by_worker = {}
    for row in rows:
        by_worker.setdefault(row["error"], set()).add(row["device"])
    assert len(rows) == 4 and len(by_worker) == 2
    assert sorted(d for devices in by_worker.values() for d in devices) == sorted(LISTED)


def test_dask_workers_each_hold_one_device(plain, tmp_path, toy, tiny):
    pytest.importorskip("distributed")
    result = _bench(tmp_path, toy, tiny, backend="dask", devices=list(LISTED))
    assert set(result.results["device"]) <= set(LISTED)
    pd.testing.assert_frame_equal(_metrics(result), _metrics(plain))


def test_joblib_cannot_place_units_and_says_so(tmp_path, toy, tiny):
    with pytest.raises(ValueError, match=r"devices=\['cpu', 'cpu'\]: the joblib backend"):
        _bench(tmp_path, toy, tiny, backend="joblib", n_jobs=2, devices="cpu,cpu")


def test_devices_are_parsed_and_checked(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert placement.parse_devices(" cpu, cpu ") == ("cpu", "cpu")
    assert placement.parse_devices(["auto"]) == ("cpu",)
    assert placement.parse_devices(None) == ()
    with pytest.raises(ValueError, match=r"device='cuda:1' is not available on this machine"):
        placement.parse_devices("cpu,cuda:1")
    with pytest.raises(ValueError, match=r"comma-separated list"):
        placement.parse_devices("cpu,,cpu")
