"""Unimodal auxiliary losses.

The per-modality-head loss used by AutoGluon's fusion MLP (``loss_weight``), UDML's L_uni and as the
base of Gradient-Blending (Wang, Tran, Feiszli, CVPR 2020)::

    L = L_task(z, y) + λ · Σ_m L_m,    L_m = Σ_i mask_im · ℓ(z_m,i, y_i) / max(Σ_i mask_im, 1)

z ``(B, K)`` fused logits, z_m ``(B, K)`` the logits of modality m's own linear head. A unimodal
loss averages over the samples where modality m is present only: absent modalities add nothing. The
helpers here are shared by the other weightings that put losses on unimodal logits.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fusekit.components import BuildSpec, Weighting
from fusekit.hookspecs import hookimpl
from fusekit.output import FusionOutput, LossContext


def present_mean(values: Tensor, present: Tensor) -> Tensor:
    """Mean of ``values`` ``(B,)`` over the rows where ``present`` ``(B,)`` is True; 0 if none."""
    weights = present.to(values.dtype)
    return (values * weights).sum() / weights.sum().clamp(min=1.0)


def require_unimodal_logits(output: FusionOutput, who: str) -> dict[str, Tensor]:
    """``output.unimodal_logits``, or a clear error when the network built no unimodal heads."""
    if output.unimodal_logits is None:
        raise RuntimeError(
            f"{who} needs unimodal logits, but the network built no unimodal heads. Set "
            "needs_unimodal_heads = True on the component."
        )
    return output.unimodal_logits


def unimodal_losses(output: FusionOutput, ctx: LossContext, who: str) -> Tensor:
    """``(M,)`` mean task loss of each modality's head over the samples where it is present."""
    logits = require_unimodal_logits(output, who)
    mask = output.mask  # (B, M), columns in ctx.network.names order
    return torch.stack(
        [
            present_mean(ctx.per_sample_loss(logits[name]), mask[:, position])
            for position, name in enumerate(ctx.network.names)
        ]
    )


def check_non_negative(who: str, name: str, value: float) -> None:
    if not float(value) >= 0.0:
        raise ValueError(f"{who}: {name} must be a number >= 0, got {value!r}")


class UnimodalAuxWeighting(Weighting):
    """Task loss plus λ·Σ_m the unimodal-head losses (auxiliary unimodal supervision)."""

    needs_unimodal_heads = True

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__()
        self.weight = weight

    def build(self, spec: BuildSpec) -> None:
        check_non_negative("unimodal_aux", "weight", self.weight)

    def loss_terms(self, output: FusionOutput, ctx: LossContext) -> dict[str, Tensor]:
        losses = unimodal_losses(output, ctx, "unimodal_aux")  # (M,)
        return {"unimodal": float(self.weight) * losses.sum()}


@hookimpl
def fusekit_weightings() -> dict[str, type]:
    return {"unimodal_aux": UnimodalAuxWeighting}
