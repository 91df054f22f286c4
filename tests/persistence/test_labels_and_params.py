"""save/load keeps labels of every type ``np.unique`` accepts and the training parameters."""

import warnings
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from skorch.callbacks import EarlyStopping, GradientNormClipping
from skorch.dataset import ValidSplit

import fusekit
from fusekit import FusionClassifier
from fusekit.encoding import Encoder
from fusekit.persistence import ParameterNotSavedWarning

NAMES = np.array(["low", "mid", "high"])
SORTED = sorted(NAMES.tolist())  # Python str


def _labels(form, codes):
    """``codes`` (ints 0..2) as labels of the given form, and the expected sorted classes."""
    if form == "object strings":
        return NAMES[codes].astype(object), SORTED
    if form == "pandas default strings":
        return pd.Series(NAMES[codes]), SORTED
    if form == "pandas string dtype":
        return pd.Series(NAMES[codes], dtype="string"), SORTED
    if form == "categorical strings":
        return pd.Categorical(NAMES[codes]), SORTED
    if form == "categorical ints":
        return pd.Series(codes * 10, dtype="category"), [0, 10, 20]
    if form == "unicode":
        return NAMES[codes], SORTED
    if form == "bool":
        return codes > 0, [False, True]
    raise AssertionError(form)


FORMS = [
    "object strings", "pandas default strings", "pandas string dtype", "categorical strings",
    "categorical ints", "unicode", "bool",
]  # fmt: skip


@pytest.mark.parametrize("form", FORMS)
def test_labels_round_trip(form, tmp_path, multimodal):
    X, codes = multimodal
    y, expected = _labels(form, codes)
    model = FusionClassifier(max_epochs=2, random_state=0).fit(X, y)
    loaded = fusekit.load(model.save(tmp_path / "m.safetensors"))
    assert loaded.classes_.tolist() == expected
    # same values *and* the same Python types (str stays str, 10 stays int, True stays bool)
    assert [type(c) for c in loaded.classes_.tolist()] == [type(c) for c in expected]
    assert loaded.classes_.dtype == model.classes_.dtype
    before, after = model.predict(X), loaded.predict(X)
    assert after.dtype == before.dtype
    np.testing.assert_array_equal(after, before)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_labels_of_other_types_are_refused_naming_the_type():
    labels = np.empty(2, dtype=object)
    labels[:] = [Fraction(1, 3), Fraction(1, 2)]
    with pytest.raises(
        TypeError, match=r"fitted attribute classes_ holds elements .*\['Fraction'\]"
    ):
        Encoder("values.").top("fitted attribute classes_", labels)


def _training_params():
    return {
        "train_split": ValidSplit(0.25, stratified=True, random_state=3),
        "callbacks": [
            EarlyStopping(patience=2, monitor="valid_loss"),
            ("clip", GradientNormClipping(0.5)),
        ],
    }


def test_train_split_and_callbacks_survive(tmp_path, multimodal):
    """They come back as the same classes with the same arguments, and refitting the loaded
    model trains exactly as refitting the original (same seed, same validation split)."""
    X, y = multimodal
    model = FusionClassifier(max_epochs=4, random_state=0, **_training_params()).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = fusekit.load(model.save(tmp_path / "m.safetensors"))
    split = loaded.train_split
    assert type(split) is ValidSplit
    assert (split.cv, split.stratified, split.random_state) == (0.25, True, 3)
    stop, (name, clip) = loaded.callbacks
    assert type(stop) is EarlyStopping and stop.patience == 2 and stop.monitor == "valid_loss"
    assert name == "clip" and type(clip) is GradientNormClipping
    assert clip.gradient_clip_value == 0.5
    refit, original = loaded.fit(X, y), model.fit(X, y)
    np.testing.assert_array_equal(refit.predict_proba(X), original.predict_proba(X))
    assert len(refit.net_.history) == len(original.net_.history)


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("callbacks", [EarlyStopping(sink=lambda *_: None)]),
        ("train_split", lambda dataset, y=None: (dataset, None)),
        ("random_state", np.random.RandomState(0)),
    ],
)
def test_parameters_that_cannot_be_stored_warn(param, value, tmp_path, multimodal):
    X, y = multimodal
    model = FusionClassifier(max_epochs=1, random_state=0).fit(X, y)
    model.set_params(**{param: value})
    with pytest.warns(ParameterNotSavedWarning, match=rf"parameter {param}="):
        path = model.save(tmp_path / "m.safetensors")
    loaded = fusekit.load(path)
    assert loaded.get_params()[param] is None
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_a_path_parameter_is_stored_as_its_text_and_loads_as_a_path():
    """A component's folder given as ``pathlib.Path`` (hf's ``path``) is stored as its string
    and comes back a Path; a forged path entry that is not a string is refused."""
    from pathlib import Path, PurePosixPath

    from fusekit.encoding import TAG, RefusedValueError, decode

    encoder = Encoder("p")
    for value in (Path("/models/bert"), PurePosixPath("relative/folder")):
        encoded = encoder.value("backbone__text__path", value)
        assert encoded == {TAG: "path", "value": str(value)}
        assert decode(encoded, {}) == Path(str(value))
        assert isinstance(decode(encoded, {}), Path)
    with pytest.raises(RefusedValueError, match="path that is not a string"):
        decode({TAG: "path", "value": ["not", "text"]}, {})
