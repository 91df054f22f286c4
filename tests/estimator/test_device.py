"""device="cuda" puts the network and the data on the GPU (skipped cleanly where none exists);
device="auto", the recorded device, chunked prediction and the caller's CUDA random streams are
checked on any CPU (CUDA simulated by replacing torch's queries)."""

import copy
import warnings

import numpy as np
import pytest
import torch

import fusekit
from fusekit import FusionClassifier, devices
from fusekit.plugin import ModalityBatch

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


# -- on any CPU --------------------------------------------------------------------------------


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


def test_auto_is_cuda_when_torch_sees_a_gpu_else_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert devices.fit_device("auto") == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert devices.fit_device("auto") == "cpu"


def test_auto_fits_on_the_cpu_here_and_records_it(vectors, no_cuda):
    X, y = vectors
    model = FusionClassifier(device="auto", max_epochs=1, random_state=0).fit(X, y)
    assert model.device == "auto" and model.device_ == "cpu"
    assert all(p.device.type == "cpu" for p in model.module_.parameters())
    reference = FusionClassifier(max_epochs=1, random_state=0).fit(X, y)
    np.testing.assert_array_equal(model.predict_proba(X), reference.predict_proba(X))


@pytest.mark.parametrize(
    ("device", "error", "message"),
    [
        ("cuda", ValueError, r"device='cuda' is not available on this machine"),
        ("cuda:x", ValueError, r"device='cuda:x' is not a torch device"),
        ("meta", ValueError, r"device='meta': a model cannot run on the 'meta' device"),
    ],
)
def test_a_device_that_cannot_train_here_is_refused_before_training(
    device, error, message, vectors, no_cuda
):
    X, y = vectors
    model = FusionClassifier(device=device, max_epochs=1)
    with pytest.raises(error, match=message):
        model.fit(X, y)
    assert not hasattr(model, "net_")


def test_the_model_file_records_the_fitted_device_and_auto_loads_anywhere(
    tmp_path, vectors, no_cuda
):
    X, y = vectors
    model = FusionClassifier(device="auto", max_epochs=1, random_state=0).fit(X, y)
    path = model.save(tmp_path / "m.safetensors")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "auto" on a machine without a GPU is no surprise
        loaded = fusekit.load(path)
    assert loaded.device == "auto" and loaded.device_ == "cpu"
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert fusekit.load(path, device="cpu").device == "cpu"


def test_predict_moves_one_chunk_of_predict_batch_size_rows_at_a_time(vectors, monkeypatch):
    """X (160 rows) is prepared on the CPU; only chunks of at most 50 rows go to the device."""
    X, y = vectors
    model = FusionClassifier(max_epochs=1, predict_batch_size=50).fit(X, y)
    moved = []
    real_to = ModalityBatch.to

    def spy(self, device):
        moved.append((len(self), torch.device(device).type))
        return real_to(self, device)

    monkeypatch.setattr(ModalityBatch, "to", spy)
    for predict in (model.predict_proba, model.predict, lambda X: list(model.outputs(X))):
        moved.clear()
        predict(X)
        assert moved == [(50, "cpu"), (50, "cpu"), (50, "cpu"), (10, "cpu")]


class _RecordedFork:
    """Stands in for ``torch.random.fork_rng``: records the devices asked for, forks the CPU."""

    def __init__(self):
        self.calls = []
        self.real = torch.random.fork_rng

    def __call__(self, devices=None, **kwargs):
        self.calls.append(devices)
        return self.real(devices=[], **kwargs)


@pytest.fixture
def cuda_in_use(monkeypatch):
    """Two CUDA devices that the caller has already used (simulated: seeding is recorded)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    seeded = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", seeded.append)
    fork = _RecordedFork()
    monkeypatch.setattr(torch.random, "fork_rng", fork)
    return monkeypatch, fork, seeded


def test_a_fit_forks_every_cuda_generator_once_cuda_is_in_use(vectors, cuda_in_use):
    monkeypatch, fork, seeded = cuda_in_use
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    X, y = vectors
    FusionClassifier(max_epochs=1, random_state=0).fit(X, y)
    assert fork.calls == [[0, 1]]  # the CUDA generators are put back after the fit
    assert len(seeded) == 1  # ... which seeded them inside the fork


def test_a_cpu_fit_leaves_an_unstarted_cuda_generator_alone(vectors, cuda_in_use):
    """torch.manual_seed would queue a seed for CUDA's first use: the caller's later CUDA stream
    would depend on the fit's random_state."""
    monkeypatch, fork, seeded = cuda_in_use
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    X, y = vectors
    first = FusionClassifier(max_epochs=1, random_state=0).fit(X, y).predict_proba(X)
    assert fork.calls == [[]] and seeded == []
    second = FusionClassifier(max_epochs=1, random_state=0).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(first, second)  # still seeded: the CPU generator


def test_the_caller_s_cpu_generator_is_left_as_it_was(vectors):
    X, y = vectors
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    FusionClassifier(max_epochs=1, random_state=0).fit(X, y)
    torch.testing.assert_close(torch.rand(3), expected)


def test_gradient_blending_s_holdout_follows_the_network_to_another_device(vectors):
    X, y = vectors
    model = FusionClassifier(weighting="gradient_blending", max_epochs=1, random_state=0)
    weighting = model.fit(X, y).module_.weighting
    assert "holdout" in dict(weighting.named_buffers())
    assert "weightings.0.holdout" not in model.module_.state_dict()  # training state, not saved
    moved = copy.deepcopy(model.module_).to("meta").weighting
    assert moved.holdout.device.type == "meta" and moved.holdout.shape == (len(y),)
