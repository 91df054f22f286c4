"""Small data and hand-built networks for the PMR / AGM / MMPareto / MLA tests.

Named apart from ``conftest`` so that it cannot be shadowed by another test folder's conftest.
"""

import numpy as np
import torch

from fusekit import Modalities
from fusekit.batch import ModalityBatch
from fusekit.builtin.concat_fusion import ConcatFusion
from fusekit.builtin.identity_backbone import IdentityBackbone
from fusekit.builtin.mlp_backbone import MLPBackbone
from fusekit.builtin.no_calibration import NoCalibration
from fusekit.network import FusionNetwork
from fusekit.output import LossContext, TrainingContext

BALANCING = ["pmr", "agm", "mmpareto", "mla"]


def make_data(n_modalities: int, n: int = 120, missing: float = 0.3, seed: int = 0):
    """``n_modalities`` informative vector/sequence modalities, each absent for ``missing`` rows."""
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


def build_network(weighting, shapes=None, n_outputs=3, fusion=None, identity=False):
    shapes = shapes or {"a": (4,), "b": (3,)}
    return FusionNetwork(
        input_shapes=shapes,
        backbones={m: IdentityBackbone() if identity else MLPBackbone(hidden=6) for m in shapes},
        calibration=NoCalibration(),
        fusion=fusion or ConcatFusion(),
        weighting=weighting,
        n_outputs=n_outputs,
        task="classification",
    )


def make_batch(shapes=None, n=8, mask=None, seed=0):
    shapes = shapes or {"a": (4,), "b": (3,)}
    generator = torch.Generator().manual_seed(seed)
    features = {m: torch.randn(n, *shape, generator=generator) for m, shape in shapes.items()}
    if mask is None:
        mask = torch.ones(n, len(shapes), dtype=torch.bool)
    return ModalityBatch(features, mask, index=torch.arange(n)).with_mask(mask)


def loss_context(network, batch, target, training=True):
    return LossContext(network=network, batch=batch, target=target, training=training)


def training_context(network, epoch=0, data=None):
    return TrainingContext(network=network, net=None, data=data, epoch=epoch)
