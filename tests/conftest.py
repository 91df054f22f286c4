"""Shared fixtures: small synthetic multimodal data; one torch thread per test worker."""

import numpy as np
import pytest
import torch

from fusekit import Modalities

torch.set_num_threads(1)


def make_multimodal(n=150, n_classes=3, seed=0):
    """Two informative modalities of different shapes: a vector and a short sequence."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    a = rng.normal(size=(n, 6)) + y[:, None]
    b = rng.normal(size=(n, 5, 3)) + 0.8 * y[:, None, None]
    c = rng.normal(size=(n, 4)) * 10 + 50  # noise on a different scale
    return Modalities(a=a, b=b, c=c), y


@pytest.fixture
def multimodal():
    return make_multimodal()


def make_vectors(seed=1):
    """Three vector modalities, two classes: 'audio' and 'video' informative, 'text' noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 160)
    X = Modalities(
        audio=rng.normal(size=(160, 5)) + y[:, None],
        video=rng.normal(size=(160, 7)) - y[:, None],
        text=rng.normal(size=(160, 3)),
    )
    return X, y


@pytest.fixture
def vectors():
    """Three vector modalities, classification (fixed data: for tests that threshold nothing)."""
    return make_vectors()


@pytest.fixture
def seeded_vectors(train_seed):
    """``vectors`` drawn from the run's seed, for tests that threshold a trained score."""
    return make_vectors(seed=1 + train_seed)


@pytest.fixture
def seeded_multimodal(train_seed):
    """``multimodal`` drawn from the run's seed, for tests that threshold a trained score."""
    return make_multimodal(seed=train_seed)
