"""Each component kind's default is stated once, in ``fusekit.plugin.KINDS``; every other place
that names a default (the estimators' signatures, the door's choices, the bench grid, the plugin
template, the light command line's kind list) is tied to it here."""

import dataclasses
import inspect

import pytest

from fusekit import FusionClassifier, FusionRegressor, cli
from fusekit.bench.settings import GRID_KINDS, BenchConfig
from fusekit.engine.assemble import Choices
from fusekit.plugin import COMPONENT_KINDS, KINDS
from fusekit.scaffold import DEFAULTS as TEMPLATE_DEFAULTS


def _defaults(cls) -> dict:
    return {
        name: p.default
        for name, p in inspect.signature(cls.__init__).parameters.items()
        if name in COMPONENT_KINDS
    }


@pytest.mark.parametrize("estimator", [FusionClassifier, FusionRegressor])
def test_the_estimator_signatures_default_to_each_kinds_default(estimator):
    assert _defaults(estimator) == {kind: KINDS[kind].default for kind in COMPONENT_KINDS}


def test_the_door_the_bench_and_the_template_use_the_same_defaults():
    choices = Choices()
    bench = {f.name: f.default for f in dataclasses.fields(BenchConfig)}
    for kind in COMPONENT_KINDS:
        default = KINDS[kind].default
        assert getattr(choices, kind) == default
        assert bench[kind] == (default,), kind
        assert TEMPLATE_DEFAULTS[kind] == default
    assert set(GRID_KINDS) == set(COMPONENT_KINDS) == set(cli.COMPONENT_KINDS)
