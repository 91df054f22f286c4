"""What loss terms and training hooks are handed: :class:`LossContext`, :class:`TrainingContext`.

Both give the network as a :class:`~fusekit.plugin.views.NetworkView` (the calls a method may
make), never the engine's module itself; :class:`TrainingContext` gives the loop's facts
(``max_epochs``, ``batch_size``, epoch, batch index) and a
:class:`~fusekit.plugin.views.TrainingLoop`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from fusekit.plugin.batch import ModalityBatch, TrainingData
from fusekit.plugin.criterion import TaskCriterion
from fusekit.plugin.masks import present_mean
from fusekit.plugin.parallel import ReduceOp, all_reduce, broadcast, world_size
from fusekit.plugin.views import NetworkView, TrainingLoop


def _view(network: Any) -> NetworkView:
    return network if isinstance(network, NetworkView) else NetworkView(network)


class _Reduces:
    """``all_reduce`` and ``world_size`` of both contexts (see :mod:`fusekit.plugin.parallel`)."""

    def all_reduce(self, tensor: Tensor, op: ReduceOp = "mean") -> Tensor:
        """``tensor`` reduced (``"mean"``, ``"sum"``, ``"max"``, ``"min"``) over the processes of
        a data-parallel fit, detached; ``tensor`` itself in a single process. Use it for every
        batch statistic that sets a coefficient, so that each process uses the global batch's."""
        return all_reduce(tensor, op)

    def broadcast(self, tensor: Tensor) -> Tensor:
        """The first process's ``tensor`` in every process (``tensor`` itself in one process)."""
        return broadcast(tensor)

    @property
    def world_size(self) -> int:
        """Processes training this model together (1 outside a data-parallel fit)."""
        return world_size()


@dataclass
class LossContext(_Reduces):
    """Everything a component may need to compute loss terms for one batch.

    Attributes:
        network: the network's :class:`NetworkView`; allows extra passes (``network.fuse`` with
            another mask, ``network(batch.without(m))``). A network passed here is wrapped.
        batch: the batch inputs of this pass; its ``sample_weight`` (``None`` when the fit is
            unweighted) is the one place the rows' weights are held (:attr:`sample_weight`).
        target: ``(B,)`` class indices or ``(B, n_outputs)`` standardised regression targets.
        training: True in training, False for validation passes.
        criterion: the task criterion (:class:`TaskCriterion`) the network trains on, which the
            network hands over; a context built by hand without one takes the network's
            (``network.criterion``).
    """

    network: NetworkView
    batch: ModalityBatch | None
    target: Tensor
    training: bool
    criterion: TaskCriterion | None = None

    def __post_init__(self) -> None:
        self.network = _view(self.network)

    @property
    def sample_weight(self) -> Tensor | None:
        """``(B,)`` sample weights of the batch's rows (``batch.sample_weight``), or ``None``
        when the fit is unweighted. A weighting that defines its own task loss averages its
        per-sample losses with :meth:`weighted_mean`, which reads them."""
        return None if self.batch is None else self.batch.sample_weight

    def _criterion(self) -> TaskCriterion:
        if self.criterion is None:
            self.criterion = self.network.criterion
        return self.criterion

    @property
    def names(self) -> tuple[str, ...]:
        """Modality names, in mask-column order."""
        return self.network.names

    def per_sample_loss(self, logits: Tensor, target: Tensor | None = None) -> Tensor:
        """The task criterion without reduction, ``(B,)`` (``target`` defaults to the batch's)."""
        return self._criterion().per_sample(logits, self.target if target is None else target)

    def mean_loss(self, logits: Tensor, target: Tensor | None = None) -> Tensor:
        """The (sample-weighted, see :meth:`weighted_mean`) mean of :meth:`per_sample_loss`.

        Unweighted, one fused loss call.
        """
        target = self.target if target is None else target
        if self.sample_weight is None:
            return self._criterion().mean(logits, target)
        return self.weighted_mean(self._criterion().per_sample(logits, target))

    def weighted_mean(self, values: Tensor, where: Tensor | None = None) -> Tensor:
        """Sample-weighted mean of per-sample ``values`` ``(B,)`` over the rows ``where`` ``(B,)``.

        ``sum_i w_i v_i / sum_i w_i`` over the batch's rows (restricted to ``where``), with
        ``w = sample_weight``; unweighted (``sample_weight is None``) it is the plain mean
        (``values.mean()``, or the mean over ``where``). Rows of weight 0 do not count, so two
        equal rows of weight 1 give the same value as one of weight 2. 0 when no row counts.
        """
        weights = self.sample_weight
        if weights is None:
            return values.mean() if where is None else present_mean(values, where)
        weights = weights.to(values.dtype)
        if where is not None:
            weights = weights * where.to(values.dtype)
        total = weights.sum()
        return (values * weights).sum() / torch.where(total > 0, total, torch.ones_like(total))


@dataclass
class TrainingContext(_Reduces):
    """What epoch- and batch-level hooks receive.

    Attributes:
        network: the network's :class:`NetworkView` (a network passed here is wrapped).
        loop: the :class:`TrainingLoop` (settings, a fresh optimiser, the history row), or
            ``None`` when a hook is called outside training (unit tests).
        data: all training rows (for schemes that need a held-out split or per-sample state).
        epoch: zero-based epoch number.
        batch: the current batch inputs in batch-level hooks, else ``None``.
        target: the current batch target in batch-level hooks, else ``None``.
        train_rows: rows of ``data`` used for training when a validation split is held out
            (``train_split``), else ``None`` (all rows train).
        batch_index: zero-based number of the batch within the epoch (batch-level hooks).
        n_rows: rows of the fit's training set when ``data`` is not held in memory (a streamed
            fit), else ``None``; read :attr:`n_train_rows` rather than this.
    """

    network: NetworkView
    loop: TrainingLoop | None
    data: TrainingData | None
    epoch: int
    batch: ModalityBatch | None = None
    target: Tensor | None = None
    train_rows: Tensor | None = None
    batch_index: int = 0
    n_rows: int | None = None

    def __post_init__(self) -> None:
        self.network = _view(self.network)

    @property
    def n_train_rows(self) -> int | None:
        """Rows that train in this fit (validation rows excluded), whether or not they are in
        memory; ``None`` when unknown (hooks called outside training)."""
        if self.train_rows is not None:
            return len(self.train_rows)
        if self.data is not None:
            return len(self.data)
        return self.n_rows

    def _require_loop(self, what: str) -> TrainingLoop:
        if self.loop is None:
            raise RuntimeError(f"TrainingContext.{what} needs the training loop, but loop is None")
        return self.loop

    @property
    def max_epochs(self) -> int:
        """Epochs this ``fit`` runs."""
        return self._require_loop("max_epochs").max_epochs

    @property
    def batch_size(self) -> int:
        """Rows per training batch (``<= 0``: the whole training set)."""
        return self._require_loop("batch_size").batch_size
