"""Data-parallel training of one model (``fusekit.engine.distributed``, ``docs/scaling.md``).

The module's first part launches ``data_parallel_script.py`` once under ``torchrun
--nproc_per_node 2`` (gloo on CPU, hard timeout, about 60 s on two cores) and checks what each
rank wrote; deselect it with ``-m "not data_parallel"``. The second part tests the pieces in this
process.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fusekit import FusionClassifier, FusionRegressor
from fusekit.engine import distributed
from fusekit.engine.batching import BatchIterator
from fusekit.engine.registry import get_registry
from fusekit.plugin import (
    ModalityBatch,
    TrainingData,
    WarmupCosine,
    Weighting,
    all_reduce,
    broadcast,
    global_present_mean,
    world_size,
)
from fusekit.testing.fixtures import make_data

SCRIPT = Path(__file__).with_name("data_parallel_script.py")
DOCS = Path(__file__).parents[2] / "docs" / "scaling.md"
TIMEOUT_S = 120
KINDS = ("backbone", "calibration", "fusion", "weighting")

#: Components whose 2-process run cannot equal one process's with the doubled batch, and why:
#: they draw random numbers per row (each process draws its own) or normalise by batch statistics.
#: They are still checked for identical weights on both ranks.
NOT_COMPARABLE = {
    "backbone:cnn2d": "batch norm normalises by each process's batch (DDP without SyncBatchNorm)",
    "calibration:vgmr": "dropout; its gate-spread regulariser is a per-batch standard deviation",
    "fusion:embracenet": "samples one modality per feature at random",
    "weighting:modality_dropout": "random drops",
    "weighting:opm": "random drops per row",
    "weighting:ogm_ge": "GE gradient noise (ogm_ge(noise=False) is compared exactly)",
    "weighting:prob_embedding": "sampled embeddings",
    "weighting:udml": "input noise and sampled embeddings",
}


def _registered() -> list[str]:
    registry = get_registry()
    return [f"{kind}:{name}" for kind in KINDS for name in registry.names(kind)]


def _component(key: str) -> type:
    kind, name = key.split(":")
    return get_registry().get(kind, name)


def _end(folder: Path, launcher: subprocess.Popen) -> None:
    """Stop the launcher and the two ranks (each in its own session) by their process ids."""
    pids = [int(p.read_text()) for p in folder.glob("pid*") if p.read_text().strip()]
    for pid in [launcher.pid, *pids]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    launcher.communicate()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """What rank 0 and rank 1 wrote (``data_parallel_script.py``)."""
    folder = tmp_path_factory.mktemp("data_parallel")
    plugins = sorted(str(p) for p in (SCRIPT.parents[2] / "plugins").glob("fusekit-*"))
    path = os.pathsep.join([str(SCRIPT.parents[2]), *plugins, os.environ.get("PYTHONPATH", "")])
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(SCRIPT),
        str(folder),
    ]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    launcher = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment,
        start_new_session=True,
    )
    try:
        output, _ = launcher.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _end(folder, launcher)
        pytest.fail(f"torchrun did not finish within {TIMEOUT_S} s (a rank hung in a collective?)")
    finally:
        if launcher.poll() is None:
            _end(folder, launcher)
    written = [folder / f"rank{rank}.json" for rank in (0, 1)]
    if launcher.returncode != 0 or not all(p.exists() for p in written):
        pytest.fail(f"torchrun failed (exit {launcher.returncode}):\n{output[-6000:]}")
    return [json.loads(p.read_text()) for p in written]


# -- the 2-process run --------------------------------------------------------------------------
@pytest.mark.data_parallel
def test_the_ranks_train_one_model_as_one_process_with_the_doubled_batch(
    ranks: list[dict],
) -> None:
    """Shuffling, early stopping and a schedule on: both ranks end with the same weights, those
    of one process trained on batches of 2 x 16 rows (float rounding apart), and so its accuracy."""
    first, second = ranks[0]["main"], ranks[1]["main"]
    assert first["weights"] == second["weights"]
    assert first["single_weights_difference"] < 1e-5
    assert first["accuracy"] == pytest.approx(first["single_accuracy"], abs=0.01)
    assert first["accuracy"] > 0.9  # two informative modalities: an easy task
    # metrics agreed across ranks: early stopping saw the same validation scores everywhere
    assert first["loss_curve"] == second["loss_curve"]
    assert first["validation_scores"] == second["validation_scores"]


@pytest.mark.data_parallel
def test_sample_weights_train_as_one_process_with_the_doubled_batch(ranks: list[dict]) -> None:
    """Each rank's loss is its shard's weighted mean; scaled by its share of the global batch's
    weight, the averaged gradient is the global weighted mean's (without the scaling the weights
    differ by 4e-3 here), and the epoch's loss is the weighted mean over both ranks' rows."""
    first, second = ranks[0]["weighted"], ranks[1]["weighted"]
    assert first["weights"] == second["weights"]
    assert first["single_weights_difference"] < 1e-6
    assert first["loss_curve"] == second["loss_curve"]
    assert first["loss_curve"] == pytest.approx(first["single_loss_curve"], rel=1e-5)


@pytest.mark.data_parallel
def test_partial_fit_and_warm_start_train_one_model(ranks: list[dict]) -> None:
    """random_state=None: each rank would draw its own seed; rank 0's is used everywhere."""
    first, second = ranks[0]["continued"], ranks[1]["continued"]
    assert first == second
    assert first["epochs"] == [2, 2]


