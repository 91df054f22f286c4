"""Static (global, learned) modality weights.

One learned logit θ_m per modality, shared by all samples. For sample i the weights are the
softmax over its present modalities,

    a_im = mask_im · exp(θ_m) / Σ_j mask_ij · exp(θ_j),        a_i ``(M,)``, Σ_m a_im = 1,

and fusion receives h'_im = n_i · a_im · h_im with n_i the number of present modalities, so equal
weights leave the features unchanged (our pick: the scale n_i keeps the fused input's magnitude
independent of M). ``learnable=False`` keeps θ fixed at ``init`` (``{modality: logit}``, 0 when not
given). The helpers here are shared by the per-sample weightings (energy, prob_embedding).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from fusekit.plugin import (
    BuildSpec,
    FusionOutput,
    Weighting,
    hookimpl,
    present_softmax,
    scale_features,
)


class StaticWeighting(Weighting):
    """Learned global modality weights, softmax-normalised over the present modalities."""

    #: Learned parameters only.
    data_parallel_safe = True
    #: ``init``'s modality names and numbers are checked in ``build``, against the data.
    parameter_constraints = {"learnable": ["boolean"], "init": [Mapping, None]}

    def __init__(self, learnable: bool = True, init: Mapping[str, float] | None = None) -> None:
        super().__init__()
        self.learnable = learnable
        self.init = init

    def build(self, spec: BuildSpec) -> None:
        init = dict(self.init or {})
        unknown = [name for name in init if name not in spec.names]
        if unknown:
            raise ValueError(
                f"static: init names modalities {unknown}, but the data has {list(spec.names)}"
            )
        logits = torch.tensor([float(init.get(name, 0.0)) for name in spec.names])  # (M,)
        self.weight_logits = nn.Parameter(logits, requires_grad=bool(self.learnable))

    def reweight(
        self, features: dict[str, Tensor], mask: Tensor, output: FusionOutput
    ) -> dict[str, Tensor]:
        scores = self.weight_logits.unsqueeze(0).expand(mask.shape[0], -1)  # (B, M)
        weights = present_softmax(scores, mask)  # (B, M)
        output.modality_weights = weights
        return scale_features(features, weights, mask)


@hookimpl
def fusekit_weightings() -> dict[str, type]:
    return {"static": StaticWeighting}
