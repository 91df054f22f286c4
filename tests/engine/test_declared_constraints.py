"""Constraints as data: the estimator's parameters all have a declared constraint, and a
component's ``parameter_constraints`` are checked once, when the engine resolves it, with a label
from its registry entry (never typed by the plugin).

The expected labels are written out by hand from the registry names (``mlp``) and the places
in the network (``of 'a'``); the expected verdicts follow the declared intervals.
"""

import inspect

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from fusekit import FusionClassifier, FusionRegressor
from fusekit.builtin.mlp_backbone import MLPBackbone
from fusekit.engine.registry import get_registry
from fusekit.engine.resolve import resolve, resolve_backbones
from fusekit.plugin import COMPONENT_KINDS


@pytest.mark.parametrize("estimator", [FusionClassifier, FusionRegressor])
def test_every_estimator_parameter_has_a_declared_constraint(estimator):
    params = set(estimator._get_param_names())
    declared = set(estimator._parameter_constraints)
    assert params - declared == set(), "parameters without a constraint"
    assert declared - params == set(), "constraints for parameters that do not exist"


def test_declared_component_constraints_name_real_parameters():
    """A constraint for a name ``__init__`` does not take would never be checked."""
    registry = get_registry()
    for kind in COMPONENT_KINDS:
        for name in registry.names(kind):
            cls = registry.get(kind, name)
            accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
            unknown = set(cls.parameter_constraints) - accepted
            assert not unknown, f"{kind} {name}: constraints for {sorted(unknown)}"


def test_a_bad_value_is_refused_at_resolution_with_the_registry_label():
    with pytest.raises(InvalidParameterError, match=r"'dropout' parameter of backbone mlp"):
        resolve("backbone", "mlp", {"dropout": 1.5})
    with pytest.raises(InvalidParameterError, match=r"'norm' parameter of backbone of 'a' mlp"):
        resolve_backbones("mlp", {"norm": "group"}, ("a", "b"))
    # an instance handed in is checked as well, under its class's registered name
    with pytest.raises(InvalidParameterError, match=r"'activation' parameter of backbone mlp"):
        resolve("backbone", MLPBackbone(activation="swish"), {})


@pytest.mark.parametrize("value", [0.0, 0.5, 0.999])
def test_values_inside_the_declared_interval_pass(value):
    assert resolve("backbone", "mlp", {"dropout": value}).component.dropout == value


def test_fit_refuses_before_training_and_names_the_component():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(12, 4)), np.arange(12) % 2
    model = FusionClassifier(modalities={"a": 2, "b": 2}, max_epochs=1, backbone__norm="group")
    with pytest.raises(ValueError, match=r"'norm' parameter of backbone of 'a' mlp must be"):
        model.fit(X, y)
    assert not hasattr(model, "net_")
