"""Statistics agreed across the processes of a data-parallel fit.

Under data parallelism (``torchrun --nproc_per_node W``, see ``docs/scaling.md``) every process
trains the same network on its own shard of each batch, and gradients are averaged after
``backward``. A method that computes a statistic from the batch and uses it to set a coefficient
(AGM's scores, OGM-GE's discrepancy ratio, MWAM's allocation...) would set a different
coefficient in each process; :func:`all_reduce` makes every process use the statistic of the
whole (global) batch. In a single process it returns its input unchanged.

The engine says which process group a fit runs over (:func:`reducing_over`); a fit launched on
several processes but trained independently in each (``distributed=False``) reduces nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Literal

import torch
from torch import Tensor

#: The process group of the data-parallel fit running in this thread, or ``None``.
_GROUP: ContextVar[Any] = ContextVar("fusekit_data_parallel_group", default=None)

ReduceOp = Literal["mean", "sum", "max", "min"]
_OPS = ("mean", "sum", "max", "min")


@contextmanager
def reducing_over(group: Any) -> Iterator[None]:
    """Inside the block :func:`all_reduce` reduces over ``group`` (a ``torch.distributed``
    process group; ``None``: nothing to reduce). Used by the engine around a data-parallel fit."""
    token = _GROUP.set(group)
    try:
        yield
    finally:
        _GROUP.reset(token)


def world_size() -> int:
    """Processes training this model together: 1 outside a data-parallel fit."""
    group = _GROUP.get()
    return 1 if group is None else torch.distributed.get_world_size(group)


def all_reduce(tensor: Tensor, op: ReduceOp = "mean") -> Tensor:
    """``tensor`` reduced elementwise over the processes of a data-parallel fit: their mean, sum,
    maximum or minimum; in a single process ``tensor`` itself.

    For statistics, not for terms that need a gradient: the result is detached (a new tensor; the
    input is not changed). Every process must call it, in the same order, with a tensor of the same
    shape and dtype (compute the statistic on every batch, not only on some ranks). A mean over
    processes weighs each process's value equally: the engine gives every process a shard of the
    same number of rows, so the mean of per-process means over rows is the mean over the global
    batch. For a mean over the rows where a condition holds (present rows), reduce the sum and
    the count separately.
    """
    if op not in _OPS:
        raise ValueError(f"all_reduce: op must be one of {_OPS}, got {op!r}")
    group = _GROUP.get()
    if group is None:
        return tensor
    result = tensor.detach().clone()
    kind = {
        "mean": torch.distributed.ReduceOp.SUM,
        "sum": torch.distributed.ReduceOp.SUM,
        "max": torch.distributed.ReduceOp.MAX,
        "min": torch.distributed.ReduceOp.MIN,
    }[op]
    torch.distributed.all_reduce(result, op=kind, group=group)  # gloo has no AVG: sum, divide
    if op == "mean":
        result = result / torch.distributed.get_world_size(group)
    return result


def global_present_mean(values: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Per column m, the mean of ``values[:, m]`` over the rows where ``mask[:, m]`` holds, over
    the global batch (every process's rows; in one process, the batch's), and whether any row
    has it: ``(B, M), (B, M) -> (M,), (M,) bool``; the mean is 0 where no row has it.

    The data-parallel form of ``stack([present_mean(values[:, m], mask[:, m]) for m])`` plus
    ``mask.any(dim=0)``, for statistics (detached): one reduction for all columns.
    """
    weights = mask.to(values.dtype)
    sums = torch.stack([(values.detach() * weights).sum(dim=0), weights.sum(dim=0)])  # (2, M)
    total, count = all_reduce(sums, "sum")
    return total / count.clamp(min=1.0), count > 0


def broadcast(tensor: Tensor) -> Tensor:
    """The first process's ``tensor`` in every process of a data-parallel fit (``tensor`` itself
    in a single process): for a random decision the whole global batch must share, such as
    whether to modulate this step. Detached, a new tensor; every process must call it alike."""
    group = _GROUP.get()
    if group is None:
        return tensor
    result = tensor.detach().clone()
    torch.distributed.broadcast(
        result, src=torch.distributed.get_global_rank(group, 0), group=group
    )
    return result
