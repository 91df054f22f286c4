"""``fusekit.load(path, device=None)``: a model goes where it is asked to, or to the device it was
fitted on when that exists here, otherwise to the CPU with a warning: never a raw torch error.

A model fitted on a GPU is simulated on any machine by saving it with ``device="cuda"`` (the file
records the parameter; the weights are always stored on the CPU) and hiding CUDA from torch."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import fusekit
from fusekit import DeviceUnavailableWarning, FusionClassifier, ModelFileError
from fusekit.devices import load_device, requested_device

from .forging import reseal

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


@pytest.fixture
def saved_on_cuda(tmp_path, vectors):
    """A model file that says it was fitted with device="cuda"."""
    X, y = vectors
    model = FusionClassifier(max_epochs=1, random_state=0).fit(X, y)
    model.set_params(device="cuda")
    return model.save(tmp_path / "m.safetensors"), model, X


def _on(model, device_type):
    return {p.device.type for p in model.module_.parameters()} == {device_type}


def test_a_cuda_model_loads_onto_the_cpu_with_a_warning_where_there_is_no_gpu(
    saved_on_cuda, no_cuda
):
    path, model, X = saved_on_cuda
    with pytest.warns(DeviceUnavailableWarning, match=r"fitted on device='cuda'.*onto the CPU"):
        loaded = fusekit.load(path)
    assert loaded.device == "cpu" and _on(loaded, "cpu")
    model.set_params(device="cpu")
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_an_explicit_cpu_device_loads_without_a_warning(saved_on_cuda, no_cuda):
    path, _, X = saved_on_cuda
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = fusekit.load(path, device="cpu")
    assert loaded.device == "cpu" and _on(loaded, "cpu")
    assert loaded.predict(X).shape == (len(X["audio"]),)


def test_the_warning_points_at_the_callers_line(saved_on_cuda, no_cuda):
    path, _, _ = saved_on_cuda
    with pytest.warns(DeviceUnavailableWarning) as record:
        fusekit.load(path)
    assert record[0].filename == __file__


@pytest.mark.parametrize("device", ["gpu0", "cuda:x", "", "meta"])
def test_an_unknown_device_string_is_a_clear_error(device, saved_on_cuda):
    path, _, _ = saved_on_cuda
    with pytest.raises(ValueError, match=rf"device={device!r}"):
        fusekit.load(path, device=device)


def test_a_device_that_is_not_a_string_is_a_clear_error(saved_on_cuda):
    path, _, _ = saved_on_cuda
    with pytest.raises(TypeError, match=r"device must be a device string .* got 1.5"):
        fusekit.load(path, device=1.5)


def test_an_explicit_device_missing_here_is_a_clear_error(saved_on_cuda, no_cuda):
    path, _, _ = saved_on_cuda
    with pytest.raises(ValueError, match=r"device='cuda:1' is not available on this machine"):
        fusekit.load(path, device="cuda:1")


def test_any_present_device_is_chosen_as_asked(monkeypatch):
    """With two GPUs (simulated), "cuda:1" is honoured; the fitted device is kept when present."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert requested_device("cuda:1") == "cuda:1"
    assert requested_device(torch.device("cuda", 0)) == "cuda:0"
    assert load_device("cuda:1", None) == "cuda:1"
    assert load_device("cuda:1", "cpu") == "cpu"
    with pytest.warns(DeviceUnavailableWarning, match="cuda:2"):
        assert load_device("cuda:2", None) == "cpu"


def test_a_stored_device_that_is_not_a_device_is_refused(tmp_path, vectors):
    X, y = vectors
    path = FusionClassifier(max_epochs=1).fit(X, y).save(tmp_path / "m.safetensors")
    reseal(path, lambda document: document["params"].update(device="quantum:0"))
    with pytest.raises(ModelFileError, match=r"m\.safetensors.*device='quantum:0'"):
        fusekit.load(path)


def test_a_pipeline_loads_onto_the_device_asked_for(tmp_path, no_cuda):
    rng = np.random.default_rng(0)
    numbers = rng.normal(size=(40, 3))
    final = FusionClassifier(modalities={"a": 2, "b": 1}, max_epochs=1)
    model = make_pipeline(StandardScaler(), final).fit(numbers, numbers[:, 0] > 0)
    final.set_params(device="cuda")
    path = fusekit.save(model, tmp_path / "p.zip")
    with pytest.warns(DeviceUnavailableWarning):
        assert fusekit.load(path)[-1].device == "cpu"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _on(fusekit.load(path, device="cpu")[-1], "cpu")


@needs_gpu
def test_a_model_fitted_on_the_gpu_loads_back_onto_it(tmp_path, vectors):
    X, y = vectors
    model = FusionClassifier(device="cuda", max_epochs=1, random_state=0).fit(X, y)
    path = model.save(tmp_path / "m.safetensors")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = fusekit.load(path)
    assert loaded.device == "cuda" and _on(loaded, "cuda")
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), atol=1e-6)
    on_cpu = fusekit.load(path, device="cpu")
    assert _on(on_cpu, "cpu")
    np.testing.assert_allclose(on_cpu.predict_proba(X), model.predict_proba(X), atol=1e-4)


@needs_gpu
def test_a_cpu_model_loads_onto_the_gpu_when_asked(tmp_path, vectors):
    X, y = vectors
    model = FusionClassifier(max_epochs=1, random_state=0).fit(X, y)
    loaded = fusekit.load(model.save(tmp_path / "m.safetensors"), device="cuda:0")
    assert loaded.device == "cuda:0" and _on(loaded, "cuda")
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), atol=1e-4)


def test_a_recorded_device_that_is_not_a_device_is_refused(tmp_path, vectors):
    X, y = vectors
    path = FusionClassifier(max_epochs=1).fit(X, y).save(tmp_path / "m.safetensors")

    def forge(document):
        assert document["fitted"]["device_"] == "cpu"  # the device it was fitted on
        document["fitted"]["device_"] = "tpu9"

    reseal(path, forge)
    with pytest.raises(ModelFileError, match=r"m\.safetensors.*device_='tpu9' is not a torch"):
        fusekit.load(path)
