"""UDML's declared parameter constraints, seen from the estimator.

A bad value of any declared parameter is refused at ``fit`` (not in ``__init__``), by name and
with the weighting's registry label, before anything is built; ``None`` (the preset's value)
and values on the closed edges of the declared ranges are accepted.
"""

from __future__ import annotations

import math

import pytest

from fusekit import FusionClassifier
from fusekit.testing import check_bad_value_refused, check_boundary_fits, check_declared_coverage
from fusekit.testing.fixtures import make_data

#: ``(parameter, a value its declaration refuses)``, one row (or more) per declared parameter.
BAD = [
    ("preset", "cvpr"),
    ("stage1_fraction", 1.5),
    ("noise_levels", (0, -1)),
    ("noise_levels", 3),
    ("clean_fraction", -0.1),
    ("noise_scale", -0.2),
    ("full_corruption", "yes"),
    ("target_offset", -1.0),
    ("estimator_hidden", 0),
    ("estimator_dropout", 1.0),
    ("estimator_activation", "softmax"),
    ("estimator_input", "var"),
    ("est_weight", math.nan),
    ("uni_weight", -1.0),
    ("kl_weight", "1e-5"),
    ("uncertainty_power", 0.0),
    ("residual", 1),
    ("dependency_on", "both"),
    ("dependency_norm", "l3"),
    ("dependency_estimate", "ema"),
    ("dependency", None),
    ("uncertainty", "entropy"),
    ("uncertainty_warmup_epochs", 1.5),
    ("estimate_in_stage1", "no"),
    ("detach_weights", 0),
    ("uncertainty_transform", "exp"),
    ("uni_head", "both"),
]


def test_every_declared_parameter_has_a_bad_value_case():
    check_declared_coverage("weighting", "udml", BAD)


@pytest.mark.parametrize(("parameter", "value"), BAD)
def test_a_bad_value_is_refused_at_fit_by_name(parameter, value):
    X, y = make_data(2, n=12)
    check_bad_value_refused("weighting", "udml", parameter, value, X=X, y=y)


def test_no_noise_level_is_refused_at_build():
    X, y = make_data(2, n=12)
    model = FusionClassifier(weighting="udml", weighting__noise_levels=(), max_epochs=1)
    with pytest.raises(ValueError, match=r"udml: noise_levels must hold at least one level"):
        model.fit(X, y)


def test_values_at_the_bounds_are_accepted():
    X, y = make_data(2, n=24)
    edges = {
        "stage1_fraction": 0.0,
        "noise_levels": [0.0],
        "clean_fraction": 1.0,
        "estimator_dropout": 0.0,
        "uncertainty_warmup_epochs": 0,
        "uni_weight": 0.0,
    }
    model = FusionClassifier(max_epochs=2, batch_size=8)
    check_boundary_fits("weighting", "udml", edges, estimator=model, X=X, y=y)
