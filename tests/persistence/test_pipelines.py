"""fusekit.save / fusekit.load for a Pipeline ending in a fusekit estimator: no pickle, only
trusted types built (the no-pickle guard itself is in tests/persistence/test_persistence.py)."""

import zipfile

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import fusekit
from fusekit import FusionClassifier, FusionRegressor
from fusekit.datasets import AbsentWhereMissing
from fusekit.persistence import ModelFileError
from fusekit.saving import UntrustedTypesError


def _table(n=90, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    frame = pd.DataFrame(
        {
            "pitch": rng.normal(size=n) + y,
            "energy": rng.normal(size=n),
            "hue": rng.normal(size=n) - y,
            "kind": np.array(["x", "y", "z"])[rng.integers(0, 3, n)],
        }
    )
    return frame, y


def _prep(audio=None):
    return ColumnTransformer(
        [
            ("audio", audio or StandardScaler(), ["pitch", "energy"]),
            ("video", StandardScaler(), ["hue"]),
            ("meta", OneHotEncoder(sparse_output=False), ["kind"]),
        ]
    ).set_output(transform="pandas")


def test_regressor_pipeline_with_fusekit_transformer_round_trips(tmp_path):
    """AbsentWhereMissing (fusekit's own transformer) is trusted without being named."""
    frame, y = _table()
    frame.loc[::7, ["pitch", "energy"]] = np.nan  # audio missing in some rows
    prep = _prep(audio=AbsentWhereMissing(make_pipeline(SimpleImputer(), StandardScaler())))
    model = make_pipeline(prep, FusionRegressor(max_epochs=2, random_state=0))
    model.fit(frame, y.astype(float) * 2)
    loaded = fusekit.load(fusekit.save(model, tmp_path / "p.zip"))
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))


class Doubler(TransformerMixin, BaseEstimator):
    """A user's transformer: not trusted unless named. Records any state restoration."""

    restored = 0

    def fit(self, X, y=None):
        self.fitted_ = True
        return self

    def transform(self, X):
        return X * 2

    def __setstate__(self, state):
        type(self).restored += 1
        self.__dict__.update(state)


def _doubled(tmp_path):
    frame, y = _table()
    numbers = frame[["pitch", "energy", "hue"]].to_numpy()
    model = make_pipeline(Doubler(), FusionClassifier(modalities={"a": 2, "b": 1}, max_epochs=2))
    model.fit(numbers, y)
    return model, numbers, fusekit.save(model, tmp_path / "p.zip")


def test_an_untrusted_type_is_refused_before_anything_is_built(tmp_path):
    _, _, path = _doubled(tmp_path)
    Doubler.restored = 0
    name = f"{Doubler.__module__}.Doubler"
    with pytest.raises(UntrustedTypesError, match=rf"not trusted.*\['{name}'\].*trusted=") as error:
        fusekit.load(path)
    assert error.value.types == [name]
    assert Doubler.restored == 0


def test_a_type_named_trusted_loads(tmp_path):
    model, numbers, path = _doubled(tmp_path)
    loaded = fusekit.load(path, trusted=[f"{Doubler.__module__}.Doubler"])
    assert isinstance(loaded.steps[0][1], Doubler)
    np.testing.assert_array_equal(loaded.predict_proba(numbers), model.predict_proba(numbers))


def _rezip(path, edit):
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    edit(members)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


@pytest.mark.parametrize("member", ["steps.skops", "estimator.safetensors"])
def test_an_altered_member_is_detected(member, tmp_path):
    frame, y = _table()
    model = make_pipeline(_prep(), FusionClassifier(max_epochs=1)).fit(frame, y)
    path = fusekit.save(model, tmp_path / "p.zip")

    def flip(members):
        data = bytearray(members[member])
        data[len(data) // 2] ^= 0x01
        members[member] = bytes(data)

    _rezip(path, flip)
    with pytest.raises(ModelFileError, match=rf"integrity check: {member}"):
        fusekit.load(path)


def test_a_truncated_pipeline_file(tmp_path):
    frame, y = _table()
    model = make_pipeline(_prep(), FusionClassifier(max_epochs=1)).fit(frame, y)
    path = fusekit.save(model, tmp_path / "p.zip")
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(ModelFileError, match="truncated or corrupted"):
        fusekit.load(path)


def test_only_fusekit_pipelines_are_saved(tmp_path):
    frame, y = _table()
    other = make_pipeline(_prep(), LogisticRegression()).fit(frame, y)
    with pytest.raises(TypeError, match=r"last step 'logisticregression' is LogisticRegression"):
        fusekit.save(other, tmp_path / "p.zip")
    with pytest.raises(TypeError, match="got LogisticRegression"):
        fusekit.save(LogisticRegression(), tmp_path / "p.zip")


def test_save_of_an_estimator_is_its_own_file(tmp_path, multimodal):
    X, y = multimodal
    model = FusionClassifier(max_epochs=1, random_state=0).fit(X, y)
    path = fusekit.save(model, tmp_path / "m.safetensors")
    assert path.read_bytes()[:4] != b"PK\x03\x04"
    np.testing.assert_array_equal(fusekit.load(path).predict_proba(X), model.predict_proba(X))
