"""MWAM's FRM bank (EMA per modality) and weight allocation function.

Read from the official code (``models/surf_baseline.py``, spec seed-003 §3.3–3.4); the paper's
own equation numbers are unknown. For the modalities present in the batch (M' of them):

    bank_m ← (1 − a) · FRM_m                       first update with soft begin   (§3.3)
    bank_m ← a · bank_m + (1 − a) · FRM_m          afterwards
    μ      = (1/M') Σ_{m'} bank_{m'}               mean over the present modalities' banks (§3.4)
    r_m    = FRM_m / (μ + ε)
    w_m    = α − β · sigmoid(s · (r_m − γ))        α 1.5, β 1, γ 1, s 10  ->  w ∈ (0.5, 1.5)

As in the code, every weight is 1 while any present modality's bank is exactly 0. A modality
absent from the whole batch (or with a non-finite FRM) keeps w = 1 and its bank is not touched
(spec §9.4). Without soft begin the first bank value is FRM_m itself.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def allocation_weight(
    ratio: float | Tensor,
    alpha: float = 1.5,
    beta: float = 1.0,
    gamma: float = 1.0,
    sharpness: float = 10.0,
) -> float | Tensor:
    """w = α − β · sigmoid(s · (r − γ)); strictly decreasing in r when β, s > 0."""
    if isinstance(ratio, Tensor):
        return alpha - beta * torch.sigmoid(sharpness * (ratio - gamma))
    return alpha - beta / (1.0 + math.exp(-sharpness * (ratio - gamma)))


def update_and_allocate(
    frm: Tensor,
    bank: Tensor,
    started: Tensor,
    ema: float = 0.5,
    soft_begin: bool = True,
    eps: float = 1e-6,
    alpha: float = 1.5,
    beta: float = 1.0,
    gamma: float = 1.0,
    sharpness: float = 10.0,
) -> Tensor:
    """One training step: update ``bank``/``started`` in place and return the weights ``(M,)``.

    Args:
        frm: ``(M,)`` this batch's FRM per modality; NaN or inf for a modality to skip (absent
            from the whole batch).
        bank: ``(M,)`` float EMA bank, updated in place for the usable modalities.
        started: ``(M,)`` bool, True once a modality's bank has had its first update.
    """
    usable = torch.isfinite(frm)  # (M,)
    weights = torch.ones_like(bank)  # (M,)
    if not usable.any():
        return weights
    first = usable & ~started
    later = usable & started
    first_value = (1.0 - ema) * frm if soft_begin else frm
    bank[first] = first_value[first]
    bank[later] = ema * bank[later] + (1.0 - ema) * frm[later]
    started |= usable
    if (bank[usable] == 0).any():  # the code's init_weight = 1
        return weights
    mean_bank = bank[usable].mean()  # μ over present modalities
    ratio = frm[usable] / (mean_bank + eps)  # (M',)
    weights[usable] = allocation_weight(ratio, alpha, beta, gamma, sharpness)
    return weights
