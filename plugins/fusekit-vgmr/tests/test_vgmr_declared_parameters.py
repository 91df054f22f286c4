"""VGMR's declared parameter constraints, seen from the estimator.

A bad value of any declared parameter is refused at ``fit`` (not in ``__init__``), by name and
with the calibration's registry label, before anything is built; values on the closed edges of
the declared ranges are accepted.
"""

from __future__ import annotations

import pytest

from fusekit import FusionClassifier
from fusekit.testing import check_bad_value_refused, check_boundary_fits, check_declared_coverage
from fusekit.testing.fixtures import make_data

#: ``(parameter, a value its declaration refuses)``, one per declared parameter.
BAD = [
    ("latent_dim", 0),
    ("hidden", 2.5),
    ("alpha", 1.5),
    ("beta", -0.1),
    ("dropout", 1.0),
    ("activation", "swish"),
    ("use_global_value", "yes"),
    ("use_channel_value", 1),
    ("use_agreement", None),
    ("use_discrepancy", "no"),
    ("post_norm", 0),
    ("gate_init", "zeros"),
    ("lambda_value", -1),
    ("lambda_reg", "0.01"),
    ("value_temperature", 0),
    ("value_target", "ranking"),
    ("reg_floor", -0.05),
]


def test_every_declared_parameter_has_a_bad_value_case():
    check_declared_coverage("calibration", "vgmr", BAD)


@pytest.mark.parametrize(("parameter", "value"), BAD)
def test_a_bad_value_is_refused_at_fit_by_name(parameter, value):
    X, y = make_data(2, n=12)
    check_bad_value_refused("calibration", "vgmr", parameter, value, X=X, y=y)


def test_values_at_the_bounds_are_accepted():
    X, y = make_data(2, n=24)
    edges = {
        "latent_dim": 1,
        "hidden": 1,
        "alpha": 1.0,
        "beta": 0.0,
        "dropout": 0.0,
        "lambda_value": 0,
        "reg_floor": 0.0,
    }
    model = FusionClassifier(max_epochs=1, batch_size=8)
    check_boundary_fits("calibration", "vgmr", edges, estimator=model, X=X, y=y)
