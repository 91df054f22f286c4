"""SCFAE tests: one torch thread, and a small two-modality task of very unequal widths."""

import numpy as np
import pytest
import torch

from fusekit import Modalities

torch.set_num_threads(1)


@pytest.fixture
def unequal():
    """Two informative modalities of very different widths (16 and 40), binary target."""
    rng = np.random.default_rng(0)
    n = 160
    y = rng.integers(0, 2, n)
    a = rng.normal(size=(n, 16)) + 0.8 * y[:, None]
    b = rng.normal(size=(n, 40))
    b[:, :5] += 0.8 * (2 * y[:, None] - 1)
    return Modalities(a=a, b=b), y
