"""Schedules: epoch windows (a method active from ``start_epoch`` to ``end_epoch``, inclusive,
0-based) and learning-rate schedules as functions of training progress."""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import math
from dataclasses import dataclass
from typing import Any


def check_window(who: str, start_epoch: int, end_epoch: int | None) -> None:
    """ValueError unless ``0 <= start_epoch`` and ``end_epoch`` is None or ``>= start_epoch``."""
    if not int(start_epoch) >= 0:
        raise ValueError(f"{who}: start_epoch must be >= 0, got {start_epoch!r}")
    if end_epoch is not None and int(end_epoch) < int(start_epoch):
        raise ValueError(
            f"{who}: end_epoch must be None or >= start_epoch ({start_epoch}), got {end_epoch!r}"
        )


class _Stored:
    """``to_dict`` / ``from_dict``: a schedule as its plain-value fields (how a model file keeps
    it)."""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, fields: dict[str, Any]) -> Any:
        return cls(**fields)


def in_window(epoch: int, start_epoch: int, end_epoch: int | None) -> bool:
    """Whether 0-based ``epoch`` lies in ``[start_epoch, end_epoch]`` (``None``: no end)."""
    return int(start_epoch) <= epoch and (end_epoch is None or epoch <= int(end_epoch))


@dataclass(frozen=True)
class WarmupCosine(_Stored):
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


@dataclass(frozen=True)
class WarmupMultiStep(_Stored):
    """Linear warm-up, then step decay: the factor on ``lr`` at training progress ``p``.

    ``p = k / T`` as for :class:`WarmupCosine` (stepped after every training batch). With
    ``w = warmup``, ``s = start_factor``, ``g = gamma`` and ``milestones`` ``m_1 < m_2 < ...``
    (progress fractions of the whole run, each in ``[w, 1]``)::

        p < w:   s + (1 - s) * p / w          (linear warm-up, s -> 1)
        p >= w:  g ** #{i : m_i <= p}          (x g at every milestone reached)

    For ``T`` with ``w * T`` and every ``m_i * T`` integers (and ``s > 0``) this is torch's
    ``SequentialLR([LinearLR(start_factor=s, total_iters=wT), MultiStepLR(milestones=[m_i T -
    wT], gamma=g)], milestones=[wT])``. The defaults are the schedule of MWAM's official demo
    (MMANet's trainer, ``lib/model_develop.py`` with ``GradualWarmupScheduler(multiplier=1,
    total_epoch=5)`` and ``MultiStepLR(milestones=[E/6, 2E/6, 3E/6])``, default gamma 0.1, counted
    after the warm-up): for E = 100 epochs the lr rises from 0 over the first 5 epochs and drops
    x0.1 when epochs 22, 39 and 56 begin (the epochs at which that code's lr changes).
    """

    warmup: float = 0.05
    start_factor: float = 0.0
    milestones: tuple[float, ...] = (0.22, 0.39, 0.56)
    gamma: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 <= self.warmup < 1.0:
            raise ValueError(f"WarmupMultiStep: warmup must be in [0, 1), got {self.warmup!r}")
        if not self.start_factor >= 0.0:
            raise ValueError(
                f"WarmupMultiStep: start_factor must be >= 0, got {self.start_factor!r}"
            )
        if not self.gamma > 0.0:
            raise ValueError(f"WarmupMultiStep: gamma must be > 0, got {self.gamma!r}")
        milestones = tuple(float(m) for m in self.milestones)
        in_range = all(self.warmup <= m <= 1.0 for m in milestones)
        increasing = all(a < b for a, b in itertools.pairwise(milestones))
        if not (in_range and increasing):
            raise ValueError(
                f"WarmupMultiStep: milestones must be strictly increasing progress fractions in "
                f"[warmup={self.warmup!r}, 1], got {self.milestones!r}"
            )
        object.__setattr__(self, "milestones", milestones)

    def __call__(self, progress: float) -> float:
        p = min(max(float(progress), 0.0), 1.0)
        if p < self.warmup:
            return self.start_factor + (1.0 - self.start_factor) * p / self.warmup
        return self.gamma ** bisect.bisect_right(self.milestones, p)
