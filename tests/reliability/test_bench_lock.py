"""One bench per ``--out``: a second one fails at once naming the holder and touches nothing; the
lock goes with its holder however that ends."""

import contextlib
import fcntl
import os
import signal
import socket
import time

import pandas as pd
import pytest
import torch

from fusekit.bench import Sweep, run_bench
from fusekit.bench.outdir import HOLDER, LOCK, OutputLockedError
from fusekit.cli import main
from fusekit.datasets import make_multimodal_classification
from reliability.bench_processes import (
    MEDIUM,
    bench_args,
    python_holding,
    saved_units,
    started,
    tiny_csv,
)

torch.set_num_threads(1)

HOLD = """
import sys, time
from fusekit.bench.outdir import claim
with claim(sys.argv[1]):
    print("held", flush=True)
    time.sleep(120)
"""


@contextlib.contextmanager
def held(out):
    """Another process holding ``out`` (as a running bench does)."""
    holder = python_holding(HOLD.replace("sys.argv[1]", repr(str(out))))
    try:
        assert holder.stdout.readline().strip() == "held", holder.stderr.read()
        yield holder
    finally:
        holder.kill()
        holder.communicate(timeout=30)


def _tiny(out, **extra):
    X, y = make_multimodal_classification(
        n_samples=30, n_features=[2, 2], n_classes=2, names=["a", "b"], random_state=0
    )
    settings = {"datasets": (), "folds": 2, "max_epochs": 1, "references": False, "quiet": True}
    return run_bench(out_dir=out, data={"toy": (X, y)}, backend="serial", **{**settings, **extra})


def _free(out) -> bool:
    """Whether nobody holds the lock of ``out`` (checked with a plain ``flock``)."""
    descriptor = os.open(out / LOCK, os.O_RDWR)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(descriptor)


def test_a_second_bench_on_a_held_out_fails_at_once_naming_the_holder(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.csv").write_text("the holder's rows\n")
    with held(out) as holder:
        started_at = time.monotonic()
        code = main(["bench", "--dataset", "mfeat", "--out", str(out), "--quiet"])
        elapsed = time.monotonic() - started_at
    err = capsys.readouterr().err
    assert code == 2
    assert f"another fusekit bench is writing into {str(out)!r}" in err
    assert f"pid {holder.pid} on host {socket.gethostname()}, started " in err
    assert str(out / LOCK) in err and "pass another --out" in err
    assert elapsed < 10  # at once: no waiting, no data loaded
    assert (out / "results.csv").read_text() == "the holder's rows\n"  # untouched


def test_the_library_raises_output_locked_error(tmp_path):
    with held(tmp_path), pytest.raises(OutputLockedError, match="another fusekit bench"):
        _tiny(tmp_path)


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    with held(tmp_path) as holder:
        holder.kill()
        holder.wait(timeout=30)
        assert (tmp_path / HOLDER).is_file()  # its record stays; its lock does not
        assert _tiny(tmp_path).n_run == 2


def test_the_lock_is_released_after_a_bench_and_after_a_failed_one(tmp_path):
    _tiny(tmp_path)
    assert _free(tmp_path)
    with pytest.raises(ValueError, match="names modalities"):
        _tiny(tmp_path, sweeps=(Sweep("gaussian", ("nope",)),))  # fails after the claim
    assert _free(tmp_path)
    assert _tiny(tmp_path).n_skipped == 2


def test_two_benches_started_together_run_each_unit_once(tmp_path):
    data, out = tiny_csv(tmp_path), tmp_path / "out"
    args = bench_args(data, out, *MEDIUM)  # two units, a few seconds
    with started(args) as first, started(args) as second:
        outputs = [b.process.communicate(timeout=300) for b in (first, second)]
        codes = sorted(b.process.returncode for b in (first, second))
    if codes == [0, 0]:  # the second started after the first had finished: it resumed all
        assert any("0 fits run, 2 resumed" in stdout for stdout, _ in outputs)
    else:
        assert codes == [0, 2], outputs
        assert any("another fusekit bench is writing into" in err for _, err in outputs)
    final = pd.read_csv(out / "results.csv")
    assert final["unit_id"].is_unique and saved_units(out) == 2


FORK_AND_DIE = """
import os, sys, time
from fusekit.bench.outdir import claim
with claim(sys.argv[1]):
    child = os.fork()
    if child == 0:  # a worker forked by the bench, outliving it
        quiet = os.open(os.devnull, os.O_RDWR)
        os.dup2(quiet, 1), os.dup2(quiet, 2)  # the test reads the bench's output to its end
        time.sleep(120)
        os._exit(0)
    print(child, flush=True)
    os._exit(1)  # the bench dies without releasing anything
"""


def test_a_forked_worker_that_outlives_its_bench_does_not_hold_the_lock(tmp_path):
    dying = python_holding(FORK_AND_DIE.replace("sys.argv[1]", repr(str(tmp_path))))
    stdout, stderr = dying.communicate(timeout=120)
    assert dying.returncode == 1, stderr
    child = int(stdout.strip())
    try:
        assert os.path.exists(f"/proc/{child}") or not os.path.isdir("/proc")
        assert _free(tmp_path)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
