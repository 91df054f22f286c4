"""Verdicts on a paper's claim from paired per-seed (or per-fold) differences.

``d_i`` = method − baseline on seed ``i``. The 95 % interval is Student's t over the ``n``
differences, ``mean ± t(0.975, n − 1) · std / √n`` (``scipy.stats.t``). The claim ``d > 0``
(``sign=+1``) or ``d < 0`` (``sign=−1``) *does not hold* when the interval lies entirely within
``±margin`` of 0 (no effect worth the name, even if it excludes 0: the papers claim gains of
points, not of tenths of one) or on the other side of 0; it *holds* when the interval lies on its
side of 0 and reaches beyond ``margin``, and is *inconclusive* otherwise. The interval assumes
independent seeds; over folds of repeated cross-validation it is optimistic (use the bench's
corrected test there).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np
import torch
from scipy import stats

__all__ = [
    "MARGIN",
    "claim_cells",
    "claim_verdict",
    "machine_line",
    "mean_std",
    "paired_difference",
    "write_report",
]

#: Differences whose whole interval lies within ±MARGIN count as "no effect".
MARGIN = 0.01


def paired_difference(diffs: np.ndarray) -> tuple[float, float, float, float]:
    """``(mean, std, low, high)`` of paired differences ``(n,)``, ``n >= 2``: sample std
    (``ddof=1``) and the 95 % t-interval of the mean."""
    diffs = np.asarray(diffs, dtype=float)
    if diffs.ndim != 1 or len(diffs) < 2:
        raise ValueError(f"paired differences must be (n,) with n >= 2, got shape {diffs.shape}.")
    mean, std = float(diffs.mean()), float(diffs.std(ddof=1))
    half = stats.t.ppf(0.975, len(diffs) - 1) * std / np.sqrt(len(diffs))
    return mean, std, mean - half, mean + half


def claim_verdict(low: float, high: float, sign: int = 1, margin: float = MARGIN) -> str:
    """ "holds" / "does not hold" / "inconclusive" for the claim ``sign · d > 0`` (see above)."""
    if sign not in (1, -1):
        raise ValueError(f"sign must be +1 or -1, got {sign!r}.")
    low, high = sorted((sign * low, sign * high))
    if high < 0 or (low > -margin and high < margin):
        return "does not hold"
    if low > 0:
        return "holds"
    return "inconclusive"


def claim_cells(diffs: np.ndarray, sign: int = 1, margin: float = MARGIN) -> str:
    """The Markdown cells of one claim row of the reproduction reports: ``mean ± std | [low,
    high] | seeds with d > 0 / n | verdict``."""
    diffs = np.asarray(diffs, dtype=float)
    mean, std, low, high = paired_difference(diffs)
    return (
        f"{mean:+.3f} ± {std:.3f} | [{low:+.3f}, {high:+.3f}] | {int((diffs > 0).sum())}/"
        f"{len(diffs)} | {claim_verdict(low, high, sign, margin)}"
    )


def mean_std(values: np.ndarray | list[float]) -> str:
    """``mean ± std`` over seeds (sample std, ``ddof=1``), three decimals."""
    return f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}"


def machine_line() -> str:
    """The ``machine:`` line of a report's header: CPU, cores, torch, threads, Python."""
    return (
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s), python {platform.python_version()}"
    )


def write_report(text: str, out: str | Path | None) -> None:
    """Print a report and, with ``out``, write it there whole."""
    print(text)
    if out:
        Path(out).write_text(text, encoding="utf-8")
