"""Small data and hand-built networks for unit tests of plugins (used by fusekit's own tests).

``make_joint_task(n, seed)`` is data whose target needs every modality (a model that ignores one
is capped well below one that uses all). ``build_network(weighting)`` wires a component into a
tiny ``FusionNetwork`` (MLP or identity backbones, no calibration, concat fusion by default) so a
test can call ``forward``, ``loss`` or a hook directly; ``make_batch`` and the context helpers
supply the other arguments. Networks are built through the engine's door
(:func:`fusekit.engine.assemble.build_network`), as the estimator builds them, with the
instances handed in used as they are (not copied).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from fusekit.builtin.identity_backbone import IdentityBackbone
from fusekit.builtin.mlp_backbone import MLPBackbone
from fusekit.data import Modalities
from fusekit.engine.assemble import Choices
from fusekit.engine.assemble import build_network as assemble_network
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
JOINT_SHAPES = {"a": (5,), "b": (4, 3), "c": (3,)}


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


def make_joint_task(
    n: int,
    seed: int = 0,
    *,
    n_modalities: int = 2,
    task: str = "classification",
    shapes: dict[str, tuple[int, ...]] | None = None,
    separation: float = 4.0,
    noise: float = 0.2,
    missing: float = 0.0,
) -> tuple[Modalities, np.ndarray]:
    """``n`` rows whose target needs every modality; ``shapes`` names them (default a vector,
    a ``(4, 3)`` sequence, a vector, the first ``n_modalities``).

    Classification: modality ``m`` (the m-th, from 0) carries one bit ``c_m`` in {0, 1} as two
    Gaussian clusters ``±separation/2`` apart along a random unit direction of its last axis (the
    same on every step of a sequence), unit noise; ``y = Σ_m c_m·2^m``, i.e. ``2^M`` classes
    (chance ``2^-M``). Each bit is independent of every other modality, so any model that
    ignores a modality is right at most half the time (population Bayes cap ``1/2``, whatever
    it does with the others), while one that uses all is right with probability
    ``Φ(separation/2)^M`` for vectors (0.955 for the default and ``M = 2``; sequences repeat the
    signal on every step, so more). Keep to the fusion's reach: with concat fusion and a linear
    head the logits are a sum of per-modality terms, which this code (unlike a parity of the
    bits) can express.

    Regression: modality ``m`` carries ``z_m ~ N(0, 1)`` along a random unit direction, plus
    noise of standard deviation ``noise``; ``y = Σ_m φ(z_m)`` with ``φ(z) = (|z| - E|z|) /
    sd|z|`` (unit variance, uncorrelated with ``z``). A model without modality ``m`` explains at
    most ``1 - 1/M`` of the variance (R² ≤ 0.5 for ``M = 2``), and a model linear in the
    features explains none of it (``cov(z, |z|) = 0``): R² near 1 needs every modality and a
    nonlinearity.

    ``missing`` makes each modality absent (all-NaN rows) on about that fraction of the rows.
    """
    if task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    names = list((shapes or JOINT_SHAPES).items())
    if not 1 <= n_modalities <= len(names):
        raise ValueError(f"n_modalities must be in 1..{len(names)} for shapes {names}")
    rng = np.random.default_rng(seed)
    blocks, y = {}, np.zeros(n)
    for m, (name, shape) in enumerate(names[:n_modalities]):
        direction = rng.normal(size=shape[-1])
        direction /= np.linalg.norm(direction)
        extra = (slice(None),) + (None,) * len(shape)  # (n,) -> (n, 1, ..., 1)
        if task == "classification":
            bit = rng.integers(0, 2, n)
            blocks[name] = (
                rng.normal(size=(n, *shape)) + ((bit - 0.5) * separation)[extra] * direction
            )
            y += bit * 2**m
        else:
            latent = rng.normal(size=n)
            blocks[name] = noise * rng.normal(size=(n, *shape)) + latent[extra] * direction
            y += (np.abs(latent) - np.sqrt(2 / np.pi)) / np.sqrt(1 - 2 / np.pi)
    for value in blocks.values():
        value[rng.random(n) < missing] = np.nan
    return Modalities(blocks), (y.astype(int) if task == "classification" else y)


def make_joint_split(
    n_train: int, n_test: int, seed: int = 0, *, missing: float = 0.0, **task: Any
) -> tuple[Modalities, np.ndarray, Modalities, np.ndarray]:
    """``make_joint_task`` rows split into training rows (each modality absent on about
    ``missing`` of them) and complete held-out rows: ``(X_train, y_train, X_test, y_test)``.

    Score on the held-out rows: on its own training rows a model that ignores a modality can
    fit noise above the 1/2 cap (about 0.6 with 100 rows per cluster in 5 dimensions).
    """
    X, y = make_joint_task(n_train + n_test, seed, **task)
    train = Modalities({name: value[:n_train].copy() for name, value in X.items()})
    rng = np.random.default_rng([seed, 1])
    for value in train.values():
        value[rng.random(n_train) < missing] = np.nan
    return train, y[:n_train], X[n_train:], y[n_train:]


def build_network(
    weighting: Weighting | None = None,
    shapes: dict[str, tuple[int, ...]] | None = None,
    n_outputs: int = 3,
    fusion: Fusion | None = None,
    task: str = "classification",
    identity: bool = False,
) -> FusionNetwork:
    """A tiny network around ``weighting`` / ``fusion`` (MLP(6) or identity backbones; a
    weighting may be a list), the instances given used as they are."""
    shapes = shapes or DEFAULT_SHAPES
    defaults = Choices()  # each kind's default (fusekit.plugin.KINDS)
    choices = Choices(
        backbone={m: IdentityBackbone() if identity else MLPBackbone(hidden=6) for m in shapes},
        fusion=fusion or defaults.fusion,
        weighting=weighting or defaults.weighting,
        fresh=False,
    )
    return assemble_network(choices, shapes, n_outputs, task)


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
