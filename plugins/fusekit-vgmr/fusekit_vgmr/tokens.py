"""Feature layouts as token sequences, and mask-aware Avg/Max pooling over real steps.

VGMR is written for sequences ``X_m ∈ R^{T_m × d_m}`` (paper Eq. 1). fusekit features come as
vectors ``(B, d)`` (treated as ``T = 1``), sequences ``(B, T, d)`` or feature maps ``(B, C, H, W)``
(treated as ``H·W`` tokens of width ``C``; not covered by the paper, our choice).
"""

from __future__ import annotations

import torch
from torch import Tensor

from fusekit.plugin import Shape


def token_width(shape: Shape) -> int:
    """``d_m`` of a feature of ``shape`` (no batch axis): ``(d,)``, ``(T, d)`` or ``(C, H, W)``."""
    if len(shape) in (1, 2):
        return int(shape[-1])
    if len(shape) == 3:
        return int(shape[0])
    raise ValueError(
        f"vgmr: features must be (d,), (T, d) or (C, H, W) per sample, got shape {tuple(shape)}."
    )


def to_tokens(features: Tensor) -> Tensor:
    """``(B, d) -> (B, 1, d)``; ``(B, T, d)`` unchanged; ``(B, C, H, W) -> (B, H·W, C)``."""
    if features.dim() == 2:
        return features.unsqueeze(1)
    if features.dim() == 3:
        return features
    return features.flatten(start_dim=2).transpose(1, 2)


def from_tokens(tokens: Tensor, shape: torch.Size) -> Tensor:
    """Inverse of :func:`to_tokens` for an original feature of ``shape`` (with batch axis)."""
    if len(shape) == 2:
        return tokens.squeeze(1)
    if len(shape) == 3:
        return tokens
    return tokens.transpose(1, 2).reshape(shape)


def avg_max_pool(projected: Tensor, steps: Tensor | None) -> Tensor:
    """``[Avg(H_m); Max(H_m)]`` over real steps: ``(B, T, d_p) -> (B, 2·d_p)`` (paper Eq. 3).

    ``steps`` ``(B, T)`` marks real steps (None = all real). Padded steps are left out of the mean
    and filled with −inf for the max; a sample with no real step gets zeros (not NaN).
    """
    if steps is None:
        return torch.cat([projected.mean(dim=1), projected.amax(dim=1)], dim=-1)
    real = steps.unsqueeze(-1)  # (B, T, 1)
    weights = real.to(projected.dtype)
    average = (projected * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)  # (B, d_p)
    maximum = projected.masked_fill(~real, float("-inf")).amax(dim=1)  # (B, d_p)
    maximum = torch.where(steps.any(dim=1, keepdim=True), maximum, torch.zeros_like(maximum))
    return torch.cat([average, maximum], dim=-1)  # (B, 2·d_p)
