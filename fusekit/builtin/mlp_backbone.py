"""Multi-layer perceptron backbone.

Vectors ``(B, d) -> (B, hidden)``; sequences ``(B, T, d) -> (B, T, hidden)`` (applied per step);
images ``(B, C, H, W)`` are flattened first, ``-> (B, hidden)``. Each layer is
Linear -> [LayerNorm | BatchNorm] -> activation -> Dropout.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

from torch import Tensor, nn

from fusekit.plugin import Backbone, Interval, Shape, StrOptions, hookimpl

_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "silu": nn.SiLU}


class _BatchNormLastAxis(nn.BatchNorm1d):
    """BatchNorm over the last axis of ``(B, D)`` or ``(B, T, D)``."""

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 3:
            return super().forward(x.transpose(1, 2)).transpose(1, 2)
        return super().forward(x)


class MLPBackbone(Backbone):
    """Multi-layer perceptron per modality (``hidden``, ``depth``, ``dropout``, ``norm``)."""

    parameter_constraints = {
        "hidden": [Interval(Integral, 1, None, closed="left")],
        "depth": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "norm": [StrOptions({"layer", "batch"}), None],
        "activation": [StrOptions(set(_ACTIVATIONS))],
    }
    #: A sequence ``(T, d)`` is encoded step by step (images are flattened, but are no sequences).
    accepts_any_length = True

    def __init__(
        self,
        hidden: int = 64,
        depth: int = 1,
        dropout: float = 0.0,
        norm: str | None = None,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        self.hidden = hidden
        self.depth = depth
        self.dropout = dropout
        self.norm = norm
        self.activation = activation

    def build(self, input_shape: Shape) -> Shape:
        hidden, depth = int(self.hidden), int(self.depth)  # a numpy integer as a plain int
        self._flatten = len(input_shape) > 2
        width = math.prod(input_shape) if self._flatten else input_shape[-1]
        layers: list[nn.Module] = []
        for _ in range(depth):
            layers.append(nn.Linear(width, hidden))
            if self.norm == "layer":
                layers.append(nn.LayerNorm(hidden))
            elif self.norm == "batch":
                layers.append(_BatchNormLastAxis(hidden))
            layers.append(_ACTIVATIONS[self.activation]())
            if self.dropout:
                layers.append(nn.Dropout(float(self.dropout)))
            width = hidden
        self.layers = nn.Sequential(*layers)
        if len(input_shape) == 2:
            return (input_shape[0], width)
        return (width,)

    def forward(self, x: Tensor) -> Tensor:
        if self._flatten:
            x = x.flatten(start_dim=1)  # (B, C, H, W) -> (B, C*H*W)
        return self.layers(x)


@hookimpl
def fusekit_backbones() -> dict[str, type]:
    return {"mlp": MLPBackbone}
