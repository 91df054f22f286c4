"""Probabilistic-embedding (data-uncertainty) weighting.

Chang, Lan, Yao, Wei, "Data Uncertainty Learning in Face Recognition", CVPR 2020 (DUL), the
"probabilistic embedding (PE)" uncertainty baseline of UDML's Figure 1.

Each modality's vector v_m = as_vector(h_m) ``(B, D_m)`` is the mean μ_m of a Gaussian embedding;
a linear head predicts its log-variance, log σ²_m = W_m v_m + c_m ``(B, D_m)``. In training the
embedding is sampled by the reparameterisation trick and regularised towards N(0, I):

    (2)  s_m = μ_m + σ_m ⊙ ε,  ε ~ N(0, I)                 (training only; μ_m at prediction)
    (4)  L_KL = λ · mean_{i present} ½ Σ_d (μ² + σ² − log σ² − 1)

The uncertainty of modality m is u_m = mean_d σ²_m ``(B,)``, and modalities are weighted by
inverse variance over the present ones (our pick, the usual precision weighting):

         a_im = mask_im · u_im⁻¹ / Σ_j mask_ij · u_ij⁻¹,     h'_im = n_i · a_im · s_im

(weights detached, n_i = present modalities, as in ``static``). Sequence features ``(B, T, D)`` get
one σ per sample shared by all steps; image features are handled flattened. Absent modalities get
weight 0 and no KL term.
"""

from __future__ import annotations

from numbers import Real

import torch
from torch import Tensor, nn

from fusekit.plugin import (
    BuildSpec,
    FusionOutput,
    Interval,
    LossContext,
    Weighting,
    as_vector,
    hookimpl,
    present_mean,
    present_softmax,
    scale_features,
    vector_size,
)


def _broadcast_like(vector: Tensor, like: Tensor) -> Tensor:
    """Per-sample ``(B, D)`` values shaped to act on ``like``: vector, sequence or image."""
    if like.dim() == 3:
        return vector.unsqueeze(1)  # (B, 1, D)
    return vector.reshape(like.shape)


class ProbEmbeddingWeighting(Weighting):
    """Gaussian embeddings per modality; inverse-variance modality weights (DUL uncertainty)."""

    #: Per-sample weights, sampling noise and loss means: nothing to agree across processes.
    data_parallel_safe = True
    parameter_constraints = {
        "kl_weight": [Interval(Real, 0, None, closed="left")],
        "sample": ["boolean"],
    }

    def __init__(self, kl_weight: float = 0.01, sample: bool = True) -> None:
        super().__init__()
        self.kl_weight = kl_weight
        self.sample = sample

    def build(self, spec: BuildSpec) -> None:
        self.names = spec.names
        self.log_variance_heads = nn.ModuleDict(
            {
                name: nn.Linear(vector_size(shape), vector_size(shape))
                for name, shape in spec.feature_shapes.items()
            }
        )
        for head in self.log_variance_heads.values():  # start at σ² = e⁻⁴: small noise
            nn.init.zeros_(head.weight)
            nn.init.constant_(head.bias, -4.0)

    def reweight(
        self, features: dict[str, Tensor], mask: Tensor, output: FusionOutput
    ) -> dict[str, Tensor]:
        sampled, uncertainty, kl = {}, [], []
        for name in self.names:
            h = features[name]
            mean = as_vector(h, output.steps.get(name))  # (B, D)
            # float32 (mixed precision): exp of a log-variance and the KL need its range
            log_variance = self.log_variance_heads[name](mean).float().clamp(-10.0, 10.0)  # (B, D)
            std = torch.exp(0.5 * log_variance)
            if self.training and self.sample:
                noise = _broadcast_like(std, h) * torch.randn_like(h)
                sampled[name] = h + noise  # Eq. (2)
            else:
                sampled[name] = h
            uncertainty.append(log_variance.exp().mean(dim=1))  # (B,)
            kl.append(0.5 * (mean**2 + log_variance.exp() - log_variance - 1).sum(dim=1))
        uncertainty_t = torch.stack(uncertainty, dim=1)  # (B, M)
        weights = present_softmax(-torch.log(uncertainty_t).detach(), mask)  # ∝ 1 / u
        output.modality_weights = weights
        output.diagnostics["pe_variance"] = uncertainty_t.detach()
        output.diagnostics["pe_kl"] = torch.stack(kl, dim=1)  # (B, M)
        return scale_features(sampled, weights, mask)

    def loss_terms(self, output: FusionOutput, ctx: LossContext) -> dict[str, Tensor]:
        kl = output.diagnostics.get("pe_kl")
        if kl is None:
            return {}
        total = sum(
            present_mean(kl[:, position], output.mask[:, position])
            for position in range(len(self.names))
        )
        return {"pe_kl": float(self.kl_weight) * total}


@hookimpl
def fusekit_weightings() -> dict[str, type]:
    return {"prob_embedding": ProbEmbeddingWeighting}
