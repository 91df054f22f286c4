"""Test-time corruptions of one modality, as plain functions in a name -> :class:`Corruption` table.

Two kinds (``Corruption.has_severity``):

* severity corruptions, ``level`` = how strong, applied to a ``rate`` fraction of the samples:
  ``gaussian`` (x + level * std_j * N(0, 1), std_j the feature's std over the present rows, so
  ``level`` is in units of each feature's spread and modalities of any scale compare) and
  ``salt_and_pepper`` (each value, with probability ``level``, set to its feature's min or max
  over the present rows, with equal odds);
* sample corruptions, ``level`` = the fraction of samples hit: ``zero_out`` (all values 0, still
  *present*), ``remove`` (all-NaN row: the modality is *absent*, fusekit's missing-modality path)
  and ``temporal_shuffle`` (the time steps of a sequence ``(n, T, d)`` randomly permuted).

Rows that are already absent (all NaN) are never touched. Samples are picked as ``u_i < rate``
with ``u ~ U(0, 1)`` drawn first from the generator, so for a fixed generator seed the hit rows of
a lower rate are a subset of those of a higher one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

#: ``(rows, level, rng, stats) -> rows``: ``rows`` ``(k, *shape)`` float64 of the hit samples.
CorruptionFn = Callable[[np.ndarray, float, np.random.Generator, dict[str, np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class Corruption:
    """A named corruption; ``default_levels`` are what ``robustness_curve`` sweeps by default."""

    name: str
    function: CorruptionFn
    has_severity: bool
    default_levels: tuple[float, ...]
    needs_sequence: bool = False


def gaussian_noise(rows: np.ndarray, level: float, rng: np.random.Generator, stats: dict) -> Any:
    return rows + level * stats["std"] * rng.standard_normal(rows.shape)  # (k, *shape)


def salt_and_pepper(rows: np.ndarray, level: float, rng: np.random.Generator, stats: dict) -> Any:
    hit = rng.random(rows.shape) < level  # (k, *shape)
    salt = rng.random(rows.shape) < 0.5
    extreme = np.where(salt, stats["max"], stats["min"])  # broadcast (*shape) -> (k, *shape)
    return np.where(hit, extreme, rows)


def zero_out(rows: np.ndarray, level: float, rng: np.random.Generator, stats: dict) -> Any:
    return np.zeros_like(rows)


def remove(rows: np.ndarray, level: float, rng: np.random.Generator, stats: dict) -> Any:
    return np.full_like(rows, np.nan)


def temporal_shuffle(rows: np.ndarray, level: float, rng: np.random.Generator, stats: dict) -> Any:
    order = np.argsort(rng.random(rows.shape[:2]), axis=1)  # (k, T): one permutation per row
    return np.take_along_axis(rows, order[:, :, None], axis=1)  # (k, T, d)


FRACTIONS = (0.0, 0.25, 0.5, 0.75, 1.0)
CORRUPTIONS: dict[str, Corruption] = {
    c.name: c
    for c in (
        Corruption("gaussian", gaussian_noise, True, (0.0, 0.25, 0.5, 1.0, 2.0)),
        Corruption("salt_and_pepper", salt_and_pepper, True, (0.0, 0.05, 0.1, 0.2, 0.4)),
        Corruption("zero_out", zero_out, False, FRACTIONS),
        Corruption("remove", remove, False, FRACTIONS),
        Corruption("temporal_shuffle", temporal_shuffle, False, FRACTIONS, needs_sequence=True),
    )
}


def get_corruption(corruption: str | Corruption) -> Corruption:
    """A :class:`Corruption` from its name (or itself)."""
    if isinstance(corruption, Corruption):
        return corruption
    if corruption not in CORRUPTIONS:
        raise ValueError(
            f"unknown corruption {corruption!r}; known: {sorted(CORRUPTIONS)}, or pass a "
            "fusekit.robustness.Corruption."
        )
    return CORRUPTIONS[corruption]


def present_rows(values: np.ndarray) -> np.ndarray:
    """``(n,)`` True where the modality is present (not all NaN)."""
    return ~np.isnan(values.reshape(len(values), -1)).all(axis=1)


def feature_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """Per-feature std, min and max over the present rows: each ``(*shape)``."""
    rows = values[present_rows(values)]
    if len(rows) == 0:
        zeros = np.zeros(values.shape[1:])
        return {"std": zeros, "min": zeros, "max": zeros}
    return {"std": np.nanstd(rows, axis=0), "min": np.nanmin(rows, axis=0),
            "max": np.nanmax(rows, axis=0)}  # fmt: skip


def apply_corruption(
    values: np.ndarray,
    corruption: str | Corruption,
    level: float,
    rate: float | None,
    rng: np.random.Generator,
    modality: str = "?",
    stats: dict[str, np.ndarray] | None = None,
) -> np.ndarray:
    """Corrupt one modality's ``(n, *shape)`` array; returns a new float64 array."""
    spec = get_corruption(corruption)
    if spec.needs_sequence and values.ndim != 3:
        raise ValueError(
            f"corruption {spec.name!r} needs a sequence modality (n, T, d), but modality "
            f"{modality!r} has shape {values.shape}."
        )
    if spec.has_severity:
        fraction = 1.0 if rate is None else rate
    else:
        if rate is not None:
            raise ValueError(
                f"corruption {spec.name!r} has no severity: its level is the fraction of samples "
                f"hit, so rate must be None, got rate={rate!r}."
            )
        fraction = level
    if not 0.0 <= fraction <= 1.0:
        what = "rate" if spec.has_severity else "level (fraction of samples)"
        raise ValueError(f"{what} must be in [0, 1] for {spec.name!r}, got {fraction!r}.")
    if spec.has_severity and level < 0:
        raise ValueError(f"level must be >= 0 for {spec.name!r}, got {level!r}.")
    values = np.array(values, dtype=np.float64)  # copy
    hit = (rng.random(len(values)) < fraction) & present_rows(values)  # (n,)
    if hit.any():
        stats = feature_stats(values) if stats is None else stats
        values[hit] = spec.function(values[hit], float(level), rng, stats)
    return values
