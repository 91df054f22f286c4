"""Declared parameter constraints of a component, scikit-learn's ``_parameter_constraints`` idea.

A component states what each ``__init__`` parameter may be in ``parameter_constraints``
(``{"hidden": [Interval(Integral, 1, None, closed="left")], "norm": [StrOptions({"layer"}),
None]}``); the engine checks them once, when it resolves the component, with a label taken from
the component's registry entry (``"backbone of 'audio' mlp"``), so no plugin types its own name.
Constraints that need the data (``dim % heads``, the task, the input shapes) stay in ``build``.

The constraint types and the check are scikit-learn's own (:mod:`sklearn.utils._param_validation`,
what :class:`~sklearn.base.BaseEstimator` uses): an invalid value raises
:class:`InvalidParameterError`, a ``ValueError`` and ``TypeError`` both. One difference, on
purpose: this module's :class:`Interval` refuses ``True`` / ``False`` (scikit-learn's takes a
bool as the number 1 or 0, since ``bool`` subclasses ``int``; ``hidden=True`` is a mistake, not
one unit). Other constraints a parameter may list: ``"boolean"``, ``None``, a type (``dict``),
``callable``, :class:`Options` / :class:`StrOptions`, ``"array-like"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sklearn.utils._param_validation import Interval as _SklearnInterval
from sklearn.utils._param_validation import (
    InvalidParameterError,
    Options,
    StrOptions,
    make_constraint,
    validate_parameter_constraints,
)

__all__ = ["Interval", "InvalidParameterError", "Options", "StrOptions", "check_declared"]
__all__ += ["SequenceOf"]


class Interval(_SklearnInterval):
    """scikit-learn's ``Interval`` (``Interval(Integral, 1, None, closed="left")``) that refuses
    bools: ``isinstance(True, Integral)`` holds, a ``True`` meant as a size never does."""

    def is_satisfied_by(self, val: Any) -> bool:
        return not isinstance(val, bool) and super().is_satisfied_by(val)


def check_declared(
    constraints: Mapping[str, list[Any]], params: Mapping[str, Any], label: str
) -> None:
    """Check ``params`` against the declared ``constraints`` (parameters without a declaration
    are left alone); :class:`InvalidParameterError` names ``label`` and the parameter."""
    validate_parameter_constraints(
        dict(constraints), {k: v for k, v in params.items() if k in constraints}, label
    )


class SequenceOf(Options):
    """A list or tuple of ``length`` items (any number when ``None``), each satisfying ``item``
    (``SequenceOf(Interval(Integral, 1, None, closed="left"), length=2)``: a pair of sizes).

    scikit-learn has no constraint on a sequence's items, so this one composes its constraints;
    it is an ``Options`` only because scikit-learn's check takes no constraint classes but its
    own (and their subclasses)."""

    def __init__(self, item: Any, length: int | None = None) -> None:
        super().__init__(object, set())
        self.item = make_constraint(item)
        self.length = length

    def is_satisfied_by(self, val: Any) -> bool:
        return (
            isinstance(val, list | tuple)
            and (self.length is None or len(val) == self.length)
            and all(self.item.is_satisfied_by(v) for v in val)
        )

    def __str__(self) -> str:
        count = "" if self.length is None else f"{self.length} "
        return f"a list or tuple of {count}items, each {self.item}"
