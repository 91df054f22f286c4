"""Mask-aware tensor operations shared by methods.

The presence mask is ``(B, M)`` bool, columns in ``BuildSpec.names`` order (the order in which
``features`` dicts iterate). Every helper here treats absent modalities as contributing nothing
and stays finite when a sample has none present.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fusekit.plugin.precision import at_least_float32


def expand_mask(column: Tensor, like: Tensor) -> Tensor:
    """A ``(B,)`` mask column shaped to broadcast against ``like`` ``(B, ...)``, in its dtype."""
    return column.reshape(-1, *([1] * (like.dim() - 1))).to(like.dtype)


def zero_absent(features: dict[str, Tensor], mask: Tensor) -> dict[str, Tensor]:
    """``{m: h_m · mask[:, m]}``: rows of absent modalities set to zero, shapes unchanged."""
    return {
        name: h * expand_mask(mask[:, position], h)
        for position, (name, h) in enumerate(features.items())
    }


def masked_mean(stacked: Tensor, mask: Tensor) -> Tensor:
    """Mean over the modality axis of ``stacked`` ``(B, M, ...)`` counting present ones only.

    ``mask`` is the ``(B, M)`` presence mask. A sample with no modality present gets zeros (not
    NaN).
    """
    if mask.shape != stacked.shape[:2]:
        raise ValueError(
            f"masked_mean needs a (B, M) mask matching stacked's first two axes "
            f"{tuple(stacked.shape[:2])}, got a mask of shape {tuple(mask.shape)}"
        )
    weights = mask.to(stacked.dtype).reshape(*mask.shape, *([1] * (stacked.dim() - 2)))
    total = (stacked * weights).sum(dim=1)
    count = weights.sum(dim=1).clamp(min=1.0)
    return total / count


def present_mean(values: Tensor, present: Tensor) -> Tensor:
    """Mean of ``values`` ``(B,)`` over the rows where ``present`` ``(B,)`` is True; 0 if none."""
    weights = present.to(values.dtype)
    return (values * weights).sum() / weights.sum().clamp(min=1.0)


def present_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax of ``scores`` ``(B, M)`` over the present modalities; absent ones get 0.

    A sample with no modality present gets all zeros (finite, no NaN in value or gradient).
    """
    scores = at_least_float32(scores)  # float32 weights under mixed precision (contract rule)
    filled = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)  # (B, M)
    return torch.softmax(filled, dim=1) * mask.to(scores.dtype)  # (B, M)


def scale_features(features: dict[str, Tensor], weights: Tensor, mask: Tensor) -> dict[str, Tensor]:
    """``{m: n_i · a_im · h_m}``: per-sample weights ``(B, M)`` times the present count n_i."""
    present = mask.sum(dim=1, keepdim=True).to(weights.dtype)  # (B, 1)
    factors = weights * present  # (B, M)
    return {
        name: value * expand_mask(factors[:, position], value)
        for position, (name, value) in enumerate(features.items())
    }
