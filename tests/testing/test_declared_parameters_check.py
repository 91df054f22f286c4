"""``fusekit.testing``'s declared-parameter checks on tiny fake components: they pass on a correct
declaration and fail, naming the component and the parameter, on each way one can be wrong (a
declaration that accepts a bad value, a table missing a declared parameter or naming one that
does not exist, a bad value refused by ``build`` instead of the declaration, a boundary the
declaration refuses, a refusal without the parameter's name)."""

from __future__ import annotations

from numbers import Integral

import numpy as np
import pytest
import torch
from torch import nn

from fusekit import FusionClassifier, Modalities
from fusekit.plugin import Backbone, Fusion, Interval, StrOptions, as_vector, vector_size
from fusekit.testing import (
    ContractError,
    check_bad_value_refused,
    check_boundary_fits,
    check_declared_coverage,
    check_declared_parameters,
)

WIDTH_AT_LEAST_ONE = {"width": [Interval(Integral, 1, None, closed="left")]}


class MeanFusion(Fusion):
    """Mean of per-modality projections over the present modalities; ``width`` ≥ 1 declared."""

    parameter_constraints = {**WIDTH_AT_LEAST_ONE, "reduce": [StrOptions({"mean"})]}

    def __init__(self, width: int = 4, reduce: str = "mean") -> None:
        super().__init__()
        self.width = width
        self.reduce = reduce

    def build(self, spec):
        if self.width > 64:  # a rule left to build, not the declaration
            raise ValueError(f"width must be at most 64, got {self.width}")
        self.projections = nn.ModuleDict(
            {m: nn.Linear(vector_size(s), self.width) for m, s in spec.feature_shapes.items()}
        )
        return self.width

    def forward(self, features, mask, output):
        projected = torch.stack(
            [self.projections[m](as_vector(h, output.steps.get(m))) for m, h in features.items()],
            dim=1,
        )  # (B, M, width)
        weights = mask.unsqueeze(-1).to(projected.dtype)
        return (projected * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


class LaxFusion(MeanFusion):
    """Declares ``reduce`` as any string: the bad value ``reduce="max"`` is accepted and trains
    (as the mean)."""

    parameter_constraints = {**WIDTH_AT_LEAST_ONE, "reduce": [str]}


class StrictFusion(MeanFusion):
    """Declares ``width`` > 1: refuses the boundary value 1."""

    parameter_constraints = {
        "width": [Interval(Integral, 1, None, closed="neither")],
        "reduce": [StrOptions({"mean"})],
    }


class LinearBackbone(Backbone):
    """One linear layer per step; ``width`` ≥ 1 declared."""

    input_kinds = ("vector", "sequence")
    parameter_constraints = WIDTH_AT_LEAST_ONE

    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.width = width

    def build(self, input_shape):
        self.layer = nn.Linear(input_shape[-1], self.width)
        return (*input_shape[:-1], self.width)

    def forward(self, x):
        return self.layer(x)


def _data():
    rng = np.random.default_rng(0)
    return Modalities(a=rng.normal(size=(12, 3)), b=rng.normal(size=(12, 2))), np.arange(12) % 2


def test_a_correct_declaration_passes_every_check():
    X, y = _data()
    check_declared_parameters(
        "fusion", MeanFusion, [("width", 0), ("width", True), ("reduce", "max")],
        boundary={"width": 1}, X=X, y=y,
    )  # fmt: skip
    fitted = check_boundary_fits("fusion", MeanFusion, {"width": 1}, X=X, y=y)
    assert fitted.module_.fused_width == 1  # the boundary value reached build


def test_a_declaration_that_accepts_a_bad_value_fails():
    X, y = _data()
    with pytest.raises(ContractError, match=r"LaxFusion: the bad value reduce='max' was accepted"):
        check_bad_value_refused("fusion", LaxFusion, "reduce", "max", X=X, y=y)


def test_a_bad_value_refused_by_build_and_not_by_the_declaration_fails():
    X, y = _data()
    with pytest.raises(
        ContractError, match=r"fusion MeanFusion: width=65 raised ValueError\(width must be at"
    ):
        check_bad_value_refused("fusion", MeanFusion, "width", 65, X=X, y=y)


def test_a_table_missing_a_declared_parameter_fails():
    with pytest.raises(ContractError, match=r"fusion MeanFusion: declared parameters \['reduce'\]"):
        check_declared_coverage("fusion", MeanFusion, {"width": 0})


def test_a_table_naming_a_parameter_that_does_not_exist_fails():
    with pytest.raises(
        ContractError, match=r"\['depth'\] \(not parameters of MeanFusion.__init__\)"
    ):
        check_declared_coverage("fusion", MeanFusion, [("width", 0), ("reduce", 1), ("depth", 0)])


def test_a_table_naming_an_undeclared_init_parameter_fails():
    class HalfDeclared(MeanFusion):
        parameter_constraints = WIDTH_AT_LEAST_ONE

    with pytest.raises(ContractError, match=r"\['reduce'\] \(in __init__ but not in parameter_c"):
        check_declared_coverage("fusion", HalfDeclared, {"width": 0, "reduce": "max"})


def test_a_boundary_the_declaration_refuses_fails():
    X, y = _data()
    with pytest.raises(ContractError, match=r"fusion StrictFusion: the boundary values \{'width'"):
        check_boundary_fits("fusion", StrictFusion, {"width": 1}, X=X, y=y)


def test_a_refusal_naming_another_parameter_fails():
    """The ``reduce`` row's bad value is refused, but under the estimator's other bad setting's
    name: the message must name the parameter of the row."""
    X, y = _data()
    model = FusionClassifier(max_epochs=1, fusion=MeanFusion, fusion__width=0)
    with pytest.raises(ContractError, match=r"does not start with \"The 'reduce' parameter"):
        check_bad_value_refused("fusion", MeanFusion, "reduce", "max", estimator=model, X=X, y=y)


def test_a_backbone_is_checked_on_the_modality_named_with_its_label():
    X, y = _data()
    model = FusionClassifier(backbone={"a": "mlp", "b": "mlp"}, max_epochs=1)
    check_declared_parameters(
        "backbone", LinearBackbone, {"width": 0}, boundary={"width": 1},
        estimator=model, X=X, y=y, modality="b",
    )  # fmt: skip
    with pytest.raises(ValueError, match="pass modality="):
        check_bad_value_refused("backbone", LinearBackbone, "width", 0, X=X, y=y)


def test_a_registered_name_uses_the_registry_label():
    X, y = _data()
    check_bad_value_refused("fusion", "lowrank", "rank", 0, X=X, y=y)
    with pytest.raises(ContractError, match=r"fusion lowrank: declared parameters \['dim'\]"):
        check_declared_coverage("fusion", "lowrank", {"rank": 0})