@pytest.mark.data_parallel
def test_the_schedule_is_stepped_once_per_optimiser_step_and_ends_at_the_last(
    ranks: list[dict],
) -> None:
    """lr at step k of T is lr x WarmupCosine(warmup=0.3)(k / T), worked here from the formula;
    T counts the steps of one rank: 4 epochs x ceil(256 training rows / 32 rows per step)."""
    steps = 4 * math.ceil(256 / 32)
    schedule = WarmupCosine(warmup=0.3)
    expected = []
    for k in range(steps):
        p = k / steps
        warming = 0.05 + 0.95 * p / 0.3
        factor = warming if p < 0.3 else (1 + math.cos(math.pi * (p - 0.3) / 0.7)) / 2
        expected.append(0.02 * factor)
        assert schedule(p) == pytest.approx(factor)
    for rank in ranks:
        assert rank["main"]["event_lr"] == pytest.approx(expected, rel=1e-9)
    assert ranks[0]["main"]["single_event_lr"] == pytest.approx(expected, rel=1e-9)


@pytest.mark.data_parallel
def test_only_rank_0_writes_the_model(ranks: list[dict]) -> None:
    for rank in ranks:
        assert Path(rank["main"]["saved"]).name == "model.fk"
    assert ranks[0]["main"]["exists_after_save"]


@pytest.mark.data_parallel
@pytest.mark.parametrize(
    "key", [*_registered(), "weighting:ogm_ge(noise=False)", "weighting:opm(warmup_epochs=0)"]
)
def test_each_component_trains_alike_on_every_rank_or_is_refused(
    ranks: list[dict], key: str
) -> None:
    """Declared unsafe: refused with the error naming it. Otherwise both ranks end with the same
    weights, with complete and with missing rows, and (for deterministic ones) equal to one
    process's with the doubled batch, so every coefficient was the global batch's."""
    first, second = ranks[0][key], ranks[1][key]
    if first.get("raw"):
        pytest.skip(
            "reads text or categories, or loads a model the user names: the 2-process script "
            "builds numeric data and default components only"
        )
    cls = _component(key.split("(")[0])
    refused = "refused" in first
    assert refused == (not cls.data_parallel_safe)
    if refused:
        assert first["refused"] == second["refused"]
        assert "data_parallel_safe = False" in first["refused"]
        assert key.split(":")[1] in first["refused"]
        return
    for rows in ("complete", "missing"):
        assert first[rows] == second[rows]
        assert first[f"{rows}_state"] == second[f"{rows}_state"]  # q, μ, the turn...
    if key.split("(")[0] not in NOT_COMPARABLE:
        assert first["complete_difference"] < 1e-6


# -- in this process ----------------------------------------------------------------------------
def test_all_reduce_outside_a_data_parallel_fit_is_the_identity() -> None:
    values = torch.tensor([1.0, -2.0, 3.5])
    for op in ("mean", "sum", "max", "min"):
        assert all_reduce(values, op) is values
    assert broadcast(values) is values
    assert world_size() == 1
    with pytest.raises(ValueError, match="op must be one of"):
        all_reduce(values, "avg")  # type: ignore[arg-type]


def test_global_present_mean_in_one_process_is_the_mean_over_present_rows() -> None:
    values = torch.tensor([[1.0, 10.0], [3.0, 20.0], [5.0, 30.0]])
    mask = torch.tensor([[True, False], [False, False], [True, False]])
    means, seen = global_present_mean(values, mask)
    assert means.tolist() == [3.0, 0.0]  # (1 + 5) / 2; a column no row has: 0
    assert seen.tolist() == [True, False]


def test_the_shards_of_a_global_batch_are_equal_and_disjoint() -> None:
    """10 rows, 2 ranks x 3 rows per step: global batches of 6 and 4 rows; rank r takes rows
    [3r, 3r + 3) of the first and [2r, 2r + 2) of the second; no row is left out."""
    data = TrainingData(
        ModalityBatch({"a": torch.arange(10.0)[:, None]}, torch.ones(10, 1) > 0), None
    )
    taken = []
    for rank in (0, 1):
        shards = distributed.ShardedBatches(BatchIterator(data, 3, shuffle=False), rank, 2)
        rows = [batch.features["a"][:, 0].tolist() for batch, _ in shards]
        assert len(shards) == len(rows) == 2
        taken.append(rows)
    assert taken == [[[0.0, 1.0, 2.0], [6.0, 7.0]], [[3.0, 4.0, 5.0], [8.0, 9.0]]]


