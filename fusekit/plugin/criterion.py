"""The task criterion: the loss a network trains on, which it hands to every :class:`LossContext`.

Cross-entropy on class indices for classification; for regression the squared error averaged
over the outputs of a row (targets are standardised). ``per_sample`` keeps one value per row
(weighted means and per-modality losses are taken from it); ``mean`` is the unweighted mean of
``per_sample`` in one fused call.
"""

from __future__ import annotations

from torch import Tensor
from torch.nn import functional as F

from fusekit.plugin.precision import at_least_float32

TASKS = ("classification", "regression")


class TaskCriterion:
    """Cross-entropy (classification) or mean squared error (regression), with and without
    reduction."""

    __slots__ = ("task",)

    def __init__(self, task: str) -> None:
        if task not in TASKS:
            raise ValueError(f"task must be one of {list(TASKS)}, got {task!r}")
        self.task = task

    def __repr__(self) -> str:
        return f"TaskCriterion({self.task!r})"

    def per_sample(self, logits: Tensor, target: Tensor) -> Tensor:
        """Loss without reduction, ``(B,)``, in float32 whatever the precision (low-precision
        logits are cast first)."""
        logits = at_least_float32(logits)
        if self.task == "classification":
            return F.cross_entropy(logits, target, reduction="none")
        return F.mse_loss(logits, target.reshape(logits.shape), reduction="none").mean(dim=1)

    def mean(self, logits: Tensor, target: Tensor) -> Tensor:
        """``per_sample(logits, target).mean()`` in one fused call (scalar, float32)."""
        logits = at_least_float32(logits)
        if self.task == "classification":
            return F.cross_entropy(logits, target)
        return F.mse_loss(logits, target.reshape(logits.shape))
