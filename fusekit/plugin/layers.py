"""Layers shared by methods.

- :class:`ModalityProjection`: one ``Linear(D_m, dim)`` per modality on the pooled vector,
  ``{m: (B, *shape_m)} -> (B, M, dim)``, with absent rows set to zero *after* the projection (so
  the bias of an absent modality never reaches the fusion).
- :func:`sinusoidal_positions`: the fixed positional encoding of Vaswani et al. (2017), Eq. in §3.5.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from fusekit.plugin.nn import as_vector, vector_size
from fusekit.plugin.spec import BuildSpec

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "none": nn.Identity,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
}


class ModalityProjection(nn.Module):
    """``u_m = act(W_m v_m + b_m)`` for every modality, absent rows zeroed: ``(B, M, dim)``."""

    def __init__(self, spec: BuildSpec, dim: int, activation: str = "none") -> None:
        super().__init__()
        self.layers = nn.ModuleDict(
            {m: nn.Linear(vector_size(shape), dim) for m, shape in spec.feature_shapes.items()}
        )
        self.activation = ACTIVATIONS[activation]()

    def forward(
        self, features: dict[str, Tensor], mask: Tensor, steps: dict[str, Tensor]
    ) -> Tensor:
        projected = torch.stack(
            [
                self.activation(self.layers[m](as_vector(h, steps.get(m))))  # (B, dim)
                for m, h in features.items()
            ],
            dim=1,
        )  # (B, M, dim)
        return projected * mask.to(projected.dtype).unsqueeze(-1)  # absent rows -> 0


def sinusoidal_positions(length: int, dim: int, device: torch.device | None = None) -> Tensor:
    """``PE(t, 2i) = sin(t / 10000^(2i/dim))``, ``PE(t, 2i+1) = cos(...)``: ``(length, dim)``."""
    position = torch.arange(length, dtype=torch.float32, device=device).unsqueeze(1)  # (T, 1)
    rate = torch.exp(
        torch.arange(0, dim, 2, dtype=torch.float32, device=device) * (-math.log(10000.0) / dim)
    )  # (ceil(dim/2),)
    table = torch.zeros(length, dim, device=device)
    table[:, 0::2] = torch.sin(position * rate)
    table[:, 1::2] = torch.cos(position * rate)[:, : dim // 2]
    return table
