"""device="cuda" puts the network and the data on the GPU; skipped cleanly where none exists."""

import numpy as np
import pytest
import torch

from fusekit import FusionClassifier

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")


@needs_gpu
def test_fit_and_predict_on_cuda(vectors):
    X, y = vectors
    model = FusionClassifier(device="cuda", max_epochs=2, random_state=0).fit(X, y)
    assert all(p.device.type == "cuda" for p in model.module_.parameters())
    proba = model.predict_proba(X)
    assert isinstance(proba, np.ndarray) and np.isfinite(proba).all()


@needs_gpu
def test_cuda_and_cpu_agree(vectors):
    X, y = vectors
    cpu = FusionClassifier(max_epochs=2, random_state=0).fit(X, y).predict_proba(X)
    gpu = FusionClassifier(device="cuda", max_epochs=2, random_state=0).fit(X, y).predict_proba(X)
    np.testing.assert_allclose(gpu, cpu, atol=1e-4)


def test_cpu_device_keeps_everything_on_cpu(vectors):
    X, y = vectors
    model = FusionClassifier(device="cpu", max_epochs=1).fit(X, y)
    assert all(p.device.type == "cpu" for p in model.module_.parameters())
