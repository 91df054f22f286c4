"""Small data and hand-built networks for unit tests of plugins (used by fusekit's own tests).

``build_network(weighting)`` wires a component into a tiny ``FusionNetwork`` (MLP or identity
backbones, no calibration, concat fusion by default) so a test can call ``forward``, ``loss`` or a
hook directly; ``make_batch`` and the context helpers supply the other arguments.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from fusekit.builtin.concat_fusion import ConcatFusion
from fusekit.builtin.identity_backbone import IdentityBackbone
from fusekit.builtin.mlp_backbone import MLPBackbone
from fusekit.builtin.no_calibration import NoCalibration
from fusekit.builtin.no_weighting import NoWeighting
from fusekit.data import Modalities
from fusekit.engine.network import FusionNetwork
from fusekit.plugin import (
    Fusion,
    LossContext,
    ModalityBatch,
    TrainingContext,
    TrainingData,
    Weighting,
)

DEFAULT_SHAPES = {"a": (4,), "b": (3,)}


def make_data(
    n_modalities: int, n: int = 120, missing: float = 0.3, seed: int = 0
) -> tuple[Modalities, np.ndarray]:
    """Up to three informative modalities (a vector, a sequence, a vector), 3 classes; each
    modality is absent (all-NaN rows) for about ``missing`` of the rows."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    blocks = {
        "a": rng.normal(size=(n, 5)) + y[:, None],
        "b": rng.normal(size=(n, 4, 3)) + 0.8 * y[:, None, None],
        "c": rng.normal(size=(n, 3)) - 0.5 * y[:, None],
    }
    blocks = dict(list(blocks.items())[:n_modalities])
    for value in blocks.values():
        value[rng.random(n) < missing] = np.nan
    return Modalities(blocks), y


def build_network(
    weighting: Weighting | None = None,
    shapes: dict[str, tuple[int, ...]] | None = None,
    n_outputs: int = 3,
    fusion: Fusion | None = None,
    task: str = "classification",
    identity: bool = False,
) -> FusionNetwork:
    """A tiny network around ``weighting`` / ``fusion`` (MLP(6) or identity backbones)."""
    shapes = shapes or DEFAULT_SHAPES
    return FusionNetwork(
        input_shapes=shapes,
        backbones={m: IdentityBackbone() if identity else MLPBackbone(hidden=6) for m in shapes},
        calibration=NoCalibration(),
        fusion=fusion or ConcatFusion(),
        weighting=weighting or NoWeighting(),
        n_outputs=n_outputs,
        task=task,
    )


def make_batch(
    shapes: dict[str, tuple[int, ...]] | None = None,
    n: int = 8,
    mask: torch.Tensor | None = None,
    seed: int = 0,
    index: bool = True,
) -> ModalityBatch:
    """Random features for ``shapes``; absent rows (``mask`` False) zeroed."""
    shapes = shapes or DEFAULT_SHAPES
    generator = torch.Generator().manual_seed(seed)
    features = {m: torch.randn(n, *shape, generator=generator) for m, shape in shapes.items()}
    if mask is None:
        mask = torch.ones(n, len(shapes), dtype=torch.bool)
    batch = ModalityBatch(features, mask, index=torch.arange(n) if index else None)
    return batch.with_mask(mask)


def loss_context(
    network: FusionNetwork, batch: ModalityBatch, target: torch.Tensor, training: bool = True
) -> LossContext:
    return LossContext(network=network, batch=batch, target=target, training=training)


def training_context(
    network: FusionNetwork, epoch: int = 0, data: TrainingData | None = None, **extra: Any
) -> TrainingContext:
    return TrainingContext(network=network, loop=None, data=data, epoch=epoch, **extra)
