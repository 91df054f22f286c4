"""The weightings' declared parameter constraints, seen from the estimator.

A bad value of any declared parameter is refused at ``fit`` (never in ``__init__``, scikit-learn's
rule), by name and with the weighting's registry label, before any training; a value on the
boundary of its declared range is accepted and trains. The table below holds one bad value per
declared parameter, and a test ties it to the declarations, so a new parameter needs a case.
"""

from __future__ import annotations

import math

import pytest
from weightings_helpers import make_data

from fusekit import FusionClassifier
from fusekit.engine.registry import get_registry
from fusekit.plugin.constraints import InvalidParameterError

#: ``(weighting, parameter, a value its declaration refuses)``, one row per declared parameter.
BAD = [
    ("mbsd", "start_epoch", -1),
    ("mbsd", "end_epoch", 1.5),
    ("mbsd", "kl_input", "logits"),
    ("mbsd", "unimodal", "probes"),
    ("mla", "shared_dim", 0),
    ("mmpareto", "gamma", 0.0),
    ("modality_dropout", "p", 1.5),
    ("modality_dropout", "keep_one", "yes"),
    ("ogm_ge", "alpha", 0),
    ("ogm_ge", "start_epoch", -1),
    ("ogm_ge", "end_epoch", -1),
    ("ogm_ge", "noise", "no"),
    ("ogm_ge", "unimodal", "both"),
    ("ogm_ge", "min_param_dim", -1),
    ("opm", "q_base", 1.5),
    ("opm", "lam", -0.1),
    ("opm", "p_exe", "0.5"),
    ("opm", "warmup_epochs", 1.5),
    ("opm", "unimodal", "both"),
    ("pmr", "alpha", -1.0),
    ("pmr", "mu", -1.0),
    ("pmr", "momentum", 1.0),
    ("pmr", "start_epoch", True),
    ("pmr", "end_epoch", "5"),
    ("pmr", "entropy_epochs", 2.5),
    ("prob_embedding", "kl_weight", -1.0),
    ("prob_embedding", "sample", "no"),
    ("qmf", "lam", -0.1),
    ("qmf", "temperature", 0.0),
    ("qmf", "detach_confidence", "no"),
    ("reconboost", "weight1", -1.0),
    ("reconboost", "weight2", -1.0),
    ("reconboost", "alpha", -0.5),
    ("reconboost", "boost_rate", math.inf),
    ("reconboost", "boost_epochs", 0),
    ("reconboost", "rectify_epochs", 1.5),
    ("relearning", "move_lambda", -1.0),
    ("relearning", "reinit_epoch", 0),
    ("relearning", "reinit_num", -1),
    ("relearning", "validation_fraction", 1.0),
    ("sample_valuation", "warmup_epochs", -1),
    ("sample_valuation", "value", "shapley"),
    ("sample_valuation", "level", "dataset"),
    ("sample_valuation", "part_ratio", 0.0),
    ("sample_valuation", "alpha", -1.0),
    ("static", "learnable", "yes"),
    ("static", "init", 0.5),
    ("tmc", "annealing_epochs", 0),
    ("umt", "scaling", -1.0),
    ("umt", "teacher_epochs", 0),
    ("umt", "start_epoch", -1),
    ("umt", "end_epoch", math.nan),
    ("unimodal_aux", "weight", -1.0),
]

#: One value per weighting on the (closed) edge of its declared range: accepted, and it trains.
BOUNDARY = {
    "mbsd": {"start_epoch": 0, "end_epoch": 0},
    "mla": {"shared_dim": 1},
    "mmpareto": {"gamma": 1e-6},
    "modality_dropout": {"p": 1.0},
    "ogm_ge": {"min_param_dim": 0, "end_epoch": 0},
    "opm": {"q_base": 1, "p_exe": 0.0, "lam": 0, "warmup_epochs": 0},
    "pmr": {"momentum": 0.0, "alpha": 0.0, "entropy_epochs": 0},
    "prob_embedding": {"kl_weight": 0.0},
    "qmf": {"lam": 0.0},
    "reconboost": {"rectify_epochs": 0, "weight2": 0.0},
    "relearning": {"reinit_epoch": 1, "reinit_num": 0, "validation_fraction": 0.0},
    "sample_valuation": {"warmup_epochs": 0, "part_ratio": 1.0, "alpha": 0.0},
    "static": {"init": {}, "learnable": False},
    "tmc": {"annealing_epochs": 1},
    "umt": {"teacher_epochs": 1, "scaling": 0.0},
    "unimodal_aux": {"weight": 0.0},
}


def test_every_declared_parameter_has_a_bad_value_case():
    weightings = get_registry().names("weighting")
    for name in BOUNDARY:
        declared = set(get_registry().get("weighting", name).parameter_constraints)
        cased = {parameter for weighting, parameter, _ in BAD if weighting == name}
        assert cased == declared, f"{name}: cases {sorted(cased)}, declared {sorted(declared)}"
    assert set(BOUNDARY) <= set(weightings)


@pytest.mark.parametrize(("name", "parameter", "value"), BAD)
def test_a_bad_value_is_refused_at_fit_by_name(name, parameter, value):
    X, y = make_data(2, n=12)
    model = FusionClassifier(weighting=name, max_epochs=1, **{f"weighting__{parameter}": value})
    with pytest.raises(InvalidParameterError) as raised:
        model.fit(X, y)
    message = str(raised.value)
    assert message.startswith(f"The {parameter!r} parameter of weighting {name} must be"), message
    assert f"Got {value!r} instead" in message
    assert not hasattr(model, "module_")  # refused before anything was built


@pytest.mark.parametrize(("name", "params"), sorted(BOUNDARY.items()))
def test_a_boundary_value_is_accepted(name, params):
    X, y = make_data(2, n=24)
    nested = {f"weighting__{key}": value for key, value in params.items()}
    FusionClassifier(weighting=name, max_epochs=2, batch_size=8, **nested).fit(X, y)
