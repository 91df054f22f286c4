"""MWAM's declared parameter constraints, seen from the estimator.

A bad value of any declared parameter is refused at ``fit`` (not in ``__init__``), by name and
with the weighting's registry label, before anything is built; values on the closed edges of the
declared ranges are accepted; ``band <= patch_size // 2`` (a relation) is checked in ``build``.
"""

from __future__ import annotations

import math

import pytest

from fusekit import FusionClassifier
from fusekit.engine.registry import get_registry
from fusekit.plugin.constraints import InvalidParameterError
from fusekit.testing.fixtures import make_data

#: ``(parameter, a value its declaration refuses)``, one per declared parameter.
BAD = [
    ("frm_source", "logits"),
    ("frm_mode", "fft"),
    ("patch_size", 1),
    ("band", 0),
    ("eps", 0.0),
    ("reduce", "median"),
    ("ema", 1.0),
    ("soft_begin", "yes"),
    ("alpha", "x"),
    ("beta", -1.0),
    ("gamma", True),
    ("sharpness", None),
    ("apply", "feature"),
    ("ordered_vectors", 1),
]


def test_every_declared_parameter_has_a_bad_value_case():
    declared = set(get_registry().get("weighting", "mwam").parameter_constraints)
    assert {name for name, _ in BAD} == declared


@pytest.mark.parametrize(("parameter", "value"), BAD)
def test_a_bad_value_is_refused_at_fit_by_name(parameter, value):
    X, y = make_data(2, n=12)
    model = FusionClassifier(weighting="mwam", max_epochs=1, **{f"weighting__{parameter}": value})
    with pytest.raises(InvalidParameterError) as raised:
        model.fit(X, y)
    message = str(raised.value)
    assert message.startswith(f"The {parameter!r} parameter of weighting mwam must be"), message
    assert not hasattr(model, "module_")


def test_alpha_must_be_finite():
    X, y = make_data(2, n=12)
    model = FusionClassifier(weighting="mwam", weighting__alpha=math.inf, max_epochs=1)
    with pytest.raises(InvalidParameterError, match="'alpha' parameter of weighting mwam"):
        model.fit(X, y)


def test_boundary_values_are_accepted_and_band_above_half_the_patch_is_refused():
    X, y = make_data(2, n=24)
    edges = {"patch_size": 2, "band": 1, "ema": 0.0, "beta": 0.0, "sharpness": 0.0}
    nested = {f"weighting__{key}": value for key, value in edges.items()}
    FusionClassifier(
        weighting="mwam", weighting__ordered_vectors=True, max_epochs=1, batch_size=8, **nested
    ).fit(X, y)
    model = FusionClassifier(
        weighting="mwam", weighting__patch_size=4, weighting__band=3, max_epochs=1
    )
    with pytest.raises(ValueError, match=r"mwam: band must be at most patch_size // 2 = 2.*got 3"):
        model.fit(X, y)
