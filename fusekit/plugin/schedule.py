"""Schedules: epoch windows (a method active from ``start_epoch`` to ``end_epoch``, inclusive,
0-based) and learning-rate schedules as functions of training progress."""

from __future__ import annotations

import math
from dataclasses import dataclass


def check_window(who: str, start_epoch: int, end_epoch: int | None) -> None:
    """ValueError unless ``0 <= start_epoch`` and ``end_epoch`` is None or ``>= start_epoch``."""
    if not int(start_epoch) >= 0:
        raise ValueError(f"{who}: start_epoch must be >= 0, got {start_epoch!r}")
    if end_epoch is not None and int(end_epoch) < int(start_epoch):
        raise ValueError(
            f"{who}: end_epoch must be None or >= start_epoch ({start_epoch}), got {end_epoch!r}"
        )


def in_window(epoch: int, start_epoch: int, end_epoch: int | None) -> bool:
    """Whether 0-based ``epoch`` lies in ``[start_epoch, end_epoch]`` (``None``: no end)."""
    return int(start_epoch) <= epoch and (end_epoch is None or epoch <= int(end_epoch))


@dataclass(frozen=True)
class WarmupCosine:
    """Linear warm-up, then cosine decay: the factor on ``lr`` at training progress ``p``.

    ``p = k / T`` for optimiser step ``k`` (0-based) of ``T = max_epochs x batches per epoch``;
    the estimator steps it after every training batch (``lr_schedule=WarmupCosine()``). With
    ``w = warmup``, ``s = start_factor``, ``f = final_factor``::

        p < w:   s + (1 - s) * p / w                                 (linear warm-up, s -> 1)
        p >= w:  f + (1 - f) * (1 + cos(pi * (p - w) / (1 - w))) / 2   (cosine decay, 1 -> f)

    For ``T`` with ``w * T`` an integer this is torch's
    ``SequentialLR([LinearLR(start_factor=s, total_iters=wT), CosineAnnealingLR(T - wT,
    eta_min=f * lr)], milestones=[wT])``. The defaults are SCFAE's paper schedule (2.5e-5 -> 5e-4
    over the first 20 % of training, then cosine to 0: ``s = 2.5e-5 / 5e-4 = 0.05``).
    """

    warmup: float = 0.2
    start_factor: float = 0.05
    final_factor: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.warmup < 1.0:
            raise ValueError(f"WarmupCosine: warmup must be in [0, 1), got {self.warmup!r}")
        for name in ("start_factor", "final_factor"):
            if not getattr(self, name) >= 0.0:
                raise ValueError(f"WarmupCosine: {name} must be >= 0, got {getattr(self, name)!r}")

    def __call__(self, progress: float) -> float:
        p = min(max(float(progress), 0.0), 1.0)
        if p < self.warmup:
            return self.start_factor + (1.0 - self.start_factor) * p / self.warmup
        decay = (p - self.warmup) / (1.0 - self.warmup)
        return self.final_factor + (1.0 - self.final_factor) * (1.0 + math.cos(math.pi * decay)) / 2
