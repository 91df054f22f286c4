"""Concatenation (early / feature-level) fusion.

z = [mask_1·v_1; mask_2·v_2; ...; mask_M·v_M] with v_m = as_vector(h_m): ``(B, Σ_m D_m)``. An
absent modality contributes zeros (its features are multiplied by its mask column, whatever
values they hold); ``indicators=True`` also appends the ``(B, M)`` mask so the head can tell
"absent" from "all-zero features" (after standardisation zero is the training mean).
"""

from __future__ import annotations

import torch
from torch import Tensor

from fusekit.plugin import BuildSpec, Fusion, FusionOutput, as_vector, hookimpl, vector_size


class ConcatFusion(Fusion):
    """Concatenate the modality vectors (early fusion)."""

    concatenates = True
    parameter_constraints = {"indicators": ["boolean"]}

    def __init__(self, indicators: bool = False) -> None:
        super().__init__()
        self.indicators = indicators

    def build(self, spec: BuildSpec) -> int:
        width = sum(vector_size(shape) for shape in spec.feature_shapes.values())
        return width + (len(spec.names) if self.indicators else 0)

    def forward(self, features: dict[str, Tensor], mask: Tensor, output: FusionOutput) -> Tensor:
        parts = [as_vector(h, output.steps.get(m)) for m, h in features.items()]  # (B, D_m)
        if not output.all_present:
            weights = mask.to(parts[0].dtype)  # (B, M)
            parts = [part * weights[:, i : i + 1] for i, part in enumerate(parts)]
        if self.indicators:
            parts.append(mask.to(parts[0].dtype))  # (B, M)
        return torch.cat(parts, dim=1)  # (B, Σ D_m [+ M])


@hookimpl
def fusekit_fusions() -> dict[str, type]:
    return {"concat": ConcatFusion}
