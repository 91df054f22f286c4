"""Data-parallel training of one model: one ``fit`` call on W processes (``torchrun``).

Every process holds all the training rows and the same network; each training step, the W
processes take the W equal shards of one *global* batch of ``W x batch_size`` rows (the same
shuffled order in every process, from the shared seed), run forward and backward on their shard,
and torch's ``DistributedDataParallel`` averages the gradients during ``backward``. So W processes
train, step for step, what one process trains with ``batch_size x W`` (exactly, up to float
rounding, when no component draws random numbers), in 1/W of the steps' rows per process.

What this module adds around fusekit's skorch net, and why not skorch's ``AccelerateMixin``:
that mixin prepares the criterion (fusekit's is ``Identity``, which DDP refuses), replaces
``module_`` by the wrapper (the components' hooks, early stopping and saving need the
``FusionNetwork`` itself), wraps the lr scheduler so that it steps W times per step (a warm-up /
cosine schedule would end after 1/W of training), adds a ``print_log`` fusekit leaves out, and
shards a ``DataLoader`` (fusekit iterates prepared tensors, :class:`BatchIterator`). Here:

* :class:`ShardedBatches`: each rank's shard of every global batch; every rank takes the same
  number of equal-sized steps. With sample weights each rank's loss (a weighted mean over its
  shard) is scaled by W x its shard's weight / the global batch's before ``backward``, so the
  averaged gradient is the global batch's weighted mean's. Of the rows of an epoch that do not
  fill W equal shards of the last global batch, up to W - 1 are left out
  (``DistributedSampler(drop_last=True)``'s rule; when shuffling, other rows each epoch). The lr
  schedule counts these steps, so it is stepped once per optimiser step and ends exactly at the
  last one.
* :class:`TrainingPass`: forward *and* loss inside the DDP wrapper, so the extra passes of the
  weightings (masked ``fuse`` calls, ``autograd.grad``) happen within DDP's forward, and the
  parameters a batch leaves unused (probe heads of a split head, a turn-based method's idle
  branch) are found from the loss (``find_unused_parameters=True``). ``module_`` stays the
  ``FusionNetwork``. Gradients are averaged by the end of ``backward``, so ``on_grad_computed``
  hooks see and edit the averaged gradient, the same in every process.
* :class:`AgreedMetrics`: the epoch's training loss averaged over all ranks' rows before any
  callback reads it (early stopping, user callbacks). Validation is not sharded: every rank scores
  all validation rows with the same weights, so the validation loss and any scoring callback
  (``EpochScoring("accuracy")``) agree by construction (the validation loss is averaged over the
  ranks too, so that floating-point differences between devices cannot split the stopping
  decision).
* the statistics of the components: :func:`fusekit.plugin.parallel.all_reduce` over this fit's
  process group (:func:`fusekit.plugin.parallel.reducing_over`), and the refusal of components
  that declare ``data_parallel_safe = False``.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
from skorch.callbacks import Callback
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from fusekit.engine.batching import BatchIterator
from fusekit.engine.network import FusionNetwork
from fusekit.plugin import FusionOutput, ModalityBatch
from fusekit.plugin.parallel import reducing_over

#: Values of the estimators' ``distributed`` parameter besides True and False.
AUTO = "auto"
#: The environment variables ``torchrun`` (and ``accelerate launch``, which runs it) sets in every
#: process it starts; with them and no process group yet, fusekit initialises one.
LAUNCHER_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass
class DataParallel:
    """The process group a fit trains over, and this process's place in it."""

    group: Any
    rank: int
    world_size: int
    wrapper: DistributedDataParallel | None = field(default=None, repr=False)
    batches: ShardedBatches | None = field(default=None, repr=False)  # this epoch's shards

    def same_everywhere(self, *values: int | None) -> tuple[int | None, ...]:
        """Rank 0's ``values`` in every process (seeds drawn from ``random_state=None``)."""
        present = [v is not None for v in values]
        numbers = torch.tensor([0 if v is None else int(v) for v in values], dtype=torch.int64)
        torch.distributed.broadcast(numbers, src=_global_rank(self.group, 0), group=self.group)
        return tuple(int(n) if p else None for n, p in zip(numbers.tolist(), present, strict=True))

    def shard(self, iterator: BatchIterator) -> ShardedBatches:
        self.batches = ShardedBatches(iterator, self.rank, self.world_size)
        return self.batches

    def reducing(self) -> AbstractContextManager[None]:
        return reducing_over(self.group)

    def train_step_single(self, net: Any, batch: Any) -> dict[str, Any]:
        """skorch's ``train_step_single`` with forward and loss inside the DDP wrapper."""
        net._set_training(True)
        inputs, target = batch
        network: FusionNetwork = net.module_
        if self.wrapper is None or self.wrapper.module.network is not network:
            # Collective: every rank gets here at its first training step. Broadcasts rank 0's
            # parameters and buffers, so every rank starts from the same weights.
            self.wrapper = DistributedDataParallel(
                TrainingPass(network), process_group=self.group, find_unused_parameters=True
            )
        amp = net.mixed_precision_  # precision= applies here too (autocast, scaled backward)
        with amp.autocast():
            loss = self.wrapper(inputs, target)
        # DDP averages the W gradients; scaled by W·w_r/w (w_r: this shard's weight, w: the global
        # batch's) their mean is the gradient of the global batch's weighted mean loss
        scale = 1.0 if self.batches is None else self.batches.loss_scale
        amp.backward(loss * scale if scale != 1.0 else loss)  # gradients averaged on return
        return {"loss": loss, "y_pred": self.wrapper.module.take_output()}


