"""Mean of projections over the present modalities.

u_m = act(W_m v_m + b_m) ``(B, dim)``; z = Σ_m mask_m · u_m / max(1, Σ_m mask_m) ``(B, dim)``.
Unlike the sum, the scale of z does not depend on how many modalities a sample has; a sample
with none present gets zeros. ``indicators=True`` appends the ``(B, M)`` mask.
"""

from __future__ import annotations

from torch import Tensor

from fusekit.builtin.sum_fusion import SumFusion
from fusekit.plugin import hookimpl, masked_mean


class MeanFusion(SumFusion):
    """Mean of per-modality linear projections over the modalities present."""

    _label = "mean fusion"

    def reduce(self, projected: Tensor, mask: Tensor) -> Tensor:
        return masked_mean(projected, mask)  # (B, M, dim) -> (B, dim)


@hookimpl
def fusekit_fusions() -> dict[str, type]:
    return {"mean": MeanFusion}
