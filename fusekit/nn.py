"""Small tensor helpers shared by plugins: pooling to vectors and mask-aware reductions."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from fusekit.components import Shape


def vector_size(shape: Shape) -> int:
    """Width of :func:`as_vector`'s output for a feature of ``shape`` (no batch axis)."""
    if len(shape) == 1:
        return shape[0]
    if len(shape) == 2:
        return shape[1]
    return math.prod(shape)


def as_vector(features: Tensor, steps: Tensor | None = None) -> Tensor:
    """``(B, D)`` as is, ``(B, T, D)`` averaged over real time steps, ``(B, C, H, W)`` flattened.

    ``steps`` ``(B, T)`` marks real (True) and padded steps; ``None`` means all real.
    """
    if features.dim() == 2:
        return features
    if features.dim() == 3:
        if steps is None:
            return features.mean(dim=1)
        weights = steps.to(features.dtype).unsqueeze(-1)  # (B, T, 1)
        return (features * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
    return features.flatten(start_dim=1)


def expand_mask(column: Tensor, like: Tensor) -> Tensor:
    """A ``(B,)`` mask column shaped to broadcast against ``like`` ``(B, ...)``, in its dtype."""
    return column.reshape(-1, *([1] * (like.dim() - 1))).to(like.dtype)


def masked_mean(stacked: Tensor, mask: Tensor) -> Tensor:
    """Mean over the modality axis of ``stacked`` ``(B, M, ...)`` counting present ones only.

    A sample with no modality present gets zeros (not NaN).
    """
    weights = expand_mask(mask, stacked) if mask.dim() == 1 else mask.to(stacked.dtype)
    weights = weights.reshape(*mask.shape, *([1] * (stacked.dim() - 2)))
    total = (stacked * weights).sum(dim=1)
    count = weights.sum(dim=1).clamp(min=1.0)
    return total / count


def seeded_generator(seed: int) -> torch.Generator:
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator
