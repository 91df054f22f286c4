"""save/load without pickle: identical predictions, no code from the file, clear errors."""

import json
import struct
import warnings

import numpy as np
import pandas as pd
import pytest

import fusekit
from fusekit import FusionClassifier, FusionRegressor
from fusekit.persistence import ModelFileError, PluginVersionWarning


@pytest.fixture
def fitted(multimodal):
    X, y = multimodal
    labels = np.array(["low", "mid", "high"])[y]
    model = FusionClassifier(fusion="late", max_epochs=3, random_state=0).fit(X, labels)
    return model, X


def test_round_trip_gives_identical_predictions(tmp_path, fitted):
    model, X = fitted
    path = model.save(tmp_path / "model.safetensors")
    loaded = fusekit.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.get_params()["fusion"] == "late"
    assert loaded.modalities_ == model.modalities_


def test_the_training_record_round_trips(tmp_path, multimodal):
    """n_iter_, loss_curve_, validation_scores_, best_epoch_ and lr_ read back as fit left them;
    a NaN epoch value (JSON has none) comes back as NaN."""
    X, y = multimodal
    model = FusionClassifier(
        max_epochs=6, early_stopping=True, n_iter_no_change=2, lr=0.02, random_state=0
    ).fit(X, y)
    model.validation_scores_[1] = np.nan
    loaded = fusekit.load(model.save(tmp_path / "model.safetensors"))
    assert loaded.n_iter_ == model.n_iter_ == len(model.net_.history)
    assert loaded.loss_curve_ == model.loss_curve_
    np.testing.assert_array_equal(loaded.validation_scores_, model.validation_scores_)
    assert np.isnan(loaded.validation_scores_[1])
    assert loaded.best_epoch_ == model.best_epoch_ is not None
    assert loaded.lr_ == 0.02
    plain = FusionClassifier(max_epochs=2, random_state=0).fit(X, y)
    reloaded = fusekit.load(plain.save(tmp_path / "plain.safetensors"))
    assert reloaded.validation_scores_ is None and reloaded.best_epoch_ is None
    assert reloaded.loss_curve_ == plain.loss_curve_ and len(reloaded.loss_curve_) == 2


def test_modalities_out_of_alphabetical_order_round_trip(tmp_path, multimodal):
    """The document's keys are sorted; the network's modality order must stay the fitted one."""
    X, y = multimodal
    X = fusekit.Modalities(zeta=X["c"], mid=X["b"], alpha=X["a"])
    model = FusionClassifier(fusion="late", max_epochs=3, random_state=0).fit(X, y)
    loaded = fusekit.load(model.save(tmp_path / "model.safetensors"))
    assert list(loaded.modalities_) == ["zeta", "mid", "alpha"]
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_regressor_dataframe_and_nested_params_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(80, 4)), columns=["a__x", "a__y", "b__x", "b__y"])
    y = np.stack([frame["a__x"] * 3, frame["b__y"] - 1], axis=1)
    model = FusionRegressor(
        backbone={"a": "mlp", "b": "identity"},
        backbone__a__hidden=7,
        fusion="late",
        fusion__weights="learned",
        optimizer="sgd",
        max_epochs=3,
        random_state=0,
    ).fit(frame, y)
    loaded = fusekit.load(model.save(tmp_path / "r.safetensors"))
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))
    assert list(loaded.feature_names_in_) == list(frame.columns)


def test_plugin_instances_are_stored_by_name(tmp_path, multimodal):
    from fusekit.builtin.late_fusion import LateFusion

    X, y = multimodal
    model = FusionClassifier(fusion=LateFusion(weights="learned"), max_epochs=2).fit(X, y)
    loaded = fusekit.load(model.save(tmp_path / "m.safetensors"))
    assert isinstance(loaded.fusion, LateFusion) and loaded.fusion.weights == "learned"
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def _flip(path, position):
    data = bytearray(path.read_bytes())
    data[position] ^= 0x01
    path.write_bytes(bytes(data))


def test_any_flipped_byte_is_detected(tmp_path, fitted):
    model, _ = fitted
    path = model.save(tmp_path / "model.safetensors")
    original = path.read_bytes()
    rng = np.random.default_rng(0)
    positions = [0, 3, 8, 20, len(original) // 2, len(original) - 1]
    positions += rng.integers(0, len(original), 20).tolist()
    for position in positions:
        path.write_bytes(original)
        _flip(path, int(position))
        with pytest.raises(ModelFileError):
            fusekit.load(path)


def test_truncated_file(tmp_path, fitted):
    model, _ = fitted
    path = model.save(tmp_path / "model.safetensors")
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ModelFileError, match="truncated or corrupted"):
        fusekit.load(path)


def _rewrite_header(path, edit):
    """Rewrite the safetensors header (JSON) in place after ``edit(header)``."""
    data = path.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size])
    edit(header)
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + data[8 + size :])


def _rewrite_document(path, edit):
    """Edit the JSON document and re-sign nothing: the digest must catch it."""

    def edit_document(header):
        document = json.loads(header["__metadata__"]["fusekit"])
        edit(document)
        header["__metadata__"]["fusekit"] = json.dumps(document, sort_keys=True)

    _rewrite_header(path, edit_document)


def test_edited_document_is_detected(tmp_path, fitted):
    model, _ = fitted
    path = model.save(tmp_path / "model.safetensors")

    def wrong_shape(document):
        document["layout"]["shapes"]["a"] = [99]

    _rewrite_document(path, wrong_shape)
    with pytest.raises(ModelFileError, match="integrity check"):
        fusekit.load(path)


def test_consistently_edited_document_fails_cleanly(tmp_path, fitted, monkeypatch):
    """Even if the digest is recomputed, a wrong shape is an error, not a half-loaded model."""
    from fusekit import persistence

    model, _ = fitted
    path = model.save(tmp_path / "model.safetensors")
    _rewrite_document(path, lambda d: d["layout"]["shapes"].update(a=[99]))
    monkeypatch.setattr(persistence, "_digest", lambda text, tensors: "x")
    _rewrite_header(path, lambda header: header["__metadata__"].update(fusekit_sha256="x"))
    with pytest.raises(ModelFileError, match="does not match its weights"):
        fusekit.load(path)


def test_missing_plugin_names_the_distribution(tmp_path, fitted, monkeypatch):
    model, _ = fitted
    path = model.save(tmp_path / "model.safetensors")
    from fusekit import persistence

    real = persistence.get_registry()

    class WithoutLate:
        def entry(self, kind, name):
            if name == "late":
                raise ValueError("unknown")
            return real.entry(kind, name)

    monkeypatch.setattr(persistence, "get_registry", lambda: WithoutLate())
    with pytest.raises(
        ModuleNotFoundError, match=r"fusion 'late' from the distribution fusekit-learn "
    ):
        fusekit.load(path)


def test_plugin_version_mismatch_warns(tmp_path, fitted, monkeypatch):
    from fusekit import persistence

    model, X = fitted
    path = model.save(tmp_path / "model.safetensors")
    real = persistence.get_registry()

    class Newer:
        def entry(self, kind, name):
            entry = real.entry(kind, name)
            return type(entry)(entry.name, entry.kind, entry.obj, entry.distribution, "99.0", "x")

    monkeypatch.setattr(persistence, "get_registry", lambda: Newer())
    with pytest.warns(PluginVersionWarning, match="99.0"):
        loaded = fusekit.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_not_a_model_file(tmp_path):
    path = tmp_path / "x.safetensors"
    path.write_bytes(b"hello world, not a model")
    with pytest.raises(ModelFileError):
        fusekit.load(path)


def test_unregistered_plugin_class_cannot_be_saved(tmp_path, multimodal):
    from fusekit.builtin.late_fusion import LateFusion

    class Private(LateFusion):
        pass

    X, y = multimodal
    model = FusionClassifier(fusion=Private, max_epochs=1).fit(X, y)
    with pytest.raises(TypeError, match="not registered"):
        model.save(tmp_path / "m.safetensors")


