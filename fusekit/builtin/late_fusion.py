"""Late (decision-level) fusion.

Each modality has its own linear head, z_m = W_m v_m + b_m ``(B, K)``; the fused logits are the
weighted mean over the modalities present for each sample,
z = Σ_m a_m·mask_m·z_m / Σ_m a_m·mask_m, with a_m = 1 (``weights="mean"``) or
a = softmax(θ) learned (``weights="learned"``). A sample with no modality present gets zeros.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fusekit.plugin import (
    BuildSpec,
    Fusion,
    FusionOutput,
    StrOptions,
    as_vector,
    hookimpl,
    vector_size,
)


class LateFusion(Fusion):
    """Average per-modality predictions over the present modalities (decision-level fusion)."""

    emits_logits = True
    parameter_constraints = {"weights": [StrOptions({"mean", "learned"})]}

    def __init__(self, weights: str = "mean") -> None:
        super().__init__()
        self.weights = weights

    def build(self, spec: BuildSpec) -> int:
        self.heads = nn.ModuleDict(
            {
                name: nn.Linear(vector_size(shape), spec.n_outputs)
                for name, shape in spec.feature_shapes.items()
            }
        )
        self.weight_logits = nn.Parameter(
            torch.zeros(len(spec.names)), requires_grad=self.weights == "learned"
        )
        return spec.n_outputs

    def forward(self, features: dict[str, Tensor], mask: Tensor, output: FusionOutput) -> Tensor:
        logits = torch.stack(
            [self.heads[m](as_vector(h, output.steps.get(m))) for m, h in features.items()],
            dim=1,
        )  # (B, M, K)
        weights = torch.softmax(self.weight_logits, dim=0) * mask.to(logits.dtype)  # (B, M)
        weights = weights / weights.sum(dim=1, keepdim=True).clamp(min=1e-12)
        output.diagnostics["late_weights"] = weights.detach()
        return (logits * weights.unsqueeze(-1)).sum(dim=1)  # (B, K)


@hookimpl
def fusekit_fusions() -> dict[str, type]:
    return {"late": LateFusion}
