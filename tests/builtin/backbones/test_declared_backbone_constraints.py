"""The built-in backbones' declared parameter constraints, seen from the estimator: one bad value
per parameter is refused at ``fit`` (never at construction, as scikit-learn's estimators), by
name, with the backbone's registry label, before anything trains; a value on the boundary fits.

The bad values are picked by hand from each backbone's docstring and ``build`` (a size of 0, a
bool given as a size, a fraction of 1, a name that is not an option), the expected output
shapes of the boundary values from the shapes the docstrings state.
"""

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from fusekit import FusionClassifier, Modalities
from fusekit.engine.registry import get_registry

N = 12

#: (backbone, input kind, parameter, bad value): every declared parameter of each backbone.
BAD = [
    ("mlp", "vector", "hidden", 0),
    ("mlp", "vector", "hidden", True),
    ("mlp", "vector", "depth", 1.5),
    ("mlp", "vector", "dropout", 1.0),
    ("mlp", "vector", "norm", "group"),
    ("mlp", "vector", "activation", "swish"),
    ("categorical", "categorical", "embedding_dim", 0),
    ("categorical", "categorical", "output", "grid"),
    ("categorical", "categorical", "dropout", -0.1),
    ("cnn2d", "image", "channels", 0),
    ("cnn2d", "image", "depth", True),
    ("cnn2d", "image", "batch_norm", "yes"),
    ("conv1d", "sequence", "hidden", 0),
    ("conv1d", "sequence", "depth", 0),
    ("conv1d", "sequence", "kernel_size", 0),
    ("conv1d", "sequence", "dropout", 1.0),
    ("conv1d", "sequence", "activation", "none"),
    ("gru", "sequence", "hidden", 0),
    ("gru", "sequence", "layers", 0),
    ("gru", "sequence", "bidirectional", 1),
    ("gru", "sequence", "dropout", 1.0),
    ("hashed_text", "text", "n_buckets", 0),
    ("hashed_text", "text", "dim", 2.0),
    ("hashed_text", "text", "ngram_range", (0, 2)),
    ("hashed_text", "text", "ngram_range", (1,)),
    ("hashed_text", "text", "max_tokens", 0),
    ("hashed_text", "text", "dropout", 1),
    ("hashed_text", "text", "empty_is_missing", "no"),
    ("transformer", "sequence", "dim", 0),
    ("transformer", "sequence", "heads", 0),
    ("transformer", "sequence", "layers", -1),
    ("transformer", "sequence", "dropout", float("nan")),
]

#: (backbone, input kind, boundary parameters, output shape the docstring gives for them).
BOUNDARY = [
    ("mlp", "vector", {"hidden": 1, "depth": 1}, (1,)),
    ("categorical", "categorical", {"embedding_dim": 1, "dropout": 0.0}, (2,)),  # 2 columns
    ("cnn2d", "image", {"channels": 1, "depth": 1, "batch_norm": False}, (1,)),
    ("conv1d", "sequence", {"hidden": 1, "kernel_size": 1}, (4, 1)),
    ("gru", "sequence", {"hidden": 1, "layers": 1}, (4, 1)),
    ("hashed_text", "text", {"dim": 1, "n_buckets": 1, "ngram_range": [1, 1]}, (1,)),
    ("transformer", "sequence", {"dim": 1, "heads": 1, "layers": 1}, (4, 1)),
]


def _data(kind):
    rng = np.random.default_rng(0)
    y = np.arange(N) % 2
    values = {
        "vector": rng.normal(size=(N, 3)),
        "sequence": rng.normal(size=(N, 4, 2)),
        "image": rng.normal(size=(N, 1, 4, 4)),
        "text": np.array([["great fun" if t else "dull awful"] for t in y], dtype=object),
        "categorical": np.array([["red" if t else "blue", "S"] for t in y], dtype=object),
    }[kind]
    return Modalities(x=values, v=rng.normal(size=(N, 2))), y


def _model(name, **params):
    nested = {f"backbone__x__{key}": value for key, value in params.items()}
    return FusionClassifier(
        backbone={"x": name, "v": "mlp"}, max_epochs=1, random_state=0, **nested
    )


def test_every_declared_parameter_has_a_bad_value_here():
    registry = get_registry()
    for name in {row[0] for row in BAD}:
        declared = set(registry.get("backbone", name).parameter_constraints)
        assert declared == {param for b, _, param, _ in BAD if b == name}, name


@pytest.mark.parametrize(("name", "kind", "param", "value"), BAD)
def test_a_bad_value_is_refused_at_fit_by_name(name, kind, param, value):
    X, y = _data(kind)
    model = _model(name, **{param: value})  # the constructor validates nothing
    assert model.get_params()[f"backbone__x__{param}"] is value
    with pytest.raises(
        InvalidParameterError, match=rf"^The '{param}' parameter of backbone of 'x' {name} must be"
    ):
        model.fit(X, y)
    assert not hasattr(model, "module_")


@pytest.mark.parametrize(("name", "kind", "params", "shape"), BOUNDARY)
def test_the_boundary_values_fit(name, kind, params, shape):
    X, y = _data(kind)
    model = _model(name, **params).fit(X, y)
    assert model.module_.spec.feature_shapes["x"] == shape
