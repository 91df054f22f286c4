"""Maxout fusion: a worked example of a third-party fusekit plugin.

Each modality vector v_m ``(B, D_m)`` is projected to a shared width, p_m = W_m v_m + b_m
``(B, width)``, and the fused vector is the element-wise maximum over the modalities present for
each sample: z_j = max_{m: mask_m = 1} p_{m,j} ``(B, width)``. A sample with no modality present
gets zeros. (Goodfellow et al., "Maxout Networks", ICML 2013, applied across modalities.)
"""

from __future__ import annotations

from numbers import Integral

import torch
from torch import Tensor, nn

from fusekit.plugin import (
    BuildSpec,
    Fusion,
    FusionOutput,
    Interval,
    as_vector,
    hookimpl,
    vector_size,
)


class MaxoutFusion(Fusion):
    """Element-wise maximum of per-modality projections over the present modalities."""

    #: Checked by the engine when it resolves the fusion, the error naming it and the parameter.
    parameter_constraints = {"width": [Interval(Integral, 1, None, closed="left")]}

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        self.width = width

    def build(self, spec: BuildSpec) -> int:
        self.projections = nn.ModuleDict(
            {
                name: nn.Linear(vector_size(shape), self.width)
                for name, shape in spec.feature_shapes.items()
            }
        )
        return self.width

    def forward(self, features: dict[str, Tensor], mask: Tensor, output: FusionOutput) -> Tensor:
        projected = torch.stack(
            [self.projections[m](as_vector(h, output.steps.get(m))) for m, h in features.items()],
            dim=1,
        )  # (B, M, width)
        absent = ~mask.unsqueeze(-1)  # (B, M, 1)
        fused = projected.masked_fill(absent, float("-inf")).amax(dim=1)  # (B, width)
        return torch.where(mask.any(dim=1, keepdim=True), fused, torch.zeros_like(fused))


@hookimpl
def fusekit_fusions() -> dict[str, type]:
    return {"maxout": MaxoutFusion}
