"""Losses on the per-modality (unimodal) heads, shared by weightings that supervise them.

``L_m = Σ_i mask_im · ℓ(z_m,i, y_i) / max(Σ_i mask_im, 1)``: modality m's head loss averaged over
the samples where m is present (absent modalities add nothing).
"""

from __future__ import annotations

import torch
from torch import Tensor

from fusekit.plugin.context import LossContext
from fusekit.plugin.output import FusionOutput


def require_unimodal_logits(output: FusionOutput, who: str) -> dict[str, Tensor]:
    """``output.unimodal_logits``, or a clear error when the network built no unimodal heads."""
    if output.unimodal_logits is None:
        raise RuntimeError(
            f"{who} needs unimodal logits, but the network built no unimodal heads. Set "
            "needs_unimodal_heads = True on the component."
        )
    return output.unimodal_logits


def unimodal_losses(output: FusionOutput, ctx: LossContext, who: str) -> Tensor:
    """``(M,)`` mean task loss of each modality's head over the samples where it is present
    (sample-weighted when the fit is: ``ctx.weighted_mean``)."""
    logits = require_unimodal_logits(output, who)
    mask = output.mask  # (B, M), columns in ctx.names order
    return torch.stack(
        [
            ctx.weighted_mean(ctx.per_sample_loss(logits[name]), mask[:, position])
            for position, name in enumerate(ctx.names)
        ]
    )