class TrainingPass(nn.Module):
    """Forward and loss of one training batch as one module call, for the DDP wrapper.

    Returns the loss only (DDP looks for the parameters a step used from what the call returns;
    the pass's other outputs, such as probe logits outside the loss, would mislead it); the
    network's output is kept for skorch's ``y_pred``.
    """

    def __init__(self, network: FusionNetwork) -> None:
        super().__init__()
        self.network = network
        self._output: FusionOutput | None = None

    def forward(self, inputs: ModalityBatch, target: Tensor) -> Tensor:
        output = self.network(inputs)
        self._output = output
        return self.network.loss(output, target, inputs, True)

    def take_output(self) -> FusionOutput | None:
        output, self._output = self._output, None
        return output


class ShardedBatches:
    """This rank's shard of every global batch of :class:`BatchIterator` ``iterator``.

    ``iterator`` yields the global batches (``W x batch_size`` rows, in the order every rank
    draws alike); rank r takes rows ``[r s, (r + 1) s)`` of each, ``s = rows // W``, so the union
    of the ranks' shards is the global batch but for its last ``rows mod W`` rows.
    """

    def __init__(self, iterator: BatchIterator, rank: int, world_size: int) -> None:
        self.rank = rank
        self.world_size = world_size
        #: W x this shard's weight / the global batch's weight (their rows, or with sample
        #: weights their sums), for the shard last handed out: 1 without sample weights.
        self.loss_scale = 1.0
        self.global_batches = iterator
        if iterator.batch_size > 0:
            iterator.batch_size *= world_size

    def _shard_rows(self, rows: int) -> int:
        return rows // self.world_size

    def __len__(self) -> int:
        batches = self.global_batches
        n = len(batches.data) if batches.rows is None else len(batches.rows)
        size = batches.batch_size if batches.batch_size > 0 else max(n, 1)
        full, last = divmod(n, size)
        return full + int(self._shard_rows(last) > 0)

    def __iter__(self) -> Iterator[tuple[ModalityBatch, Tensor | None]]:
        for inputs, target in self.global_batches:
            size = self._shard_rows(len(inputs))
            if size == 0:
                continue
            rows = slice(self.rank * size, (self.rank + 1) * size)
            shard = inputs.take(rows)
            self.loss_scale = 1.0
            if inputs.sample_weight is not None:  # the global batch is here: no communication
                used = inputs.sample_weight[: size * self.world_size]
                total = float(used.sum())
                if total > 0:
                    self.loss_scale = self.world_size * float(shard.sample_weight.sum()) / total
            yield shard, None if target is None else target[rows]


class AgreedMetrics(Callback):
    """The epoch's ``train_loss`` over every rank's rows (and the ``valid_loss`` averaged), before
    any later callback reads the history row."""

    def __init__(self, parallel: DataParallel) -> None:
        self.parallel = parallel

    def on_epoch_end(self, net: Any, **kwargs: Any) -> None:
        row = net.history[-1]
        weight = sum(float(batch.get("train_batch_size", 0)) for batch in row["batches"])
        loss = float(row.get("train_loss", 0.0))
        valid = row.get("valid_loss")
        values = torch.tensor(
            [loss * weight, weight, 0.0 if valid is None else float(valid)], dtype=torch.float64
        )
        torch.distributed.all_reduce(values, group=self.parallel.group)
        if "train_loss" in row and values[1] > 0:
            net.history.record("train_loss", float(values[0] / values[1]))
        if valid is not None:
            net.history.record("valid_loss", float(values[2] / self.parallel.world_size))


