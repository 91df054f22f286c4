"""Tensor Fusion (TFN).

Zadeh et al., "Tensor Fusion Network for Multimodal Sentiment Analysis", EMNLP 2017, §3.2
(Tensor Fusion Layer): z = [u_1; 1] ⊗ [u_2; 1] ⊗ ... ⊗ [u_M; 1], flattened, which holds every
unimodal, bimodal, ..., M-modal product of features (the paper has M = 3).

Here u_m = W_m v_m + b_m ``(B, dim)`` first projects each modality to ``dim`` (the paper's
modality embedding sub-networks end in a small layer as well): the fused width is
Π_m (dim + 1), e.g. 5 modalities at ``dim=4`` give 3125, so ``dim`` is kept small and a width
above ``max_width`` is a ValueError instead of an out-of-memory error.

Mask rule: an absent modality contributes [0; 1] (its projection is zeroed, the appended 1
stays), so z keeps exactly the terms of the present modalities; all absent gives the one-hot
bias coordinate.
"""

from __future__ import annotations

from numbers import Integral, Real

import torch
from torch import Tensor, nn

from fusekit.plugin import (
    BuildSpec,
    Fusion,
    FusionOutput,
    Interval,
    ModalityProjection,
    hookimpl,
)


class TensorFusion(Fusion):
    """Outer product of the modality vectors with an appended 1 (TFN)."""

    parameter_constraints = {
        "dim": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "max_width": [
            Interval(Integral, 1, None, closed="left")
        ],  # against (dim + 1)^M, which needs M: checked in build
    }

    def __init__(self, dim: int = 4, dropout: float = 0.0, max_width: int = 100_000) -> None:
        super().__init__()
        self.dim = dim
        self.dropout = dropout
        self.max_width = max_width

    def build(self, spec: BuildSpec) -> int:
        owner = "tensor fusion"
        dim = int(self.dim)
        width = (dim + 1) ** len(spec.names)
        if width > self.max_width:
            raise ValueError(
                f"{owner}: {len(spec.names)} modalities at dim={dim} give a fused width of "
                f"(dim + 1)^M = {width}, above max_width={self.max_width}. Lower fusion__dim "
                "or use fusion='lowrank'."
            )
        self.projection = ModalityProjection(spec, dim)
        self.drop = nn.Dropout(float(self.dropout))
        return width

    def forward(self, features: dict[str, Tensor], mask: Tensor, output: FusionOutput) -> Tensor:
        projected = self.projection(features, mask, output.steps)  # (B, M, dim), absent = 0
        ones = projected.new_ones(projected.shape[0], projected.shape[1], 1)
        extended = torch.cat([projected, ones], dim=2)  # (B, M, dim + 1): [u_m; 1]
        fused = extended[:, 0]  # (B, dim + 1)
        for position in range(1, extended.shape[1]):
            # (B, P, 1) * (B, 1, dim + 1) -> (B, P·(dim + 1)), P = (dim + 1)^position
            fused = (fused.unsqueeze(2) * extended[:, position].unsqueeze(1)).flatten(1)
        return self.drop(fused)  # (B, Π (dim + 1))


@hookimpl
def fusekit_fusions() -> dict[str, type]:
    return {"tensor": TensorFusion}
