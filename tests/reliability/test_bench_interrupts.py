"""Ctrl-C (a real SIGINT) and SIGTERM stop a bench at once: nothing of the unit in flight is saved,
the finished units are, one line says so, the exit code is 130 / 143, every worker process ends,
and a resume reruns the interrupted unit."""

import os
import signal
import time

import pandas as pd
import psutil
import pytest
import torch
from skorch.callbacks import Callback

from fusekit.bench import run_bench
from fusekit.bench.stopping import BenchInterrupted, signals_held, sigterm_raises
from fusekit.cli import main
from fusekit.datasets import make_multimodal_classification
from reliability.bench_processes import (
    MEDIUM,
    SLOW,
    bench_args,
    saved_units,
    started,
    tiny_csv,
    wait_for,
)

torch.set_num_threads(1)

_FITS = {"count": 0}  # fits started in this process (a callback may be copied with its net)


class SignalOnFit(Callback):
    """Sends this process SIGINT, as Ctrl-C does, in the first epoch of the ``at``-th fit."""

    def __init__(self, at=None):
        self.at = at

    def on_train_begin(self, net, **kwargs):
        _FITS["count"] += 1

    def on_epoch_end(self, net, **kwargs):
        if self.at is not None and _FITS["count"] == self.at and len(net.history) == 1:
            os.kill(os.getpid(), signal.SIGINT)

    def __repr__(self):  # the unit ids digest the parameters: the same with and without `at`
        return "SignalOnFit()"


@pytest.fixture
def toy():
    X, y = make_multimodal_classification(
        n_samples=60, n_features=[4, 3], n_classes=3, names=["audio", "video"], random_state=0
    )
    return X, y


def _settings(out, toy, callback):
    return {
        "out_dir": out,
        "data": {"toy": toy},
        "datasets": (),
        "quiet": True,
        "fusion": ["concat", "late"],
        "folds": 2,
        "max_epochs": 3,
        "batch_size": 32,
        "references": False,
        "missing": True,  # four rows per unit: clean, both removed, each one removed
        "params": {"callbacks": [callback]},
    }


def test_ctrl_c_during_a_fit_saves_only_the_finished_units_and_resume_reruns_the_rest(
    tmp_path, toy
):
    _FITS["count"] = 0
    callback = SignalOnFit(at=3)  # the third of four units
    with pytest.raises(BenchInterrupted) as stopped:
        run_bench(**_settings(tmp_path / "out", toy, callback))
    assert isinstance(stopped.value, KeyboardInterrupt)
    results = tmp_path / "out" / "results.csv"
    assert stopped.value.signum == signal.SIGINT and stopped.value.exit_code == 130
    assert f"2 of 4 units are finished and saved in {results}" in str(stopped.value)
    saved = pd.read_csv(results)
    assert saved.groupby("unit_id").size().tolist() == [4, 4]  # two whole units, nothing else
    assert (saved["status"] == "ok").all()

    callback.at = None
    resumed = run_bench(**_settings(tmp_path / "out", toy, callback))
    assert (resumed.n_skipped, resumed.n_run) == (2, 2)
    fresh = run_bench(**_settings(tmp_path / "fresh", toy, callback))
    key = ["unit_id", "scenario", "modality"]
    got = resumed.results.sort_values(key)["score"].to_numpy()
    assert len(got) == 16
    assert (got == fresh.results.sort_values(key)["score"].to_numpy()).all()  # no truncated fit


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_to_the_cli_bench_exits_with_its_code_and_says_what_was_kept(
    tmp_path, capsys, signum, code
):
    data, out = tiny_csv(tmp_path), tmp_path / "out"
    args = bench_args(data, out, *MEDIUM, folds=3)  # three units, one at a time (--n-jobs 1)
    with started(args) as bench:
        assert wait_for(lambda: saved_units(out) >= 1 or bench.process.poll() is not None, 90)
        assert bench.process.poll() is None, "the bench ended before it could be interrupted"
        os.kill(bench.process.pid, signum)
        _, stderr = bench.process.communicate(timeout=60)
    assert bench.process.returncode == code, stderr
    assert "Traceback" not in stderr
    kept = saved_units(out)
    assert 1 <= kept < 3
    name = signal.Signals(signum).name
    assert f"interrupted by {name}: {kept} of 3 units are finished and saved in {out}" in stderr
    assert f"Run the same command again to resume the other {3 - kept}" in stderr

    capsys.readouterr()
    assert main(args) == 0  # resume, in this process
    assert f"{3 - kept} fits run, {kept} resumed" in capsys.readouterr().out
    final = pd.read_csv(out / "results.csv")
    assert final["unit_id"].nunique() == 3 and final["unit_id"].is_unique


@pytest.mark.parametrize(
    ("signum", "code", "to_group"),
    [(signal.SIGTERM, 143, False), (signal.SIGINT, 130, False), (signal.SIGINT, 130, True)],
    ids=["sigterm-driver", "sigint-driver", "ctrl-c-terminal"],
)
def test_a_signal_to_a_two_job_bench_ends_every_worker(tmp_path, signum, code, to_group):
    data, out = tiny_csv(tmp_path), tmp_path / "out"
    args = bench_args(data, out, *SLOW, "--n-jobs", "2", fusion="concat,late")
    with started(args) as bench:
        assert wait_for(lambda: len(bench.children()) >= 2, 90), "no worker processes started"
        time.sleep(0.5)  # the workers are fitting
        workers = bench.children()
        if to_group:  # a terminal's Ctrl-C reaches the driver and its workers
            os.killpg(bench.process.pid, signum)
        else:
            os.kill(bench.process.pid, signum)
        bench.process.wait(timeout=60)  # not communicate(): a left worker keeps the pipes open
        _, alive = psutil.wait_procs(workers, timeout=20)
        assert not alive, f"worker processes left running: {[p.pid for p in alive]}"
        assert not bench.alive_descendants()
        _, stderr = bench.process.communicate(timeout=30)
    assert bench.process.returncode == code, stderr
    assert f"interrupted by {signal.Signals(signum).name}" in stderr
    assert "Traceback" not in stderr
    kept = saved_units(out)
    assert f"{kept} of 4 units are finished and saved" in stderr
    assert kept < 4
    if kept:  # a worker's interrupt is never saved as a unit's error
        assert (pd.read_csv(out / "results.csv")["status"] == "ok").all()


def test_sigterm_raises_only_during_the_block_and_leaves_a_callers_handler_alone():
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    with sigterm_raises():
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL

    def own(signum, frame):
        pass

    previous = signal.signal(signal.SIGTERM, own)
    try:
        with sigterm_raises():
            assert signal.getsignal(signal.SIGTERM) is own
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_real_sigint_during_a_held_write_lands_after_it():
    done = []
    with pytest.raises(KeyboardInterrupt), signals_held():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # the signal is pending here, not delivered
        done.append("the whole write")
    assert done == ["the whole write"]
