"""The built-in fusions' declared parameter constraints, seen from the estimator: one bad value
per parameter is refused at ``fit`` (never at construction), by name, with the fusion's registry
label, before anything trains; values on the boundary fit.

The fused widths expected of the boundary values are worked from the fusions' docstrings, for
identity backbones over modalities of widths 3 and 2 (M = 2) and 2 classes.
"""

import math

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from fusekit import FusionClassifier
from fusekit.engine.registry import get_registry

RNG = np.random.default_rng(0)
X = {"a": RNG.normal(size=(12, 3)), "b": RNG.normal(size=(12, 2))}
Y = np.arange(12) % 2

#: (fusion, parameter, bad value): every declared parameter of each fusion.
BAD = [
    ("attention", "dim", 0),
    ("attention", "attention_dim", True),
    ("concat", "indicators", 1),
    ("crossmodal", "dim", 0),
    ("crossmodal", "heads", 2.0),
    ("crossmodal", "layers", 0),
    ("crossmodal", "dropout", 1.0),
    ("embracenet", "dim", 0),
    ("gated", "dim", -1),
    ("late", "weights", "softmax"),
    ("lowrank", "rank", 0),
    ("lowrank", "dim", 1.5),
    ("mean", "dim", 0),
    ("mean", "activation", "swish"),
    ("mean", "indicators", "yes"),
    ("sum", "dim", "8"),
    ("sum", "activation", None),
    ("sum", "indicators", 0),
    ("mmcosine", "scaling", 0),
    ("tensor", "dim", 0),
    ("tensor", "dropout", -0.5),
    ("tensor", "max_width", 0),
]

#: (fusion, boundary parameters, fused width).
BOUNDARY = [
    ("attention", {"dim": 1, "attention_dim": 1}, 1),
    ("concat", {"indicators": True}, 3 + 2 + 2),  # Σ D_m + M
    ("crossmodal", {"dim": 1, "heads": 1, "layers": 1, "dropout": 0.0}, 2 * 1 * 1 + 2),
    ("embracenet", {"dim": 1}, 1),
    ("gated", {"dim": 1}, 1),
    ("late", {"weights": "learned"}, 2),  # the classes' logits
    ("lowrank", {"rank": 1, "dim": 1}, 1),
    ("mean", {"dim": 1, "indicators": True}, 1 + 2),
    ("sum", {"dim": 1, "activation": "none"}, 1),
    ("mmcosine", {"scaling": 1e-3}, 2),
    ("tensor", {"dim": 1, "max_width": 4}, (1 + 1) ** 2),  # (dim + 1)^M == max_width
]


def _model(name, **params):
    nested = {f"fusion__{key}": value for key, value in params.items()}
    return FusionClassifier(
        backbone="identity", fusion=name, max_epochs=1, random_state=0, **nested
    )


def test_every_declared_parameter_has_a_bad_value_here():
    registry = get_registry()
    for name in {row[0] for row in BAD}:
        declared = set(registry.get("fusion", name).parameter_constraints)
        assert declared == {param for f, param, _ in BAD if f == name}, name


@pytest.mark.parametrize(("name", "param", "value"), BAD)
def test_a_bad_value_is_refused_at_fit_by_name(name, param, value):
    model = _model(name, **{param: value})  # the constructor validates nothing
    assert model.get_params()[f"fusion__{param}"] is value
    with pytest.raises(
        InvalidParameterError, match=rf"^The '{param}' parameter of fusion {name} must be"
    ):
        model.fit(X, Y)
    assert not hasattr(model, "module_")


def test_an_infinite_scaling_is_refused():
    with pytest.raises(InvalidParameterError, match=r"'scaling' parameter of fusion mmcosine"):
        _model("mmcosine", scaling=math.inf).fit(X, Y)


@pytest.mark.parametrize(("name", "params", "width"), BOUNDARY)
def test_the_boundary_values_fit(name, params, width):
    model = _model(name, **params).fit(X, Y)
    assert model.module_.fused_width == width
