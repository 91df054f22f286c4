"""What loss terms and training hooks are handed: :class:`LossContext`, :class:`TrainingContext`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor

from fusekit.plugin.batch import ModalityBatch, TrainingData


@dataclass
class LossContext:
    """Everything a component may need to compute loss terms for one batch.

    ``per_sample_loss(logits, target)`` is the task criterion without reduction, ``(B,)``.
    ``network`` allows extra forward passes (e.g. with a modality masked: ``batch.without(m)``).
    """

    network: Any
    batch: ModalityBatch
    target: Tensor
    training: bool

    def per_sample_loss(self, logits: Tensor, target: Tensor | None = None) -> Tensor:
        return self.network.per_sample_loss(logits, self.target if target is None else target)

    def mean_loss(self, logits: Tensor, target: Tensor | None = None) -> Tensor:
        """The mean of :meth:`per_sample_loss`, computed by one fused loss call."""
        return self.network.mean_loss(logits, self.target if target is None else target)


@dataclass
class TrainingContext:
    """What epoch- and batch-level hooks receive.

    Attributes:
        network: the module being trained.
        net: the private skorch net driving the loop (history, optimizer_, callbacks).
        data: all training rows (for schemes that need a held-out split or per-sample state).
        epoch: zero-based epoch number.
        batch: the current batch inputs in batch-level hooks, else ``None``.
        target: the current batch target in batch-level hooks, else ``None``.
        train_rows: rows of ``data`` used for training when skorch holds out a validation split
            (``train_split``), else ``None`` (all rows train).
        batch_index: zero-based number of the batch within the epoch (batch-level hooks).
    """

    network: Any
    net: Any
    data: TrainingData | None
    epoch: int
    batch: ModalityBatch | None = None
    target: Tensor | None = None
    train_rows: Tensor | None = None
    batch_index: int = 0
