"""Every first-party component declares a constraint for each ``__init__`` parameter.

The engine checks a component's parameters once, from its ``parameter_constraints`` table (the
component's own ``build`` keeps only what needs the data: ``dim % heads``, the task, the shapes).
A parameter without a declaration is checked by nobody until it fails deep in torch, so each
first-party component must declare every parameter; each declaration must accept the default
(a table that refuses the default is wrong), and name only real parameters.
"""

from __future__ import annotations

import inspect

import pytest
from first_party import first_party_entries

from fusekit.plugin import COMPONENT_KINDS
from fusekit.plugin.constraints import check_declared

COMPONENTS = sorted(
    {(e.kind, e.name): e.obj for e in first_party_entries() if e.kind in COMPONENT_KINDS}.items()
)


def _parameters(cls: type) -> dict[str, inspect.Parameter]:
    return {
        p.name: p
        for p in list(inspect.signature(cls.__init__).parameters.values())[1:]
        if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    }


@pytest.mark.parametrize(("key", "cls"), COMPONENTS, ids=[f"{k}-{n}" for (k, n), _ in COMPONENTS])
def test_every_parameter_is_declared(key, cls):
    missing = sorted(set(_parameters(cls)) - set(cls.parameter_constraints))
    assert not missing, f"{key} {cls.__qualname__} declares no constraint for {missing}"


@pytest.mark.parametrize(("key", "cls"), COMPONENTS, ids=[f"{k}-{n}" for (k, n), _ in COMPONENTS])
def test_declarations_name_real_parameters_and_accept_defaults(key, cls):
    parameters = _parameters(cls)
    assert set(cls.parameter_constraints) <= set(parameters), (
        f"{key} declares constraints for {sorted(set(cls.parameter_constraints) - set(parameters))}"
        " which its __init__ does not take"
    )
    defaults = {
        name: p.default
        for name, p in parameters.items()
        if p.default is not inspect.Parameter.empty and name in cls.parameter_constraints
    }
    check_declared(cls.parameter_constraints, defaults, f"{key[0]} {key[1]}")
