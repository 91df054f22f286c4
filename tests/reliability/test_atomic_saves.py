"""Saving over a file is atomic: a save that fails half-way (full disk, Ctrl-C) leaves the previous
file byte for byte as it was, and no temporary file behind."""

import errno
import os
import signal
import zipfile
from pathlib import Path

import numpy as np
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import fusekit
from fusekit import FusionClassifier, persistence


def _model(seed):
    rng = np.random.default_rng(seed)
    numbers = rng.normal(size=(40, 3))
    y = (numbers[:, 0] > 0).astype(int)
    return FusionClassifier(modalities={"a": 2, "b": 1}, max_epochs=1, random_state=seed), (
        numbers,
        y,
    )


def _pipeline(seed):
    model, (numbers, y) = _model(seed)
    return make_pipeline(StandardScaler(), model).fit(numbers, y), numbers


def _full_disk_after_half(real_save_file):
    """``save_file`` that writes half the file, then fails as a full disk does."""

    def save_file(tensors, filename, metadata=None):
        real_save_file(tensors, filename, metadata=metadata)
        data = Path(filename).read_bytes()
        Path(filename).write_bytes(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device", filename)

    return save_file


def _fail_on_second_member(monkeypatch, folder, failure):
    """Make ``ZipFile.writestr`` into ``folder`` write the first member, then ``failure()``."""
    real = zipfile.ZipFile.writestr
    written = []

    def writestr(self, name, data, *args, **kwargs):
        if self.filename and Path(self.filename).parent == folder:
            written.append(name)
            if len(written) == 2:
                failure()
        return real(self, name, data, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", writestr)
    return written


def _no_space():
    raise OSError(errno.ENOSPC, "No space left on device")


def _ctrl_c():
    os.kill(os.getpid(), signal.SIGINT)  # a real SIGINT: Python raises KeyboardInterrupt here


def test_a_model_save_that_runs_out_of_disk_keeps_the_old_file(tmp_path, monkeypatch):
    old, (numbers, y) = _model(0)
    path = old.fit(numbers, y).save(tmp_path / "m.safetensors")
    before = path.read_bytes()
    new, _ = _model(1)
    new.fit(numbers, y)
    monkeypatch.setattr(persistence, "save_file", _full_disk_after_half(persistence.save_file))
    with pytest.raises(OSError) as error:
        new.save(path)
    assert error.value.errno == errno.ENOSPC
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.safetensors"]
    monkeypatch.undo()
    np.testing.assert_array_equal(
        fusekit.load(path).predict_proba(numbers), old.predict_proba(numbers)
    )


@pytest.mark.parametrize(
    ("failure", "raised"),
    [(_no_space, OSError), (_ctrl_c, KeyboardInterrupt)],
    ids=["ENOSPC", "SIGINT"],
)
def test_a_pipeline_save_that_fails_mid_write_keeps_the_old_file(
    failure, raised, tmp_path, monkeypatch
):
    old, numbers = _pipeline(0)
    path = fusekit.save(old, tmp_path / "p.zip")
    before = path.read_bytes()
    new, _ = _pipeline(1)
    written = _fail_on_second_member(monkeypatch, tmp_path, failure)
    with pytest.raises(raised):
        fusekit.save(new, path)
    assert written == ["manifest.json", "steps.skops"]  # it failed after writing a member
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["p.zip"]
    monkeypatch.undo()
    np.testing.assert_array_equal(
        fusekit.load(path).predict_proba(numbers), old.predict_proba(numbers)
    )


def test_a_completed_save_replaces_the_file_and_keeps_its_permissions(tmp_path):
    old, numbers = _pipeline(0)
    path = fusekit.save(old, tmp_path / "p.zip")
    path.chmod(0o640)
    new, _ = _pipeline(1)
    fusekit.save(new, path)
    assert path.stat().st_mode & 0o777 == 0o640
    assert os.listdir(tmp_path) == ["p.zip"]
    np.testing.assert_array_equal(
        fusekit.load(path).predict_proba(numbers), new.predict_proba(numbers)
    )
