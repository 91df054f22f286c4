"""A small declarative check of parsed JSON: what each key of a file must hold.

A schema is a Python type (``str``, ``int``, ``float``, ``bool``, ``dict``, ``list``, ``None``;
``object``: any value), a tuple of schemas (any one may match), or one of :class:`Record` (an
object with these keys), :class:`ListOf` (a list of one schema) and :class:`MapOf` (an object
with string keys and values of one schema). :func:`check` walks a value against it and raises
:class:`SchemaError` naming the file, the key path (``config.sweeps[0].levels``), what was
expected and what came.

JSON has no integers that are booleans: ``int`` refuses ``true``; ``float`` accepts integers.
(Hand-written: ``jsonschema`` is not a dependency of fusekit, and this is all a manifest needs.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    dict: "an object",
    list: "a list",
    type(None): "null",
}


class SchemaError(ValueError):
    """A file's content does not have the shape its reader needs."""


@dataclass(frozen=True)
class Record:
    """A JSON object with ``fields`` (each required but those in ``optional``); other keys are
    refused."""

    fields: Mapping[str, Any]
    optional: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ListOf:
    """A JSON list whose every item matches ``item``."""

    item: Any


@dataclass(frozen=True)
class MapOf:
    """A JSON object with string keys whose every value matches ``value``."""

    value: Any


def describe(schema: Any) -> str:
    """``"an integer or null"`` for ``(int, None)``."""
    if isinstance(schema, tuple):
        return " or ".join(describe(s) for s in schema)
    if isinstance(schema, Record):
        return f"an object with keys {sorted(schema.fields)}"
    if isinstance(schema, ListOf):
        return f"a list (each item {describe(schema.item)})"
    if isinstance(schema, MapOf):
        return f"an object (each value {describe(schema.value)})"
    if schema is None:
        return "null"
    if schema is object:
        return "any JSON value"
    return _NAMES.get(schema, getattr(schema, "__name__", str(schema)))


def _got(value: Any) -> str:
    kind = {str: "the string", bool: "the boolean", int: "the number", float: "the number"}.get(
        type(value)
    )
    if value is None:
        return "null"
    if isinstance(value, dict):
        return f"an object with keys {sorted(map(str, value))[:8]}"
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    return f"{kind or type(value).__name__} {shown}"


def _matches_type(value: Any, schema: Any) -> bool:
    if schema is None or schema is type(None):
        return value is None
    if schema is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if schema is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, schema)


def _outer_matches(value: Any, schema: Any) -> bool:
    """Whether ``value`` is the container ``schema`` describes (its error is the precise one)."""
    if isinstance(schema, (Record, MapOf)):
        return isinstance(value, dict)
    if isinstance(schema, ListOf):
        return isinstance(value, list)
    return False


def _fail(source: str, where: str, schema: Any, value: Any) -> SchemaError:
    return SchemaError(
        f"{source}: {where or 'the file'} must be {describe(schema)}, got {_got(value)}."
    )


def check(
    value: Any,
    schema: Any,
    source: str,
    where: str = "",
    error: type[SchemaError] = SchemaError,
) -> None:
    """Raise ``error`` (:class:`SchemaError` or a subclass; ``source``: the file, ``where``: the
    key path) unless ``value`` matches ``schema``."""
    try:
        _check(value, schema, source, where)
    except SchemaError as found:
        if type(found) is error:
            raise
        raise error(str(found)) from None


def _check(value: Any, schema: Any, source: str, where: str = "") -> None:
    if isinstance(schema, tuple):
        errors = []
        for option in schema:
            try:
                _check(value, option, source, where)
                return
            except SchemaError as found:
                errors.append((option, found))
        inner = [found for option, found in errors if _outer_matches(value, option)]
        raise inner[0] if len(inner) == 1 else _fail(source, where, schema, value)
    if isinstance(schema, Record):
        if not isinstance(value, dict):
            raise _fail(source, where, schema, value)
        missing = [k for k in schema.fields if k not in value and k not in schema.optional]
        unknown = [key for key in value if key not in schema.fields]
        if missing:
            raise SchemaError(
                f"{source}: {where or 'the file'} has no key {missing[0]!r} (expected keys "
                f"{sorted(schema.fields)}, got {sorted(value)})."
            )
        if unknown:
            raise SchemaError(
                f"{source}: {where or 'the file'} has unknown keys {sorted(unknown)} (expected "
                f"keys {sorted(schema.fields)}); it may come from another version of fusekit."
            )
        for key, field in schema.fields.items():
            if key in value:
                _check(value[key], field, source, f"{where}.{key}" if where else key)
        return
    if isinstance(schema, ListOf):
        if not isinstance(value, list):
            raise _fail(source, where, schema, value)
        for position, item in enumerate(value):
            _check(item, schema.item, source, f"{where}[{position}]")
        return
    if isinstance(schema, MapOf):
        if not isinstance(value, dict):
            raise _fail(source, where, schema, value)
        for key, item in value.items():
            _check(item, schema.value, source, f"{where}.{key}" if where else str(key))
        return
    if not _matches_type(value, schema):
        raise _fail(source, where, schema, value)
