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
``callable``, :class:`Options` / :class:`StrOptions`, ``"array-like"``, or any of scikit-learn's
own constraint objects.

:class:`Interval`, :class:`StrOptions`, :class:`Options` and :class:`SequenceOf` are plain
declarations: a component class builds them when its module is imported, and importing
scikit-learn's validation (which brings scipy.stats and pandas, about half of what loading the
plugins would cost) waits for the first check. Each declaration turns itself into scikit-learn's
constraint then (:meth:`Declaration.constraint`, once per declaration), so the values accepted,
the values refused and the messages are scikit-learn's; a declaration scikit-learn refuses
(``Interval(Integral, 5, 1, closed="left")``) raises scikit-learn's error at that first check.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from sklearn.utils._param_validation import InvalidParameterError

__all__ = ["Interval", "InvalidParameterError", "Options", "StrOptions", "check_declared"]
__all__ += ["SequenceOf"]


def __getattr__(name: str) -> Any:
    """``InvalidParameterError`` is scikit-learn's class, imported when first asked for."""
    if name == "InvalidParameterError":
        from sklearn.utils._param_validation import InvalidParameterError

        return InvalidParameterError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Declaration:
    """A constraint stated as plain data; scikit-learn's form is built at its first use."""

    def to_sklearn(self) -> Any:
        """A new scikit-learn constraint object equivalent to this declaration."""
        raise NotImplementedError

    def constraint(self) -> Any:
        """scikit-learn's constraint for this declaration (built once, then reused)."""
        if "_sklearn" not in self.__dict__:
            self.__dict__["_sklearn"] = self.to_sklearn()
        return self.__dict__["_sklearn"]

    def is_satisfied_by(self, val: Any) -> bool:
        return self.constraint().is_satisfied_by(val)

    def __str__(self) -> str:
        return str(self.constraint())


def sklearn_constraint(constraint: Any) -> Any:
    """What scikit-learn's check takes for one declared constraint: a :class:`Declaration`'s
    scikit-learn form; anything else (``"boolean"``, ``None``, a type, scikit-learn's own
    constraint objects) as it is."""
    return constraint.constraint() if isinstance(constraint, Declaration) else constraint


@dataclass(eq=False)  # compared by identity, as scikit-learn's constraints are
class Interval(Declaration):
    """scikit-learn's ``Interval`` (``Interval(Integral, 1, None, closed="left")``) that refuses
    bools: ``isinstance(True, Integral)`` holds, a ``True`` meant as a size never does."""

    type: Any
    left: float | None
    right: float | None
    closed: Literal["left", "right", "both", "neither"] = field(kw_only=True)

    def to_sklearn(self) -> Any:
        return _boolless_interval()(self.type, self.left, self.right, closed=self.closed)


@dataclass(eq=False)  # compared by identity, as scikit-learn's constraints are
class StrOptions(Declaration):
    """scikit-learn's ``StrOptions``: one of a set of strings."""

    options: set[str]
    deprecated: set[str] | None = field(default=None, kw_only=True)

    def to_sklearn(self) -> Any:
        from sklearn.utils._param_validation import StrOptions as SklearnStrOptions

        return SklearnStrOptions(self.options, deprecated=self.deprecated)


@dataclass(eq=False)  # compared by identity, as scikit-learn's constraints are
class Options(Declaration):
    """scikit-learn's ``Options``: one of a set of values of ``type``."""

    type: Any
    options: set[Any]
    deprecated: set[Any] | None = field(default=None, kw_only=True)

    def to_sklearn(self) -> Any:
        from sklearn.utils._param_validation import Options as SklearnOptions

        return SklearnOptions(self.type, self.options, deprecated=self.deprecated)


@dataclass(eq=False)  # compared by identity, as scikit-learn's constraints are
class SequenceOf(Declaration):
    """A list or tuple of ``length`` items (any number when ``None``), each satisfying ``item``
    (``SequenceOf(Interval(Integral, 1, None, closed="left"), length=2)``: a pair of sizes).

    scikit-learn has no constraint on a sequence's items, so this one composes its constraints
    (its scikit-learn form is an ``Options`` only because scikit-learn's check takes no
    constraint classes but its own and their subclasses)."""

    item: Any
    length: int | None = None

    def to_sklearn(self) -> Any:
        from sklearn.utils._param_validation import make_constraint

        return _sequence_constraint()(make_constraint(sklearn_constraint(self.item)), self.length)


@cache
def _boolless_interval() -> type:
    """scikit-learn's ``Interval`` refusing bools (defined at first use: it subclasses
    scikit-learn's class, whose import waits for the first check)."""
    from sklearn.utils._param_validation import Interval as SklearnInterval

    class BoollessInterval(SklearnInterval):
        def is_satisfied_by(self, val: Any) -> bool:
            return not isinstance(val, bool) and super().is_satisfied_by(val)

    return BoollessInterval


@cache
def _sequence_constraint() -> type:
    """The scikit-learn constraint behind :class:`SequenceOf` (defined at first use)."""
    from sklearn.utils._param_validation import Options as SklearnOptions

    class SequenceConstraint(SklearnOptions):
        def __init__(self, item: Any, length: int | None) -> None:
            super().__init__(object, set())
            self.item = item
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

    return SequenceConstraint


def check_declared(
    constraints: Mapping[str, list[Any]], params: Mapping[str, Any], label: str
) -> None:
    """Check ``params`` against the declared ``constraints`` (parameters without a declaration
    are left alone); :class:`InvalidParameterError` names ``label`` and the parameter."""
    from sklearn.utils._param_validation import validate_parameter_constraints

    checked = {k: v for k, v in params.items() if k in constraints}
    validate_parameter_constraints(
        {name: _sklearn_list(constraints[name]) for name in checked}, checked, label
    )


def _sklearn_list(constraints: Any) -> Any:
    """One parameter's constraints for scikit-learn (``"no_validation"`` stays as it is)."""
    if isinstance(constraints, str):
        return constraints
    return [sklearn_constraint(c) for c in constraints]
