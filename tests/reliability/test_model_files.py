"""A model file cannot act: it is refused, never half-built, when it was forged or made hostile.

Each test writes a genuine file with fusekit, then does what a forger or a broken disk does to it
(edit the document and recompute the plain digest, swap a member, inflate a member), and checks
that ``fusekit.load`` refuses it with a precise error before building or allocating anything.
"""

import hashlib
import json
import zipfile

import numpy as np
import pytest
import torch
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Callback, Checkpoint, GradientNormClipping
from torch.overrides import TorchFunctionMode

import fusekit
from fusekit import FusionClassifier, FusionRegressor, ModelFileError, SignatureError
from fusekit.persistence import MAX_SAMPLE_VALUES, STORABLE_CALLBACKS

from .forging import reseal, rezip

KEY = b"a secret only the model's owner holds"


@pytest.fixture
def fitted(multimodal):
    X, codes = multimodal
    labels = np.array(["high", "low", "mid"])[codes]
    model = FusionClassifier(fusion="late", max_epochs=1, random_state=0).fit(X, labels)
    return model, X


def _pipeline(seed=0):
    rng = np.random.default_rng(seed)
    numbers = rng.normal(size=(40, 3))
    y = (numbers[:, 0] > 0).astype(int)
    model = make_pipeline(
        StandardScaler(), FusionClassifier(modalities={"a": 2, "b": 1}, max_epochs=1)
    )
    return model.fit(numbers, y), numbers


# -- the keyed signature -------------------------------------------------------------------------
def _relabel(document):
    """Other class names, still sorted and distinct: nothing but a signature can tell."""
    document["fitted"]["classes_"]["values"] = ["cat", "dog", "eel"]


def test_a_forger_can_recompute_the_digest_but_not_the_signature(tmp_path, fitted):
    model, X = fitted
    path = fusekit.save(model, tmp_path / "m.safetensors", key=KEY)
    reseal(path, _relabel)  # the forged file passes the plain digest...
    with pytest.raises(SignatureError, match=r"m\.safetensors failed its signature check"):
        fusekit.load(path, key=KEY)  # ...but not the signature


def test_a_relabelled_unsigned_file_loads_as_the_docs_say(tmp_path, fitted):
    """What the plain digest does not protect against, stated in the user guide: a forger who
    recomputes it. This pins that statement (if it ever stops holding, update the docs)."""
    model, X = fitted
    path = model.save(tmp_path / "m.safetensors")
    reseal(path, _relabel)
    assert fusekit.load(path).classes_.tolist() == ["cat", "dog", "eel"]


def test_a_signed_file_loads_with_its_key(tmp_path, fitted):
    model, X = fitted
    path = fusekit.save(model, tmp_path / "m.safetensors", key=KEY)
    loaded = fusekit.load(path, key=KEY)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    # a string key is its UTF-8 bytes
    path = fusekit.save(model, tmp_path / "s.safetensors", key="pässword")
    assert fusekit.load(path, key="pässword".encode()).classes_.tolist() == ["high", "low", "mid"]


def test_a_signed_file_without_its_key_is_refused(tmp_path, fitted):
    model, _ = fitted
    path = fusekit.save(model, tmp_path / "m.safetensors", key=KEY)
    with pytest.raises(SignatureError, match=r"is signed with a key; pass it"):
        fusekit.load(path)


def test_a_signed_file_with_another_key_is_refused(tmp_path, fitted):
    model, _ = fitted
    path = fusekit.save(model, tmp_path / "m.safetensors", key=KEY)
    with pytest.raises(SignatureError, match="signed with another key"):
        fusekit.load(path, key=b"a guess")


def test_an_unsigned_file_loaded_with_a_key_is_refused(tmp_path, fitted):
    model, _ = fitted
    path = model.save(tmp_path / "m.safetensors")
    with pytest.raises(SignatureError, match="is not signed, but a key was given"):
        fusekit.load(path, key=KEY)


def test_a_stripped_signature_is_refused_when_the_key_is_given(tmp_path, fitted):
    model, _ = fitted
    path = fusekit.save(model, tmp_path / "m.safetensors", key=KEY)
    reseal(path, _relabel, signature="drop")
    with pytest.raises(SignatureError, match="is not signed, but a key was given"):
        fusekit.load(path, key=KEY)


def test_signatures_are_compared_in_constant_time(tmp_path, fitted, monkeypatch):
    import hmac

    calls = []
    real = hmac.compare_digest

    def recording(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    model, _ = fitted
    path = fusekit.save(model, tmp_path / "m.safetensors", key=KEY)
    fusekit.load(path, key=KEY)
    assert len(calls) >= 2  # the digest and the signature


@pytest.mark.parametrize(("key", "error"), [("", ValueError), (b"", ValueError), (7, TypeError)])
def test_an_empty_or_odd_key_is_refused(key, error, tmp_path, fitted):
    model, _ = fitted
    with pytest.raises(error, match="key must"):
        fusekit.save(model, tmp_path / "m.safetensors", key=key)
    assert not (tmp_path / "m.safetensors").exists()


def test_a_signed_pipeline_refuses_a_swapped_estimator(tmp_path):
    """The forger swaps in another model and fixes the manifest's digest and size."""
    model, numbers = _pipeline(seed=0)
    path = fusekit.save(model, tmp_path / "p.zip", key=KEY)
    other = fusekit.save(_pipeline(seed=1)[0][-1], tmp_path / "other.safetensors").read_bytes()

    def swap(members):
        manifest = json.loads(members["manifest.json"])
        manifest["sha256"]["estimator.safetensors"] = hashlib.sha256(other).hexdigest()
        manifest["sizes"]["estimator.safetensors"] = len(other)
        members["manifest.json"] = json.dumps(manifest, sort_keys=True).encode()
        members["estimator.safetensors"] = other

    rezip(path, swap)
    with pytest.raises(SignatureError, match=r"p\.zip failed its signature check"):
        fusekit.load(path, key=KEY)


def test_a_signed_pipeline_needs_its_key(tmp_path):
    model, numbers = _pipeline()
    path = fusekit.save(model, tmp_path / "p.zip", key=KEY)
    np.testing.assert_array_equal(
        fusekit.load(path, key=KEY).predict_proba(numbers), model.predict_proba(numbers)
    )
    with pytest.raises(SignatureError, match="is signed with a key"):
        fusekit.load(path)
    with pytest.raises(SignatureError, match="signed with another key"):
        fusekit.load(path, key=b"a guess")
    unsigned = fusekit.save(model, tmp_path / "u.zip")
    with pytest.raises(SignatureError, match="is not signed, but a key was given"):
        fusekit.load(unsigned, key=KEY)


# -- relabelled classes ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "labels",
    [["low", "high", "mid"], ["high", "high", "mid"]],
    ids=["reordered", "duplicated"],
)
def test_relabelled_classes_are_refused(labels, tmp_path, fitted):
    """Swapping two labels flips every prediction between them; fit stores np.unique's sorted,
    distinct labels, so any other list was edited in."""
    model, _ = fitted
    path = model.save(tmp_path / "m.safetensors")
    reseal(path, lambda document: document["fitted"]["classes_"].update(values=labels))
    with pytest.raises(ModelFileError, match=r"m\.safetensors.*classes were relabelled"):
        fusekit.load(path)


def test_a_changed_number_of_classes_is_refused_naming_the_weight(tmp_path, fitted):
    model, _ = fitted
    path = model.save(tmp_path / "m.safetensors")
    reseal(
        path,
        lambda document: document["fitted"]["classes_"].update(values=["high", "low"], shape=[2]),
    )
    with pytest.raises(ModelFileError, match=r"the weight '[\w.]+' has the shape \(3, "):
        fusekit.load(path)


def test_a_regressor_whose_target_scaling_does_not_fit_its_outputs_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    X = fusekit.Modalities(a=rng.normal(size=(30, 3)), b=rng.normal(size=(30, 2)))
    model = FusionRegressor(max_epochs=1).fit(X, rng.normal(size=(30, 2)))
    path = model.save(tmp_path / "r.safetensors")
    three = {"$type": "ndarray", "dtype": "<f8", "shape": [3], "values": [0.0, 1.0, 2.0]}
    reseal(path, lambda document: document["fitted"].update(y_mean_=three))
    with pytest.raises(ModelFileError, match=r"r\.safetensors.*target scaling has the shapes"):
        fusekit.load(path)


# -- declared shapes: no big allocation from a small file ------------------------------------------
class LargestTensor(TorchFunctionMode):
    """Records the largest tensor (bytes) created off the meta device while active."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        if isinstance(result, torch.Tensor) and result.device.type != "meta":
            self.largest = max(self.largest, result.numel() * result.element_size())
        return result


@pytest.mark.parametrize(
    ("standardize", "message"),
    [
        (False, r"the weight 'backbones\.a\.[\w.]+' has the shape \(64, 6\) in the file, but .*"
         r"needs \(64, 1000000\)"),
        (True, r"standardisation statistics of 'a' have the shapes \(1, 6\)"),
    ],
)  # fmt: skip
def test_a_huge_declared_width_is_refused_before_anything_is_allocated(
    standardize, message, tmp_path, multimodal
):
    """A few-KB file declaring modality 'a' 1,000,000 wide: the network it describes would hold
    a 256 MB first layer. It is refused with no tensor over 1 MB ever created."""
    X, y = multimodal
    model = FusionClassifier(standardize=standardize, max_epochs=1, random_state=0).fit(X, y)
    path = model.save(tmp_path / "m.safetensors")
    reseal(path, lambda document: document["layout"]["shapes"].update(a=[1_000_000]))
    assert path.stat().st_size < 200_000
    with LargestTensor() as watch, pytest.raises(ModelFileError) as error:
        fusekit.load(path)
    assert watch.largest < 2**20
    assert error.match(message)


def test_a_shape_beyond_the_bound_is_refused_naming_the_modality(tmp_path, fitted):
    model, _ = fitted
    path = model.save(tmp_path / "m.safetensors")
    reseal(path, lambda document: document["layout"]["shapes"].update(b=[2**16, 2**16]))
    with pytest.raises(ModelFileError, match=rf"modality 'b'.*more than the {MAX_SAMPLE_VALUES}"):
        fusekit.load(path)


@pytest.mark.parametrize("shape", [[0], [-3], [True], ["6"], []])
def test_a_malformed_shape_is_refused_naming_the_modality(shape, tmp_path, fitted):
    model, _ = fitted
    path = model.save(tmp_path / "m.safetensors")
    reseal(path, lambda document: document["layout"]["shapes"].update(a=shape))
    with pytest.raises(ModelFileError, match=r"modality 'a'"):
        fusekit.load(path)


# -- callbacks: none that can write files or run code ----------------------------------------------
def test_a_callback_that_writes_files_is_refused_at_save(tmp_path, multimodal):
    X, y = multimodal
    checkpoint = Checkpoint(monitor=None, dirname=str(tmp_path / "checkpoints"))
    model = FusionClassifier(max_epochs=1, callbacks=[checkpoint]).fit(X, y)
    with pytest.raises(TypeError, match=r"does not store the callback Checkpoint.*set_params"):
        model.save(tmp_path / "m.safetensors")
    assert not (tmp_path / "m.safetensors").exists()


def test_a_user_callback_is_refused_at_save(tmp_path, multimodal):
    class Notify(Callback):
        def on_epoch_end(self, net, **kwargs):
            pass

    X, y = multimodal
    model = FusionClassifier(max_epochs=1, callbacks=[GradientNormClipping(1.0), Notify()]).fit(
        X, y
    )
    with pytest.raises(TypeError, match=r"callback Notify \(parameter callbacks\[1\]\)"):
        model.save(tmp_path / "m.safetensors")


FORGED_CALLBACKS = {
    "Checkpoint": {"dirname": "DIR", "f_params": "params.pt"},
    "TrainEndCheckpoint": {"dirname": "DIR"},
    "LoadInitState": {"checkpoint": "DIR"},
    "LRScheduler": {"policy": "sys"},
    "Callback": {},
}


@pytest.mark.parametrize("name", sorted(FORGED_CALLBACKS))
def test_a_stored_callback_not_on_the_list_is_never_built(name, tmp_path, fitted, monkeypatch):
    """A forged document holding a path-writing callback: at main's load, Checkpoint created its
    directory and a refit wrote files there. Now it is refused and never constructed."""
    import skorch.callbacks

    model, _ = fitted
    path = model.save(tmp_path / "m.safetensors")
    target = tmp_path / "elsewhere"
    params = {k: str(target) if v == "DIR" else v for k, v in FORGED_CALLBACKS[name].items()}
    record = {"$type": "skorch.callbacks", "class": name, "params": params}
    reseal(path, lambda document: document["params"].update(callbacks=[record]))
    cls, built = getattr(skorch.callbacks, name), []
    real_init = cls.__init__

    def recording_init(self, *args, **kwargs):
        built.append(type(self).__name__)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(cls, "__init__", recording_init)
    with pytest.raises(ModelFileError) as error:
        fusekit.load(path)
    assert not target.exists()
    assert built == []
    assert error.match(rf"m\.safetensors.*callback '{name}'.*it was not built")


def test_a_stored_callback_with_an_argument_not_on_the_list_is_refused(tmp_path, fitted):
    model, _ = fitted
    path = model.save(tmp_path / "m.safetensors")
    record = {"$type": "skorch.callbacks", "class": "EarlyStopping", "params": {"sink": "print"}}
    reseal(path, lambda document: document["params"].update(callbacks=[record]))
    with pytest.raises(ModelFileError, match=r"EarlyStopping has arguments \['sink'\]"):
        fusekit.load(path)


def test_every_callback_on_the_list_round_trips(tmp_path, fitted):
    """Each allowed class exists in skorch, takes the listed arguments, and comes back."""
    import skorch.callbacks

    model, _ = fitted
    callbacks = []
    for name in sorted(STORABLE_CALLBACKS):
        cls = getattr(skorch.callbacks, name)
        args = {"scoring": "accuracy"} if "Scoring" in name and name != "PassthroughScoring" else {}
        args = {"name": "score"} if name == "PassthroughScoring" else args
        callbacks.append((name.lower(), cls(**args)))
    model.set_params(callbacks=callbacks)
    loaded = fusekit.load(model.save(tmp_path / "m.safetensors"))
    assert [(n, type(c).__name__) for n, c in loaded.callbacks] == [
        (n, type(c).__name__) for n, c in callbacks
    ]


# -- pipeline members: sizes checked before reading ------------------------------------------------
def _inflate(path, member, size):
    """Replace ``member`` by ``size`` zero bytes (a few KB once deflated), written in chunks."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            if name != member:
                archive.writestr(name, data)
                continue
            with archive.open(name, "w", force_zip64=True) as stream:
                chunk = bytes(2**20)
                for _ in range(size // len(chunk)):
                    stream.write(chunk)


@pytest.mark.parametrize("member", ["steps.skops", "estimator.safetensors", "manifest.json"])
def test_a_member_that_inflates_hugely_is_not_read(member, tmp_path):
    import tracemalloc

    model, _ = _pipeline()
    path = fusekit.save(model, tmp_path / "p.zip")
    _inflate(path, member, 64 * 2**20)
    assert path.stat().st_size < 2**20
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError) as error:
            fusekit.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20
    assert error.match(rf"p\.zip: {member} would inflate to 67108864 bytes")


def test_a_member_of_another_size_than_the_manifest_says_is_refused(tmp_path):
    model, _ = _pipeline()
    path = fusekit.save(model, tmp_path / "p.zip")
    rezip(path, lambda members: members.update({"steps.skops": members["steps.skops"] + b"x"}))
    with pytest.raises(ModelFileError, match=r"steps\.skops holds \d+ bytes, but the manifest"):
        fusekit.load(path)
