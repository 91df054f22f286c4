"""Controlled input perturbations for UDML's noise-aware estimator (Sec. 3.2.1, Eq. 8/10).

For each training sample i and modality m a level σ_i^m is drawn uniformly from the discrete set
P_σ (``levels``); with probability ``clean_fraction`` the whole sample stays clean (σ = 0 on every
modality, as the official code does for 50 % of the samples). Absent modalities are never
perturbed (σ = 0). The input becomes

    x̃_i^m = x_i^m + ε,   ε ~ N(0, (scale · σ_i^m · s_m)² I)          (B, *shape_m)

with s_m the per-feature training standard deviation of modality m (the paper's σ is in raw input
units; relative noise keeps one ``noise_scale`` meaningful for every block, spec §10.9). At the top
level, ``full_corruption`` replaces the input by pure noise N(mean_m, s_m²) (the code's σ = 11).
Padded sequence steps stay untouched.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fusekit.plugin import expand_mask


def draw_levels(mask: Tensor, levels: Tensor, clean_fraction: float) -> Tensor:
    """``(B, M)`` noise levels σ_i^m from ``levels`` ``(K,)``: 0 for absent and clean samples."""
    picks = torch.randint(len(levels), mask.shape, device=mask.device)  # (B, M)
    drawn = levels.to(mask.device)[picks]  # (B, M)
    clean = torch.rand(mask.shape[0], 1, device=mask.device) < clean_fraction  # (B, 1)
    return torch.where(clean | ~mask, torch.zeros_like(drawn), drawn)


def corrupt(
    x: Tensor,
    level: Tensor,
    scale: float,
    mean: Tensor,
    std: Tensor,
    full_corruption_level: float | None,
    steps: Tensor | None = None,
) -> Tensor:
    """One modality: ``x`` ``(B, *shape)``, ``level`` ``(B,)``, ``mean``/``std`` ``(*shape)``."""
    real = 1.0 if steps is None else steps.unsqueeze(-1).to(x.dtype)  # (B, T, 1): real steps
    noise = torch.randn_like(x) * std * real  # (B, *shape), unit noise in the modality's scale
    corrupted = x + noise * expand_mask(level * scale, x)  # (B, *shape)
    if full_corruption_level is not None:
        replaced = expand_mask(level >= full_corruption_level, x)  # (B, 1, ...)
        corrupted = corrupted * (1 - replaced) + (mean * real + noise) * replaced
    return corrupted
