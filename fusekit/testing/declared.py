"""A component's declared parameter constraints checked through the estimator, for plugin tests.

A component declares what each ``__init__`` parameter may be in ``parameter_constraints``;
fusekit checks them at ``fit`` (never at construction, scikit-learn's rule), when it resolves the
component, with scikit-learn's :class:`~sklearn.utils._param_validation.InvalidParameterError`
naming the parameter and the component's label (``fusion maxout``, ``backbone of 'x' mlp``).
The checks here take a table of one bad value (or more) per declared parameter, picked by hand
from the method's docstring, and a set of values on the edges of the declared ranges:

* :func:`check_declared_coverage`: the table names every declared parameter and nothing else,
  so adding a parameter without a bad value fails;
* :func:`check_bad_value_refused`: one bad value is refused at ``fit``, by name and label,
  before anything is built;
* :func:`check_boundary_fits`: the boundary values are accepted and the model trains;
* :func:`check_declared_parameters`: all three at once.

Each is a plain function (parametrise the per-value one with ``pytest.mark.parametrize`` to get
one test case per bad value); a broken promise raises :class:`~fusekit.testing.ContractError`
(an ``AssertionError``) naming the component, the parameter and the fix.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

from sklearn.base import BaseEstimator, clone
from sklearn.utils._param_validation import InvalidParameterError

from fusekit.engine.registry import get_registry
from fusekit.estimator import FusionClassifier
from fusekit.plugin import COMPONENT_KINDS
from fusekit.testing.checks import ContractError
from fusekit.testing.fixtures import make_data

__all__ = [
    "check_bad_value_refused",
    "check_boundary_fits",
    "check_declared_coverage",
    "check_declared_parameters",
]

#: The estimator a check fits when none is given: one epoch, seeded.
DEFAULT_ESTIMATOR = FusionClassifier(max_epochs=1, random_state=0)

BadValues = Mapping[str, Any] | Iterable[tuple[str, Any]]


def _component_class(kind: str, component: str | type) -> type:
    if kind not in COMPONENT_KINDS:
        raise ValueError(f"kind must be one of {COMPONENT_KINDS}, got {kind!r}")
    if isinstance(component, str):
        return get_registry().get(kind, component)
    if isinstance(component, type):
        return component
    raise TypeError(f"{kind}: expected a registered name or a class, got {component!r}")


def _pairs(bad_values: BadValues) -> list[tuple[str, Any]]:
    if isinstance(bad_values, Mapping):
        return list(bad_values.items())
    return [(parameter, value) for parameter, value in bad_values]


def _label(kind: str, component: str | type, modality: str | None) -> str:
    """The label fusekit's resolution gives the component (``Origin.label``)."""
    where = f" of {modality!r}" if kind == "backbone" and modality is not None else ""
    name = component if isinstance(component, str) else component.__name__
    return f"{kind}{where} {name}"


def check_declared_coverage(kind: str, component: str | type, bad_values: BadValues) -> None:
    """The table ``bad_values`` (``{parameter: value}`` or ``(parameter, value)`` pairs) names
    every parameter ``component`` (a registered name or a class) declares, and nothing else."""
    cls = _component_class(kind, component)
    label = _label(kind, component, None)
    declared = set(getattr(cls, "parameter_constraints", {}))
    cased = {parameter for parameter, _ in _pairs(bad_values)}
    missing, extra = sorted(declared - cased), sorted(cased - declared)
    if missing:
        raise ContractError(
            f"{label}: declared parameters {missing} have no bad value in the table. Fix: add a "
            "row with a value each declaration refuses."
        )
    if extra:
        accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
        undeclared = [p for p in extra if p in accepted]
        unknown = [p for p in extra if p not in accepted]
        raise ContractError(
            f"{label}: the table names parameters it does not declare: "
            + (f"{unknown} (not parameters of {cls.__name__}.__init__)" if unknown else "")
            + ("; " if unknown and undeclared else "")
            + (f"{undeclared} (in __init__ but not in parameter_constraints)" if undeclared else "")
            + f"; declared: {sorted(declared)}. Fix: declare them or remove the rows."
        )


