"""Identity backbone: the modality's features pass unchanged (``output_shape == input_shape``)."""

from __future__ import annotations

from torch import Tensor

from fusekit.plugin import Backbone, Shape, hookimpl


class IdentityBackbone(Backbone):
    """Pass features through unchanged (pre-extracted features)."""

    accepts_any_length = True  # any shape passes unchanged

    def build(self, input_shape: Shape) -> Shape:
        return input_shape

    def forward(self, x: Tensor) -> Tensor:  # (B, *shape) -> (B, *shape)
        return x


@hookimpl
def fusekit_backbones() -> dict[str, type]:
    return {"identity": IdentityBackbone}
