"""Unimodal auxiliary losses.

The per-modality-head loss used by AutoGluon's fusion MLP (``loss_weight``), UDML's L_uni and as the
base of Gradient-Blending (Wang, Tran, Feiszli, CVPR 2020)::

    L = L_task(z, y) + λ · Σ_m L_m,    L_m = Σ_i mask_im · ℓ(z_m,i, y_i) / max(Σ_i mask_im, 1)

z ``(B, K)`` fused logits, z_m ``(B, K)`` the logits of modality m's own linear head. A unimodal
loss averages over the samples where modality m is present only: absent modalities add nothing. The
helpers here are shared by the other weightings that put losses on unimodal logits.
"""

from __future__ import annotations

from numbers import Real

from torch import Tensor

from fusekit.plugin import (
    FusionOutput,
    Interval,
    LossContext,
    Weighting,
    hookimpl,
    unimodal_losses,
)


class UnimodalAuxWeighting(Weighting):
    """Task loss plus λ·Σ_m the unimodal-head losses (auxiliary unimodal supervision)."""

    #: Loss terms only (per-batch means).
    data_parallel_safe = True

    needs_unimodal_heads = True
    parameter_constraints = {"weight": [Interval(Real, 0, None, closed="left")]}

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__()
        self.weight = weight

    def loss_terms(self, output: FusionOutput, ctx: LossContext) -> dict[str, Tensor]:
        losses = unimodal_losses(output, ctx, "unimodal_aux")  # (M,)
        return {"unimodal": float(self.weight) * losses.sum()}


@hookimpl
def fusekit_weightings() -> dict[str, type]:
    return {"unimodal_aux": UnimodalAuxWeighting}