def _configured(
    kind: str,
    component: str | type,
    params: Mapping[str, Any],
    estimator: BaseEstimator | None,
    X: Any,
    modality: str | None,
) -> tuple[BaseEstimator, dict[str, Any]]:
    """A clone of ``estimator`` that uses ``component`` with ``params`` (nested keys)."""
    model = clone(DEFAULT_ESTIMATOR if estimator is None else estimator)
    if kind != "backbone":
        nested = {f"{kind}__{key}": value for key, value in params.items()}
        return model.set_params(**{kind: component}, **nested), nested
    if modality is None:
        raise ValueError(
            f"backbone {component!r}: a backbone's parameters are set per modality; pass "
            "modality= (a modality of X)"
        )
    current = model.get_params()["backbone"]
    if isinstance(current, Mapping):
        backbones = {**current, modality: component}
    elif isinstance(X, Mapping):
        backbones = {**{m: current for m in X}, modality: component}
    else:
        raise ValueError(
            f"backbone {component!r}: pass an estimator whose backbone is a {{modality: "
            "backbone}} dict naming every modality of X"
        )
    nested = {f"backbone__{modality}__{key}": value for key, value in params.items()}
    return model.set_params(backbone=backbones, **nested), nested


def _data(X: Any, y: Any) -> tuple[Any, Any]:
    if (X is None) != (y is None):
        raise ValueError("pass both X and y, or neither (then two small modalities are used)")
    return make_data(2, n=24) if X is None else (X, y)


def check_bad_value_refused(
    kind: str,
    component: str | type,
    parameter: str,
    value: Any,
    *,
    estimator: BaseEstimator | None = None,
    X: Any = None,
    y: Any = None,
    modality: str | None = None,
) -> None:
    """``fit`` with ``parameter=value`` raises ``InvalidParameterError`` whose message names the
    parameter, the component's label and the value, before any network is built; the
    constructor keeps the value unchecked (scikit-learn's rule).

    ``estimator`` (cloned; default a one-epoch :class:`FusionClassifier`) supplies the other
    settings; ``modality`` is the modality a backbone is tried on.
    """
    X, y = _data(X, y)
    label = _label(kind, component, modality)
    model, nested = _configured(kind, component, {parameter: value}, estimator, X, modality)
    ((key, _),) = nested.items()
    if model.get_params()[key] is not value:
        raise ContractError(f"{label}: {key} was changed on construction; store it unchanged.")
    prefix = f"The {parameter!r} parameter of {label} must be "
    try:
        model.fit(X, y)
    except InvalidParameterError as error:
        message = str(error)
        if not message.startswith(prefix) or f"Got {value!r} instead" not in message:
            raise ContractError(
                f"{label}: {parameter}={value!r} was refused, but the message does not start "
                f"with {prefix!r} and show the value: {message!r}"
            ) from error
    except Exception as error:
        raise ContractError(
            f"{label}: {parameter}={value!r} raised {type(error).__name__}({error}) instead of "
            "InvalidParameterError from its declaration. Fix: declare what the parameter may be "
            "in parameter_constraints."
        ) from error
    else:
        raise ContractError(
            f"{label}: the bad value {parameter}={value!r} was accepted and the model trained. "
            "Fix: tighten the parameter's entry in parameter_constraints (or the table's value "
            "is not bad)."
        )
    if hasattr(model, "module_"):
        raise ContractError(f"{label}: {parameter}={value!r} was refused only after building.")


def check_boundary_fits(
    kind: str,
    component: str | type,
    params: Mapping[str, Any],
    *,
    estimator: BaseEstimator | None = None,
    X: Any = None,
    y: Any = None,
    modality: str | None = None,
) -> BaseEstimator:
    """Values on the edges of the declared ranges (``params``) are accepted and the model
    trains; returns the fitted estimator, for checks of what the values built."""
    X, y = _data(X, y)
    label = _label(kind, component, modality)
    model, _ = _configured(kind, component, params, estimator, X, modality)
    try:
        return model.fit(X, y)
    except InvalidParameterError as error:
        raise ContractError(
            f"{label}: the boundary values {dict(params)} were refused: {error}. Fix: close the "
            "interval in parameter_constraints (or the table's value is outside the range)."
        ) from error


def check_declared_parameters(
    kind: str,
    component: str | type,
    bad_values: BadValues,
    *,
    boundary: Mapping[str, Any] | None = None,
    estimator: BaseEstimator | None = None,
    X: Any = None,
    y: Any = None,
    modality: str | None = None,
) -> None:
    """:func:`check_declared_coverage`, :func:`check_bad_value_refused` for each row of
    ``bad_values`` and, when ``boundary`` is given, :func:`check_boundary_fits`."""
    check_declared_coverage(kind, component, bad_values)
    options = {"estimator": estimator, "X": X, "y": y, "modality": modality}
    for parameter, value in _pairs(bad_values):
        check_bad_value_refused(kind, component, parameter, value, **options)
    if boundary is not None:
        check_boundary_fits(kind, component, boundary, **options)
