"""SCFAE's declared parameter constraints (the presets inherit them), seen from the estimator.

A bad value of any declared parameter is refused at ``fit`` (not in ``__init__``), by name and
with the registry label of the name the user chose (``fusion scfae_mse``), before anything is
built; values next to the open bounds and on the closed ones are accepted.
"""

from __future__ import annotations

import math

import pytest
from fusekit_scfae import PRESETS, SCFAEFusion

from fusekit import FusionClassifier
from fusekit.plugin.constraints import InvalidParameterError
from fusekit.testing.fixtures import make_data

#: ``(parameter, a value its declaration refuses)``, one row (or more) per declared parameter.
BAD = [
    ("n", 0),
    ("n", True),
    ("n", 2.0),
    ("b", 0.0),
    ("b", 1.0),
    ("lam", -1.0),
    ("lam", math.inf),
    ("recon", "l1"),
    ("recon_act", "relu"),
    ("recon_from", "x"),
    ("missing_shared", "skip"),
    ("detach_target", "yes"),
    ("modality_order", "ab"),
    ("swiglu", 1),
    ("structure", "tree"),
    ("branch", "all"),
    ("zero_absent_outputs", None),
    ("temperature", 0.0),
    ("temperature", "hot"),
    ("gradient_diagnostics", "no"),
]


def _refused(name, parameter, value):
    X, y = make_data(2, n=12)
    model = FusionClassifier(fusion=name, max_epochs=1, **{f"fusion__{parameter}": value})
    with pytest.raises(InvalidParameterError) as raised:
        model.fit(X, y)
    assert not hasattr(model, "module_")
    return str(raised.value)


def test_every_declared_parameter_has_a_bad_value_case():
    assert {name for name, _ in BAD} == set(SCFAEFusion.parameter_constraints)
    assert all(preset.parameter_constraints is SCFAEFusion.parameter_constraints
               for preset in PRESETS.values())  # fmt: skip


@pytest.mark.parametrize(("parameter", "value"), BAD)
def test_a_bad_value_is_refused_at_fit_by_name(parameter, value):
    message = _refused("scfae", parameter, value)
    assert message.startswith(f"The {parameter!r} parameter of fusion scfae must be"), message


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_a_preset_is_named_by_its_own_registry_name(preset):
    message = _refused(preset, "b", 1.5)
    assert message.startswith(f"The 'b' parameter of fusion {preset} must be"), message


def test_values_at_the_bounds_are_accepted():
    X, y = make_data(2, n=24)
    edges = {"n": 1, "b": 0.99, "lam": 0.0, "temperature": 1e-3, "modality_order": ("b", "a")}
    nested = {f"fusion__{key}": value for key, value in edges.items()}
    FusionClassifier(fusion="scfae", max_epochs=1, batch_size=8, **nested).fit(X, y)
