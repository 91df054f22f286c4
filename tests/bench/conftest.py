"""Tiny data and settings for the bench tests; one torch thread per test process."""

import pytest
import torch

from fusekit.datasets import make_multimodal_classification

torch.set_num_threads(1)


@pytest.fixture
def tiny():
    """Settings of every tiny bench: in-memory data only, 2 folds, 2 epochs, no reference rows
    (the tests of reference rows ask for them)."""
    return {"datasets": (), "max_epochs": 2, "folds": 2, "batch_size": 32, "references": False}


@pytest.fixture(scope="session")
def toy():
    """60 samples, 3 classes, two vector modalities."""
    X, y = make_multimodal_classification(
        n_samples=60, n_features=[4, 3], n_classes=3, names=["audio", "video"], random_state=0
    )
    return X, y