def setup(setting: Any, owner: str) -> DataParallel | None:
    """The data parallelism ``distributed=setting`` asks for in this process, or ``None``.

    ``"auto"``: on when a ``torch.distributed`` process group of more than one process is
    initialised, or when this process was started by ``torchrun`` / ``accelerate launch`` (their
    environment variables, world size > 1; not their child processes, such as the joblib workers of
    a grid search) and then initialises the group (``env://``; gloo for CPU tensors, NCCL for CUDA
    ones). ``True``: the same, but an error when there is neither. ``False``: each process trains
    its own model.
    """
    if not isinstance(setting, str) and not setting:
        return None
    dist = torch.distributed
    if dist.is_available() and not dist.is_initialized() and _launched_by_torchrun():
        dist.init_process_group()
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return DataParallel(dist.group.WORLD, dist.get_rank(), dist.get_world_size())
    if not isinstance(setting, str):
        raise ValueError(
            f"{owner}(distributed=True) trains one model on several processes, but this process "
            "is not one of several: no torch.distributed process group of more than one process "
            "is initialised and no launcher's variables are set (WORLD_SIZE > 1, RANK, "
            "MASTER_ADDR, MASTER_PORT). Launch the script with `torchrun --nproc_per_node N "
            "script.py`, or set distributed='auto' to train in this process alone."
        )
    return None


def _launched_by_torchrun() -> bool:
    """Whether this process is one a launcher started for a world of several processes (its
    children, e.g. joblib's workers, inherit the variables but are not)."""
    if not all(name in os.environ for name in LAUNCHER_VARIABLES):
        return False
    try:
        several = int(os.environ["WORLD_SIZE"]) > 1
    except ValueError:
        return False
    return several and multiprocessing.parent_process() is None


def _global_rank(group: Any, rank: int) -> int:
    return torch.distributed.get_global_rank(group, rank) if group is not None else rank


def check_components(owner: str, network: FusionNetwork, parallel: DataParallel | None) -> None:
    """A ``ValueError`` naming every component that declares ``data_parallel_safe = False``,
    under data parallelism."""
    if parallel is None:
        return
    refused = [
        network.label(c)
        for c in (*network.backbones.values(), *network.components())
        # the class's declaration, or the instance's where it depends on a hyperparameter
        if not (type(c).data_parallel_safe and c.data_parallel_safe)
    ]
    if refused:
        raise ValueError(
            f"{owner}.fit is training one model on {parallel.world_size} processes (distributed="
            f"'auto' under a launcher such as torchrun), but {', '.join(dict.fromkeys(refused))} "
            "cannot train data-parallel (data_parallel_safe = False: per-row state or statistics "
            "that the processes cannot agree on; docs/scaling.md lists the methods). Choose a "
            "data-parallel-safe method, or pass distributed=False to train one model per process."
        )


def attach(net: Any, parallel: DataParallel | None, seed: int | None) -> None:
    """Make skorch net ``net`` train over ``parallel`` (before its ``fit``).

    ``seed``: a new fit's seed. Every rank built the network from it (DDP then copies rank 0's
    weights anyway); the ranks but 0 now draw their own random numbers (dropout, noise) from
    ``seed + rank``, so that the shards of one global batch are not perturbed alike. ``None``
    (a ``partial_fit`` continuing its random stream) keeps each rank's stream."""
    if parallel is None:
        return
    if seed is not None and parallel.rank > 0:
        torch.manual_seed(seed + parallel.rank)
    net.__dict__["parallel"] = parallel
    net.__dict__["data_parallel_rank_"] = parallel.rank
    # first of the non-default callbacks: the components' hooks and early stopping read the
    # agreed training loss
    net.callbacks = [("fusekit_agreed_metrics", AgreedMetrics(parallel)), *net.callbacks]


def detach(net: Any) -> None:
    """After training: rank 0's buffers in every rank (batch-norm running statistics follow each
    rank's own batches, and early stopping may restore them), then drop the process group and the
    wrapper from ``net`` (they do not pickle and mean nothing once ``fit`` returns); keeps
    ``data_parallel_rank_``."""
    parallel = net.__dict__.get("parallel")
    if parallel is not None:
        source = _global_rank(parallel.group, 0)
        for buffer in net.module_.buffers():
            torch.distributed.broadcast(buffer, src=source, group=parallel.group)
        parallel.wrapper = None
        net.__dict__["parallel"] = None
        net.callbacks = [(n, c) for n, c in net.callbacks if n != "fusekit_agreed_metrics"]
        net.callbacks_ = [(n, c) for n, c in net.callbacks_ if n != "fusekit_agreed_metrics"]


def training(parallel: DataParallel | None) -> AbstractContextManager[None]:
    """The block in which components' ``all_reduce`` reduces over ``parallel``'s group."""
    return nullcontext() if parallel is None else parallel.reducing()


def writes_files(net: Any) -> bool:
    """Whether this process saves a model trained by ``net``: not the ranks but 0 of a
    data-parallel fit (they hold the same weights; rank 0 writes the file)."""
    return int(getattr(net, "data_parallel_rank_", 0)) == 0


__all__ = [
    "AUTO",
    "AgreedMetrics",
    "DataParallel",
    "ShardedBatches",
    "TrainingPass",
    "attach",
    "check_components",
    "detach",
    "setup",
    "training",
    "writes_files",
]
