"""The built-in weightings' declared parameter constraints, seen from the estimator: one bad value
per parameter is refused at ``fit`` (never at construction), by name, with the weighting's
registry label, before anything trains; values on the boundary fit.

The bad values are picked by hand from each weighting's docstring (a negative weight, a
temperature of 0 where it divides, an epoch that is not a whole number, a fraction of 1, an
infinite rate); the window relation ``end_epoch >= start_epoch`` stays in ``build`` and is
tested in each weighting's own file.
"""

import math

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from fusekit import FusionClassifier
from fusekit.engine.registry import get_registry

RNG = np.random.default_rng(0)
X = {"a": RNG.normal(size=(16, 3)), "b": RNG.normal(size=(16, 2))}
Y = np.arange(16) % 2

#: (weighting, parameter, bad value): every declared parameter of each weighting.
BAD = [
    ("agm", "alpha", -0.1),
    ("agm", "start_epoch", -1),
    ("agm", "end_epoch", 1.5),
    ("agm", "min_param_dim", True),
    ("amco", "sigma", 1.5),
    ("amco", "eps", 0),
    ("amco", "start_epoch", 0.5),
    ("amco", "end_epoch", -1),
    ("arl", "gamma", -1.0),
    ("arl", "temperature", "8"),
    ("arl", "warmup_epochs", -1),
    ("arl", "coefficients", "paper"),
    ("cml", "lam", -0.1),
    ("cml", "subset_loss", "yes"),
    ("cml", "sign_trick", 1),
    ("cml", "start_epoch", -1),
    ("cml", "end_epoch", "80"),
    ("energy", "temperature", 0.0),
    ("energy", "weight_temperature", -1.0),
    ("energy", "aux_weight", math.inf),
    ("energy", "detach", None),
    ("gradient_blending", "super_epoch", 0),
    ("gradient_blending", "validation_fraction", 1.0),
    ("gradient_blending", "estimate_epochs", 2.5),
    ("greedy", "alpha", math.inf),
    ("greedy", "window", 0),
    ("greedy", "warmup_epochs", -1),
    ("greedy", "utilization", "yes"),
    ("lfm", "lr_alpha", -1.0),
    ("lfm", "unimodal", "probes"),
]

#: (weighting, parameters on the boundary of what is declared).
BOUNDARY = [
    ("agm", {"alpha": 0.0, "start_epoch": 0, "end_epoch": 0, "min_param_dim": 0}),
    ("amco", {"sigma": 1.0, "start_epoch": 0, "end_epoch": None}),
    ("arl", {"gamma": 0.0, "temperature": 0.0, "warmup_epochs": 0}),
    ("cml", {"lam": 0.0, "start_epoch": 0, "end_epoch": 0}),
    ("energy", {"aux_weight": 0.0}),
    ("gradient_blending", {"super_epoch": 1, "estimate_epochs": 1}),
    ("greedy", {"alpha": 0.0, "window": 1, "warmup_epochs": 0}),
    ("lfm", {"lr_alpha": 0.0}),
]


def _model(name, **params):
    nested = {f"weighting__{key}": value for key, value in params.items()}
    return FusionClassifier(weighting=name, max_epochs=1, random_state=0, **nested)


def test_every_declared_parameter_has_a_bad_value_here():
    registry = get_registry()
    for name in {row[0] for row in BAD}:
        declared = set(registry.get("weighting", name).parameter_constraints)
        assert declared == {param for w, param, _ in BAD if w == name}, name


@pytest.mark.parametrize(("name", "param", "value"), BAD)
def test_a_bad_value_is_refused_at_fit_by_name(name, param, value):
    model = _model(name, **{param: value})  # the constructor validates nothing
    assert model.get_params()[f"weighting__{param}"] is value
    with pytest.raises(
        InvalidParameterError, match=rf"^The '{param}' parameter of weighting {name} must be"
    ):
        model.fit(X, Y)
    assert not hasattr(model, "module_")


@pytest.mark.parametrize(("name", "params"), BOUNDARY)
def test_the_boundary_values_fit(name, params):
    model = _model(name, **params).fit(X, Y)
    (weighting,) = model.module_.weightings
    assert {key: getattr(weighting, key) for key in params} == params
