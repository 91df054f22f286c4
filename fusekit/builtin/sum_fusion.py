"""Sum and mean of projections (additive fusion): the methods ``sum`` and ``mean``.

u_m = act(W_m v_m + b_m) ``(B, dim)`` with v_m = as_vector(h_m);

- ``sum``: z = Σ_m mask_m · u_m ``(B, dim)``;
- ``mean``: z = Σ_m mask_m · u_m / max(1, Σ_m mask_m) ``(B, dim)``: the scale of z does not depend
  on how many modalities a sample has; a sample with none present gets zeros.

Projecting first lets modalities of different widths be added. An absent modality contributes
nothing (its projection, bias included, is multiplied by 0); with ``indicators=True`` the
``(B, M)`` mask is appended so the head can tell "absent" from "present with u_m ≈ 0". The two
share one module because the mean is the sum with another reduction.
"""

from __future__ import annotations

from numbers import Integral

import torch
from torch import Tensor

from fusekit.plugin import (
    ACTIVATIONS,
    BuildSpec,
    Fusion,
    FusionOutput,
    Interval,
    ModalityProjection,
    StrOptions,
    hookimpl,
    masked_mean,
)


class SumFusion(Fusion):
    """Sum of per-modality linear projections to a common width."""

    parameter_constraints = {
        "dim": [Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "indicators": ["boolean"],
    }

    def __init__(self, dim: int = 64, activation: str = "none", indicators: bool = False) -> None:
        super().__init__()
        self.dim = dim
        self.activation = activation
        self.indicators = indicators

    def build(self, spec: BuildSpec) -> int:
        dim = int(self.dim)
        self.projection = ModalityProjection(spec, dim, self.activation)
        return dim + (len(spec.names) if self.indicators else 0)

    def reduce(self, projected: Tensor, mask: Tensor) -> Tensor:
        return projected.sum(dim=1)  # (B, M, dim) -> (B, dim)

    def forward(self, features: dict[str, Tensor], mask: Tensor, output: FusionOutput) -> Tensor:
        projected = self.projection(features, mask, output.steps)  # (B, M, dim), absent = 0
        fused = self.reduce(projected, mask)  # (B, dim)
        if self.indicators:
            fused = torch.cat([fused, mask.to(fused.dtype)], dim=1)  # (B, dim + M)
        return fused


class MeanFusion(SumFusion):
    """Mean of per-modality linear projections over the modalities present."""

    def reduce(self, projected: Tensor, mask: Tensor) -> Tensor:
        return masked_mean(projected, mask)  # (B, M, dim) -> (B, dim)


@hookimpl
def fusekit_fusions() -> dict[str, type]:
    return {"sum": SumFusion, "mean": MeanFusion}