class Unpickled(AssertionError):
    """Raised by the guard below when anything unpickles."""


@pytest.fixture
def no_unpickling(monkeypatch):
    """Every way to unpickle from Python fails while active: ``pickle.load(s)``, both
    ``Unpickler`` classes (joblib subclasses the pure-Python one), ``torch.load`` (its pickle
    path is taken with or without ``weights_only``) and ``joblib.load``."""
    import pickle

    import joblib
    import torch

    def forbidden(*args, **kwargs):
        raise Unpickled("unpickling while loading")

    class ForbiddenUnpickler:
        def __init__(self, *args, **kwargs):
            forbidden()

    for name in ("load", "loads"):
        monkeypatch.setattr(pickle, name, forbidden)
    monkeypatch.setattr(pickle, "Unpickler", ForbiddenUnpickler)
    monkeypatch.setattr(pickle, "_Unpickler", ForbiddenUnpickler)
    monkeypatch.setattr(torch, "load", forbidden)
    monkeypatch.setattr(torch.serialization, "load", forbidden)
    monkeypatch.setattr(joblib, "load", forbidden)


def _unpickle_by(way: str, path) -> None:
    import pickle

    import joblib
    import torch

    if way == "pickle.load":
        with open(path, "rb") as file:
            pickle.load(file)
    elif way == "pickle.loads":
        pickle.loads(path.read_bytes())
    elif way == "pickle.Unpickler":
        with open(path, "rb") as file:
            pickle.Unpickler(file).load()
    elif way == "torch.load":
        torch.load(path, weights_only=False)
    elif way == "torch.load weights_only":
        torch.load(path, weights_only=True)
    elif way == "torch.serialization.load":
        torch.serialization.load(path)
    elif way == "joblib.load":
        joblib.load(path)


UNPICKLING = [
    "pickle.load", "pickle.loads", "pickle.Unpickler", "torch.load", "torch.load weights_only",
    "torch.serialization.load", "joblib.load",
]  # fmt: skip


@pytest.mark.parametrize("way", UNPICKLING)
def test_the_no_unpickling_guard_fires_for(way, tmp_path, request):
    """Each call below reads back a file it could otherwise read (checked first); under the
    guard every one of them raises."""
    import pickle

    import joblib
    import torch

    path = tmp_path / "object.bin"
    if way.startswith("torch"):
        torch.save({"w": torch.ones(2)}, path)
    elif way == "joblib.load":
        joblib.dump({"w": [1, 2]}, path)
    else:
        path.write_bytes(pickle.dumps({"w": [1, 2]}))
    _unpickle_by(way, path)  # works without the guard
    request.getfixturevalue("no_unpickling")
    with pytest.raises(Unpickled):
        _unpickle_by(way, path)


def test_loading_runs_no_pickle(tmp_path, fitted, no_unpickling):
    model, X = fitted
    path = model.save(tmp_path / "model.safetensors")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fusekit.load(path).predict(X).shape == (len(X["a"]),)


def test_a_pipeline_loads_without_pickle(tmp_path, no_unpickling):
    """ColumnTransformer + StandardScaler + a fusekit estimator: fusekit.save writes the steps
    with skops and the estimator in the fusekit format; loading them back unpickles nothing."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(90, 5)), columns=["p", "q", "r", "s", "t"])
    y = np.array(["low", "high"], dtype=object)[(frame["p"] - frame["s"] > 0).to_numpy(int)]
    prep = ColumnTransformer(
        [("audio", StandardScaler(), ["p", "q", "r"]), ("video", StandardScaler(), ["s", "t"])]
    ).set_output(transform="pandas")
    model = make_pipeline(prep, FusionClassifier(fusion="late", max_epochs=3, random_state=0))
    model.fit(frame, y)
    path = fusekit.save(model, tmp_path / "pipeline.zip")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = fusekit.load(path)
    assert [name for name, _ in loaded.steps] == [name for name, _ in model.steps]
    np.testing.assert_array_equal(loaded.predict_proba(frame), model.predict_proba(frame))
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))
