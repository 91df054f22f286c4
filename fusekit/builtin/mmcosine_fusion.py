"""MMCosine: a modality-wise cosine decision layer.

Xu, Feng, Zhang, Hu, "MMCosine: Multi-Modal Cosine Loss Towards Balanced Audio-Visual
Fine-Grained Learning", ICASSP 2023, arXiv:2303.05338. Official code: GeWu-Lab/MMCosine_ICASSP23
(``main_CD.py``: ``train_epoch``/``valid``, the ``args.mmcosine`` branch; ``--scaling`` default
10); also read: GeWu-Lab/BalanceBenchmark (``balancemm/trainer/MMCosine_trainer.py``). The
paper's text was not available to us; the equations are labelled (C1)-(C2), from the code.

The linear decision layer over concatenated features, W = [W_1 … W_M] ``(K, Σ D_m)``, is split
per modality and both features and class weights are L2-normalised per modality, so no modality
wins by the norm of its features:

    (C1)  z_m = s · (h_m / ‖h_m‖) · (W_m / ‖W_m‖_row)ᵀ            ``(B, K)``, cosines × s
          h_m ``(B, D_m)`` the (pooled) features, W_m ``(K, D_m)``, each class row normalised
    (C2)  z = Σ_m mask_m · z_m                                     ``(B, K)``, no bias

The task loss is the cross-entropy of z (so the "loss" of the title is this layer with the usual
criterion). In fusekit MMCosine replaces the decision layer, which is the fusion's job here, so
it is a fusion that emits logits (like ``late``): nothing else trains a separate head beside it,
and any weighting composes with it. The per-modality logits z_m are in
``output.diagnostics["mmcosine_unimodal"]`` (detached; the code's "approximate uni-modal
evaluation").

Choices: W_m is initialised like a ``torch.nn.Linear`` weight (the code's ``fc_out`` of concat
fusion); a zero-norm feature row (an absent modality, or an all-zero encoding) gives a zero cosine
(``F.normalize``'s ε, as the code), and absent modalities are left out of the sum (the code has no
missing modalities), so a sample with none present gets zeros. The supplementary NCE term of the
code (``--lam``, default 0) is not implemented. Classification only (cosine logits bounded by
s·M are not a regression output); regression is refused at ``build``.
"""

from __future__ import annotations

import math
from numbers import Real

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from fusekit.plugin import (
    BuildSpec,
    Fusion,
    FusionOutput,
    Interval,
    as_vector,
    hookimpl,
    vector_size,
)


def cosine_logits(features: Tensor, weight: Tensor, scaling: float) -> Tensor:
    """(C1): ``s · normalize(h) · normalize(W)ᵀ`` for ``(B, D)`` features, ``(K, D)`` weights."""
    return scaling * F.normalize(features, dim=1) @ F.normalize(weight, dim=1).T


class MMCosineFusion(Fusion):
    """MMCosine: per-modality cosine classifiers (normalised features and weights), summed."""

    supported_tasks = ("classification",)

    emits_logits = True
    parameter_constraints = {"scaling": [Interval(Real, 0, None, closed="neither")]}

    def __init__(self, scaling: float = 10.0) -> None:
        super().__init__()
        self.scaling = scaling

    def build(self, spec: BuildSpec) -> int:
        if spec.task != "classification":
            raise ValueError(
                f"mmcosine: needs a classification task (cosine logits), got {spec.task}"
            )
        self.weights = nn.ParameterDict()
        for name, shape in spec.feature_shapes.items():
            weight = nn.Parameter(torch.empty(spec.n_outputs, vector_size(shape)))
            nn.init.kaiming_uniform_(weight, a=math.sqrt(5))  # as torch.nn.Linear
            self.weights[name] = weight
        return spec.n_outputs

    def forward(self, features: dict[str, Tensor], mask: Tensor, output: FusionOutput) -> Tensor:
        per_modality = torch.stack(
            [
                cosine_logits(
                    as_vector(h, output.steps.get(m)), self.weights[m], float(self.scaling)
                )
                for m, h in features.items()
            ],
            dim=1,
        )  # (B, M, K)
        per_modality = per_modality * mask.to(per_modality.dtype).unsqueeze(-1)
        output.diagnostics["mmcosine_unimodal"] = {
            m: per_modality[:, position].detach() for position, m in enumerate(features)
        }
        return per_modality.sum(dim=1)  # (C2), (B, K)


@hookimpl
def fusekit_fusions() -> dict[str, type]:
    return {"mmcosine": MMCosineFusion}
