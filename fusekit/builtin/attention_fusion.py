"""Modality-level attention pooling.

Modality attention in the style of Hori et al., "Attention-Based Multimodal Fusion for Video
Description", ICCV 2017 (its attention over modalities), with the decoder state replaced by a
learned query vector q, as in the attention pooling of Yang et al., "Hierarchical Attention
Networks", NAACL 2016 (there is no decoder here):

    u_m = tanh(W_m v_m + b_m)                    (B, dim) per modality
    e_m = q^T tanh(W_a u_m + b_a)                (B,)  relevance score
    α_m = exp(e_m)·mask_m / Σ_k exp(e_k)·mask_k   softmax over the modalities present
    z = Σ_m α_m u_m                              (B, dim)

Absent modalities get α_m = 0 exactly; a sample with none present gets z = 0. The weights are
exposed as ``output.diagnostics["modality_attention"]`` ``(B, M)``.
"""

from __future__ import annotations

from numbers import Integral

import torch
from torch import Tensor, nn

from fusekit.plugin import BuildSpec, Fusion, FusionOutput, Interval, ModalityProjection, hookimpl


class AttentionFusion(Fusion):
    """Attention-weighted mean of the projected modalities (learned query, softmax over present)."""

    parameter_constraints = {
        "dim": [Interval(Integral, 1, None, closed="left")],
        "attention_dim": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, dim: int = 64, attention_dim: int = 32) -> None:
        super().__init__()
        self.dim = dim
        self.attention_dim = attention_dim

    def build(self, spec: BuildSpec) -> int:
        dim, attention_dim = int(self.dim), int(self.attention_dim)
        self.projection = ModalityProjection(spec, dim, activation="tanh")
        self.score = nn.Sequential(
            nn.Linear(dim, attention_dim), nn.Tanh(), nn.Linear(attention_dim, 1, bias=False)
        )  # e_m = q^T tanh(W_a u_m + b_a)
        return dim

    def forward(self, features: dict[str, Tensor], mask: Tensor, output: FusionOutput) -> Tensor:
        projected = self.projection(features, mask, output.steps)  # (B, M, dim), absent = 0
        scores = self.score(projected).squeeze(-1)  # (B, M)
        scores = scores.masked_fill(~mask, -1e9)  # finite, so no NaN when none is present
        alpha = torch.softmax(scores, dim=1) * mask.to(scores.dtype)  # (B, M)
        output.diagnostics["modality_attention"] = alpha.detach()
        return (alpha.unsqueeze(-1) * projected).sum(dim=1)  # (B, dim)


@hookimpl
def fusekit_fusions() -> dict[str, type]:
    return {"attention": AttentionFusion}
