"""Low-rank Multimodal Fusion (LMF).

Liu et al., "Efficient Low-rank Multimodal Fusion with Modality-Specific Factors", ACL 2018, §3.
TFN's output h = W · vec(Z) with Z = ⊗_m z_m, z_m = [v_m; 1], is computed without forming Z by
a rank-r decomposition of the weight tensor W = Σ_{i=1}^r ⊗_m w_m^(i):

    h = Λ_{m=1}^M [ Σ_{i=1}^r w_m^(i) · z_m ]     (Λ: element-wise product over modalities)

implemented as in the authors' code: per modality and rank a factor W_m ``(r, d_m + 1, dim)``,
the product over modalities kept per rank ``(B, r, dim)``, then a learned weighted sum over the
r ranks plus a bias ``(B, dim)``. Cost is linear in M instead of exponential.

Mask rule (same as TFN): an absent modality's vector is zeroed, so z_m = [0; 1] and its factor
reduces to the constant row w_m^(i)[-1]; the output still does not depend on its values.
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


class LowRankFusion(Fusion):
    """Low-rank tensor fusion with modality-specific factors (LMF), rank ``rank``."""

    parameter_constraints = {
        "rank": [Interval(Integral, 1, None, closed="left")],
        "dim": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, rank: int = 4, dim: int = 32) -> None:
        super().__init__()
        self.rank = rank
        self.dim = dim

    def build(self, spec: BuildSpec) -> int:
        rank, dim = int(self.rank), int(self.dim)
        self.factors = nn.ParameterDict(
            {
                m: nn.Parameter(nn.init.xavier_normal_(torch.empty(rank, vector_size(s) + 1, dim)))
                for m, s in spec.feature_shapes.items()
            }
        )
        self.rank_weights = nn.Parameter(nn.init.xavier_normal_(torch.empty(1, rank)))
        self.bias = nn.Parameter(torch.zeros(dim))
        return dim

    def forward(self, features: dict[str, Tensor], mask: Tensor, output: FusionOutput) -> Tensor:
        product: Tensor | None = None
        for position, (m, h) in enumerate(features.items()):
            vector = as_vector(h, output.steps.get(m)) * mask[:, position : position + 1]
            extended = torch.cat([vector, vector.new_ones(vector.shape[0], 1)], dim=1)
            # z_m (B, d_m + 1) · W_m (r, d_m + 1, dim) -> (B, r, dim)
            per_rank = torch.einsum("bd,rdo->bro", extended, self.factors[m])
            product = per_rank if product is None else product * per_rank  # Λ over modalities
        assert product is not None
        # Σ_i λ_i · (B, r, dim) -> (B, dim)
        return torch.einsum("r,bro->bo", self.rank_weights[0], product) + self.bias


@hookimpl
def fusekit_fusions() -> dict[str, type]:
    return {"lowrank": LowRankFusion}
