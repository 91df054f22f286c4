"""Epoch windows: a method active from ``start_epoch`` to ``end_epoch`` (inclusive, 0-based)."""

from __future__ import annotations


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
