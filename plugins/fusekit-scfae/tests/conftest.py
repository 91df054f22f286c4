"""SCFAE tests: one torch thread, and a small two-modality task of very unequal widths."""

import numpy as np
import pytest
import torch

from fusekit import Modalities

torch.set_num_threads(1)


def unequal_task(seed: int) -> tuple[Modalities, np.ndarray]:
    """Two informative modalities of very different widths (16 and 40), binary target."""
    rng = np.random.default_rng(seed)
    n = 160
    y = rng.integers(0, 2, n)
    a = rng.normal(size=(n, 16)) + 0.8 * y[:, None]
    b = rng.normal(size=(n, 40))
    b[:, :5] += 0.8 * (2 * y[:, None] - 1)
    return Modalities(a=a, b=b), y


@pytest.fixture
def unequal():
    """``unequal_task`` with seed 0, for tests that do not threshold a trained score."""
    return unequal_task(0)


@pytest.fixture
def unequal_seeded(train_seed):
    """``unequal_task`` under the run's seed, for tests that threshold a trained score."""
    return unequal_task(train_seed)
