"""BTW's and MoE's declared parameter constraints, seen from the estimator.

A bad value of any declared parameter is refused at ``fit`` (not in ``__init__``), by name and
with the component's registry label, before anything is built; a boundary value is accepted.
"""

from __future__ import annotations

import math

import pytest

from fusekit import FusionClassifier
from fusekit.engine.registry import get_registry
from fusekit.plugin.constraints import InvalidParameterError
from fusekit.testing.fixtures import make_data

#: ``(kind, name, parameter, a value its declaration refuses)``, one per declared parameter.
BAD = [
    ("weighting", "btw", "level", "global"),
    ("weighting", "btw", "unimodal", "oof"),
    ("weighting", "btw", "unimodal_epochs", 0),
    ("weighting", "btw", "alpha", 1.5),
    ("weighting", "btw", "alpha_step", -0.1),
    ("weighting", "btw", "alpha_on_improve", "up"),
    ("weighting", "btw", "update_every", True),
    ("weighting", "btw", "predict_weights", "test"),
    ("weighting", "btw", "rescale", "max"),
    ("weighting", "btw_local", "alpha", math.nan),
    ("fusion", "moe", "width", 0),
    ("fusion", "moe", "n_experts", 0),
    ("fusion", "moe", "top_k", 0),
    ("fusion", "moe", "expert_hidden", 2.5),
    ("fusion", "moe", "n_layers", True),
    ("fusion", "moe", "balance", "x"),
]

#: One accepted value per component on the closed edge of its declared ranges.
BOUNDARY = [
    (
        "weighting",
        "btw",
        {"alpha": 1.0, "alpha_step": 0.0, "update_every": 1, "unimodal_epochs": 1},
    ),
    ("weighting", "btw_local", {"alpha": 0.0}),
    ("fusion", "moe", {"width": 1, "n_experts": 1, "top_k": 1, "balance": 0.0}),
]


@pytest.mark.parametrize(("kind", "name"), [("weighting", "btw"), ("fusion", "moe")])
def test_every_declared_parameter_has_a_bad_value_case(kind, name):
    declared = set(get_registry().get(kind, name).parameter_constraints)
    assert {p for k, n, p, _ in BAD if (k, n) == (kind, name)} == declared


@pytest.mark.parametrize(("kind", "name", "parameter", "value"), BAD)
def test_a_bad_value_is_refused_at_fit_by_name(kind, name, parameter, value):
    X, y = make_data(2, n=12)
    model = FusionClassifier(**{kind: name, f"{kind}__{parameter}": value}, max_epochs=1)
    with pytest.raises(InvalidParameterError) as raised:
        model.fit(X, y)
    message = str(raised.value)
    assert message.startswith(f"The {parameter!r} parameter of {kind} {name} must be"), message
    assert not hasattr(model, "module_")


@pytest.mark.parametrize(("kind", "name", "params"), BOUNDARY)
def test_a_boundary_value_is_accepted(kind, name, params):
    X, y = make_data(2, n=24)
    nested = {f"{kind}__{key}": value for key, value in params.items()}
    FusionClassifier(**{kind: name}, **nested, max_epochs=1, batch_size=8).fit(X, y)
