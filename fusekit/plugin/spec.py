"""What a component knows when it builds: :class:`BuildSpec`, and the shape vocabulary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Shape = tuple[int, ...]
INPUT_KINDS = {1: "vector", 2: "sequence", 3: "image"}  # float blocks by rank; raw kinds: .raw


def input_kind(shape: Shape) -> str:
    """``"vector"``, ``"sequence"`` or ``"image"`` for a per-sample shape."""
    return INPUT_KINDS[len(shape)]


@dataclass(frozen=True)
class BuildSpec:
    """What a component knows when it builds its layers.

    Attributes:
        names: modality names, in mask-column order.
        input_shapes: ``{m: shape}`` of the raw inputs without the batch axis.
        feature_shapes: ``{m: shape}`` of the backbone outputs without the batch axis.
        n_outputs: classes (classification) or targets (regression).
        task: ``"classification"`` or ``"regression"``.
    """

    names: tuple[str, ...]
    input_shapes: dict[str, Shape]
    feature_shapes: dict[str, Shape]
    n_outputs: int
    task: Literal["classification", "regression"]
