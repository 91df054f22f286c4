"""Parameter validation for plugins, in the spirit of ``sklearn.utils.check_scalar``.

The plugin layer imports only torch and numpy, so :func:`check_scalar` reimplements scikit-learn's
(same arguments, same exceptions and messages; ``tests`` compare the two). The ``check_*`` helpers
below name the method and the parameter in their messages, as fusekit's errors do everywhere.
"""

from __future__ import annotations

import numbers
import operator
from collections.abc import Sequence
from typing import Any

_BOUNDARIES = ("left", "right", "both", "neither")


def _type_name(kind: type) -> str:
    if kind.__module__ == "builtins":
        return kind.__qualname__
    if kind == numbers.Real:
        return "float"
    if kind == numbers.Integral:
        return "int"
    return f"{kind.__module__}.{kind.__qualname__}"


def check_scalar(
    x: Any,
    name: str,
    target_type: type | tuple[type, ...],
    *,
    min_val: float | None = None,
    max_val: float | None = None,
    include_boundaries: str = "both",
) -> Any:
    """``x`` unchanged if it is a ``target_type`` within the bounds, else TypeError/ValueError.

    Same contract as :func:`sklearn.utils.check_scalar`: ``include_boundaries`` is one of
    ``"left"``, ``"right"``, ``"both"``, ``"neither"`` and says which bounds are allowed values.
    """
    if not isinstance(x, target_type):
        if isinstance(target_type, tuple):
            expected = "{" + ", ".join(_type_name(t) for t in target_type) + "}"
        else:
            expected = _type_name(target_type)
        raise TypeError(f"{name} must be an instance of {expected}, not {type(x).__qualname__}.")
    if include_boundaries not in _BOUNDARIES:
        raise ValueError(
            f"Unknown value for `include_boundaries`: {include_boundaries!r}. "
            f"Possible values are: {_BOUNDARIES}."
        )
    if max_val is None and include_boundaries == "right":
        raise ValueError(
            "`include_boundaries`='right' without specifying explicitly `max_val` is inconsistent."
        )
    if min_val is None and include_boundaries == "left":
        raise ValueError(
            "`include_boundaries`='left' without specifying explicitly `min_val` is inconsistent."
        )
    closed_left = include_boundaries in ("left", "both")
    below = operator.lt if closed_left else operator.le
    if min_val is not None and below(x, min_val):
        raise ValueError(f"{name} == {x}, must be {'>=' if closed_left else '>'} {min_val}.")
    closed_right = include_boundaries in ("right", "both")
    above = operator.gt if closed_right else operator.ge
    if max_val is not None and above(x, max_val):
        raise ValueError(f"{name} == {x}, must be {'<=' if closed_right else '<'} {max_val}.")
    return x


def check_int(owner: str, name: str, value: object, minimum: int = 1) -> int:
    """``value`` as an int ``>= minimum``, else a ValueError naming ``owner`` and ``name``."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{owner}: {name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def check_fraction(owner: str, name: str, value: object) -> float:
    """``value`` as a float in ``[0, 1)``, else a ValueError."""
    if not isinstance(value, numbers.Real) or not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{owner}: {name} must be a number in [0, 1), got {value!r}.")
    return float(value)


def check_choice(owner: str, name: str, value: object, choices: Sequence[object]) -> None:
    """ValueError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{owner}: {name}={value!r}; expected one of {list(choices)}.")


def check_non_negative(who: str, name: str, value: float) -> None:
    """ValueError unless ``value`` is a number ``>= 0``."""
    if not float(value) >= 0.0:
        raise ValueError(f"{who}: {name} must be a number >= 0, got {value!r}")
