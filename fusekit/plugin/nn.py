"""Small tensor helpers shared by plugins: pooling features to vectors, seeded generators.

Mask-aware reductions are in :mod:`fusekit.plugin.masks`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from fusekit.plugin.spec import Shape


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


def seeded_generator(seed: int) -> torch.Generator:
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator
