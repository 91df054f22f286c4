"""Gated Multimodal Unit (GMU).

Arevalo et al., "Gated Multimodal Units for Information Fusion", ICLR 2017 workshop, §3.1.
For two modalities the paper's unit is

    h_v = tanh(W_v x_v),  h_t = tanh(W_t x_t),  z = σ(W_z [x_v; x_t]),  h = z·h_v + (1 − z)·h_t

and it notes the extension to M modalities with one gate per modality. We use that form with the
gates normalised over the modalities present:

    h_m = tanh(W_m v_m + b_m)                                     (B, dim) per modality
    g_m = W_zm [v_1 ⊙ mask_1; ...; v_M ⊙ mask_M; mask] + b_zm      (B, dim) gate logits
    z_m = exp(g_m)·mask_m / Σ_k exp(g_k)·mask_k                   (softmax over present m)
    h = Σ_m z_m ⊙ h_m                                             (B, dim)

For M = 2 this is the paper's unit: softmax over two logits is σ(g_1 − g_2). The gate sees the
mask itself, so a zero-filled absent modality is not mistaken for a present all-zero one; absent
modalities get gate 0 and a sample with none present gets h = 0.
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
    ModalityProjection,
    as_vector,
    hookimpl,
    vector_size,
)


class GatedFusion(Fusion):
    """Gated Multimodal Unit: per-feature gates choose among tanh-projected modalities."""

    parameter_constraints = {"dim": [Interval(Integral, 1, None, closed="left")]}

    def __init__(self, dim: int = 64) -> None:
        super().__init__()
        self.dim = dim

    def build(self, spec: BuildSpec) -> int:
        dim = int(self.dim)
        self.projection = ModalityProjection(spec, dim, activation="tanh")
        gate_in = sum(vector_size(s) for s in spec.feature_shapes.values()) + len(spec.names)
        self.gate = nn.Linear(gate_in, len(spec.names) * dim)
        return dim

    def forward(self, features: dict[str, Tensor], mask: Tensor, output: FusionOutput) -> Tensor:
        weights = mask.to(next(iter(features.values())).dtype)  # (B, M)
        hidden = self.projection(features, mask, output.steps)  # (B, M, dim), absent = 0
        vectors = [
            as_vector(h, output.steps.get(m)) * weights[:, i : i + 1]
            for i, (m, h) in enumerate(features.items())
        ]  # each (B, D_m), absent rows exactly 0
        logits = self.gate(torch.cat([*vectors, weights], dim=1))  # (B, M·dim)
        logits = logits.view(hidden.shape)  # (B, M, dim)
        present = mask.unsqueeze(-1)  # (B, M, 1)
        logits = logits.masked_fill(~present, -1e9)  # finite: no NaN even if none is present
        gates = torch.softmax(logits, dim=1) * present  # (B, M, dim); none present -> 0
        output.diagnostics["gmu_gates"] = gates.detach()
        return (gates * hidden).sum(dim=1)  # (B, dim)


@hookimpl
def fusekit_fusions() -> dict[str, type]:
    return {"gated": GatedFusion}
