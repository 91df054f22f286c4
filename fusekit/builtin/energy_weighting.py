"""Energy-score uncertainty weighting.

Energy score: Liu, Wang, Owens, Li, "Energy-based Out-of-distribution Detection", NeurIPS 2020,
arXiv:2010.03759. Used as a per-modality uncertainty measure by QMF (Zhang et al., ICML 2023) and
as the "energy" baseline of UDML's Figure 1.

With each modality's own head giving z_m ``(B, K)``:

    (1)  E_m(x) = −T · log Σ_k exp(z_m,k / T)                  ``(B,)``, lower = more confident
         a_im = mask_im · exp(−E_im / τ) / Σ_j mask_ij · exp(−E_ij / τ)       ``(B, M)``
         h'_im = n_i · a_im · h_im                             (n_i present modalities of sample i)

The weights are a softmax over the present modalities of the negative energy (temperature
``weight_temperature`` τ), detached (``detach=True``: the uncertainty measure weights, it is not
trained through the weights) and applied to the calibrated features before fusion, with the same
n_i scale as ``static`` (equal weights leave the features unchanged). The heads are trained with
``aux_weight`` · Σ_m CE(z_m) over present samples, so the energy is that of a real classifier.
When a pass has no unimodal logits (another plugin's extra ``network.fuse``) weights are equal.
"""

from __future__ import annotations

from numbers import Real

import torch
from torch import Tensor

from fusekit.plugin import (
    BuildSpec,
    FusionOutput,
    Interval,
    LossContext,
    Weighting,
    hookimpl,
    present_softmax,
    scale_features,
    unimodal_losses,
)


def energy_score(logits: Tensor, temperature: float = 1.0) -> Tensor:
    """Eq. (1): ``(B, K)`` logits -> ``(B,)`` energy −T·logsumexp(z / T)."""
    # float32 under mixed precision: log-sum-exp of bfloat16 logits loses the energy's digits
    return -temperature * torch.logsumexp(logits.float() / temperature, dim=1)


class EnergyWeighting(Weighting):
    """Per-sample modality weights from the energy score of each modality's own head."""

    supported_tasks = ("classification",)

    #: Per-sample weights and per-batch loss means: nothing to agree across processes.
    data_parallel_safe = True

    needs_unimodal_heads = True

    parameter_constraints = {
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "weight_temperature": [Interval(Real, 0, None, closed="neither")],
        "aux_weight": [Interval(Real, 0, None, closed="left")],
        "detach": ["boolean"],
    }

    def __init__(
        self,
        temperature: float = 1.0,
        weight_temperature: float = 1.0,
        aux_weight: float = 1.0,
        detach: bool = True,
    ) -> None:
        super().__init__()
        self.temperature = temperature
        self.weight_temperature = weight_temperature
        self.aux_weight = aux_weight
        self.detach = detach

    def build(self, spec: BuildSpec) -> None:
        if spec.task != "classification":
            raise ValueError(f"energy: needs a classification task, got {spec.task}")
        self.names = spec.names

    def reweight(
        self, features: dict[str, Tensor], mask: Tensor, output: FusionOutput
    ) -> dict[str, Tensor]:
        if output.unimodal_logits is None:
            return features
        energies = torch.stack(
            [
                energy_score(output.unimodal_logits[name], float(self.temperature))
                for name in self.names
            ],
            dim=1,
        )  # (B, M)
        if self.detach:
            energies = energies.detach()
        weights = present_softmax(-energies / float(self.weight_temperature), mask)  # (B, M)
        output.modality_weights = weights
        output.diagnostics["energy"] = energies.detach()
        return scale_features(features, weights, mask)

    def loss_terms(self, output: FusionOutput, ctx: LossContext) -> dict[str, Tensor]:
        return {
            "energy_heads": float(self.aux_weight) * unimodal_losses(output, ctx, "energy").sum()
        }


@hookimpl
def fusekit_weightings() -> dict[str, type]:
    return {"energy": EnergyWeighting}
