"""The plugin's backbones' declared parameter constraints, seen from the estimator: one bad value
per parameter is refused at ``fit`` (never at construction), by name, with the backbone's
registry label, before any model is read; values on the boundary fit (hf_text and hf_image on
the tiny random models of ``conftest``)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from fusekit import FusionClassifier
from fusekit.engine.registry import get_registry

#: (backbone, parameter, bad value): every declared parameter of each backbone.
BAD = [
    ("hf_text", "path", 3),
    ("hf_text", "pooling", "max"),
    ("hf_text", "max_length", 0),
    ("hf_text", "freeze", -1),
    ("hf_text", "freeze", "some"),
    ("hf_text", "empty_is_missing", "yes"),
    ("hf_image", "path", ["a"]),
    ("hf_image", "pooling", "first"),
    ("hf_image", "freeze", 1.5),
    ("wordllama", "dim", 257),  # the shipped matrix has 256 columns
    ("wordllama", "dim", 0),
    ("wordllama", "max_length", True),
    ("wordllama", "freeze", 1),
    ("wordllama", "projection", 0),
    ("wordllama", "dropout", 1.0),
    ("wordllama", "empty_is_missing", None),
]


def _frame(n=8):
    rng = np.random.default_rng(0)
    y = np.arange(n) % 2
    text = [("a great fun film" if t else "dull awful") for t in y]
    return pd.DataFrame({"tab__a": rng.normal(size=n), "x__review": text}), y


def _model(name, **params):
    nested = {f"backbone__x__{key}": value for key, value in params.items()}
    return FusionClassifier(
        backbone={"tab": "mlp", "x": name}, max_epochs=1, random_state=0, **nested
    )


def test_every_declared_parameter_has_a_bad_value_here():
    registry = get_registry()
    for name in {row[0] for row in BAD}:
        declared = set(registry.get("backbone", name).parameter_constraints)
        assert declared == {param for b, param, _ in BAD if b == name}, name


@pytest.mark.parametrize(("name", "param", "value"), BAD)
def test_a_bad_value_is_refused_at_fit_by_name(name, param, value):
    X, y = _frame()
    model = _model(name, **{param: value})  # the constructor validates nothing
    assert model.get_params()[f"backbone__x__{param}"] is value
    with pytest.raises(
        InvalidParameterError, match=rf"^The '{param}' parameter of backbone of 'x' {name} must be"
    ):
        model.fit(X, y)
    assert not hasattr(model, "module_")


def test_hf_text_boundary_values_fit(bert):
    X, y = _frame()
    model = _model("hf_text", path=Path(bert), max_length=2, freeze=0, pooling="mean").fit(X, y)
    backbone = model.module_.backbones["x"]
    assert backbone.frozen  # freeze=0 trains no layer
    assert model.input_encoders_["x"].max_length == 2


def test_hf_image_boundary_values_fit(vit):
    rng = np.random.default_rng(0)
    X = {"tab": rng.normal(size=(8, 2)), "x": rng.uniform(size=(8, 3, 32, 32))}
    model = _model("hf_image", path=Path(vit), freeze=0, pooling="cls")
    assert model.fit(X, np.arange(8) % 2).module_.backbones["x"].frozen


def test_wordllama_boundary_values_fit():
    X, y = _frame()
    model = _model("wordllama", dim=1, max_length=1, projection=1, dropout=0.0).fit(X, y)
    assert model.module_.spec.feature_shapes["x"] == (1,)  # Linear(dim, projection)