def test_rows_that_cannot_fill_equal_shards_are_left_out() -> None:
    """11 rows, 2 ranks x 3: the last global batch has 5 rows, 2 per rank; row 10 is left out."""
    data = TrainingData(
        ModalityBatch({"a": torch.arange(11.0)[:, None]}, torch.ones(11, 1) > 0), None
    )
    shards = distributed.ShardedBatches(BatchIterator(data, 3, shuffle=False), 1, 2)
    assert [batch.features["a"][:, 0].tolist() for batch, _ in shards] == [
        [3.0, 4.0, 5.0],
        [8.0, 9.0],
    ]


@pytest.mark.parametrize("estimator", [FusionClassifier, FusionRegressor])
def test_distributed_true_in_a_single_process_is_a_clear_error(estimator: type) -> None:
    X, y = make_data(2, n=20, missing=0.0)
    with pytest.raises(ValueError, match=r"distributed=True.*torchrun --nproc_per_node"):
        estimator(distributed=True, max_epochs=1).fit(X, y)


def test_distributed_is_validated() -> None:
    X, y = make_data(2, n=20, missing=0.0)
    with pytest.raises(ValueError, match="'distributed' parameter"):
        FusionClassifier(distributed="yes", max_epochs=1).fit(X, y)


def test_a_single_process_fit_is_not_data_parallel() -> None:
    X, y = make_data(2, n=20, missing=0.0)
    model = FusionClassifier(max_epochs=1, random_state=0).fit(X, y)
    assert getattr(model.net_, "data_parallel_rank_", 0) == 0
    assert model.net_.parallel is None


def test_a_component_declared_unsafe_is_refused_by_name() -> None:
    """check_components in a (pretended) world of 2: QMF's per-row history is refused."""
    X, y = make_data(2, n=20, missing=0.0)
    model = FusionClassifier(weighting="qmf", max_epochs=1, random_state=0).fit(X, y)
    world = distributed.DataParallel(group=None, rank=0, world_size=2)
    with pytest.raises(ValueError, match=r"2 processes.*weighting .qmf. \(QMFWeighting\)"):
        distributed.check_components("FusionClassifier", model.module_, world)
    distributed.check_components("FusionClassifier", model.module_, None)  # one process: fine


def test_every_weighting_declares_whether_it_is_data_parallel_safe() -> None:
    """Weightings default to unsafe; each registered one states it in its own class (or a
    first-party base of it), with the reason in a comment."""
    registry = get_registry()
    for name in registry.names("weighting"):
        cls = registry.get("weighting", name)
        declaring = [k for k in cls.__mro__ if "data_parallel_safe" in vars(k)]
        assert declaring[0] is not Weighting, f"weighting {name!r} does not declare it"


def test_the_docs_table_matches_the_declarations() -> None:
    """docs/scaling.md lists every registered component with its declaration."""
    table = dict(re.findall(r"^\| `(\w+:\w+)` \| (yes|no) \|", DOCS.read_text(), re.M))
    for key in _registered():
        cls = _component(key)
        assert table.get(key) == ("yes" if cls.data_parallel_safe else "no"), key
    assert set(table) == set(_registered())


def test_the_launcher_variables_alone_do_not_switch_on_a_child_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A joblib worker inherits torchrun's variables but is not one of the ranks."""
    for name, value in {
        "RANK": "0",
        "WORLD_SIZE": "2",
        "MASTER_ADDR": "x",
        "MASTER_PORT": "1",
    }.items():
        monkeypatch.setenv(name, value)
    assert distributed._launched_by_torchrun()
    monkeypatch.setattr(distributed.multiprocessing, "parent_process", lambda: object())
    assert not distributed._launched_by_torchrun()
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setattr(distributed.multiprocessing, "parent_process", lambda: None)
    assert not distributed._launched_by_torchrun()


def test_save_on_another_rank_writes_nothing(tmp_path: Path) -> None:
    X, y = make_data(2, n=20, missing=0.0)
    model = FusionClassifier(max_epochs=1, random_state=0).fit(X, y)
    model.net_.__dict__["data_parallel_rank_"] = 1  # as a rank-1 process's fit leaves it
    assert model.save(tmp_path / "m.fk") == tmp_path / "m.fk"
    assert not (tmp_path / "m.fk").exists()
    np.testing.assert_equal(model.predict(X), model.predict(X))  # still a usable model
