"""EmbraceNet.

Choi & Lee, "EmbraceNet: A robust deep learning architecture for multimodal classification",
Information Fusion 51 (2019), §3.

    docking:      d_m = ReLU(W_m v_m + b_m)                      (B, dim) per modality
    embracement:  r_i ~ Multinomial(1, p) for each feature i      one modality per feature
                  e_i = Σ_m r_{m,i} · d_{m,i}                     (B, dim)

with p uniform over the modalities present for the sample (the paper's rule for missing data:
p_m = 0 for an unavailable modality, renormalised). Each feature of e therefore comes from
exactly one present modality, which is what makes the network robust to missing ones.

Ambiguity, our pick: the paper (and the authors' code) also sample at test time, which makes
predictions random. Here evaluation uses the expectation of e under the same p,
E[e] = Σ_m p_m d_m (the mean of the present dockings), so ``predict`` is deterministic.
A sample with no modality present gets e = 0.
"""

from __future__ import annotations

from numbers import Integral

import torch
from torch import Tensor
from torch.nn import functional as F

from fusekit.plugin import BuildSpec, Fusion, FusionOutput, Interval, ModalityProjection, hookimpl


class EmbraceNetFusion(Fusion):
    """EmbraceNet: each fused feature is drawn from one present modality's docking layer."""

    parameter_constraints = {"dim": [Interval(Integral, 1, None, closed="left")]}

    def __init__(self, dim: int = 64) -> None:
        super().__init__()
        self.dim = dim

    def build(self, spec: BuildSpec) -> int:
        dim = int(self.dim)
        self.docking = ModalityProjection(spec, dim, activation="relu")
        return dim

    def forward(self, features: dict[str, Tensor], mask: Tensor, output: FusionOutput) -> Tensor:
        docked = self.docking(features, mask, output.steps)  # (B, M, dim), absent = 0
        present = mask.to(docked.dtype)  # (B, M)
        probabilities = present / present.sum(dim=1, keepdim=True).clamp(min=1.0)  # p, (B, M)
        if not self.training:
            return (probabilities.unsqueeze(-1) * docked).sum(dim=1)  # E[e], (B, dim)
        sampling = torch.where(present.sum(1, keepdim=True) > 0, probabilities, 1.0)  # valid rows
        chosen = torch.multinomial(sampling, docked.shape[2], replacement=True)  # (B, dim)
        selection = F.one_hot(chosen, docked.shape[1]).transpose(1, 2).to(docked.dtype)
        output.diagnostics["embrace_selection"] = selection.detach()  # r, (B, M, dim)
        return (selection * docked).sum(dim=1)  # e, (B, dim); absent d_m = 0


@hookimpl
def fusekit_fusions() -> dict[str, type]:
    return {"embracenet": EmbraceNetFusion}
