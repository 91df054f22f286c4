"""Names and values as they are written on the command line and in data-set names.

``mfeat:views=fou,kar`` (a data set with loader arguments) and ``KEY=VALUE`` (``--param``,
``--tune``): plain text parsing, so the parser can use it without importing the data stack.
"""

from __future__ import annotations

import json
from typing import Any


def parse_value(text: str) -> Any:
    """``"3"`` -> 3, ``"0.5"`` -> 0.5, ``"true"`` / ``"false"`` / ``"none"`` -> True / False /
    None, ``"a,b"`` -> ``["a", "b"]`` (each part converted), ``{...}`` / ``[...]`` -> a JSON
    object / list (``'["review"]'``: a one-item list); anything else stays text."""
    if text[:1] in ("{", "["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"{text!r} starts with {text[0]!r} but is not JSON: {error}") from None
    if "," in text:
        return [parse_value(part) for part in text.split(",") if part]
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(text.lower(), text)


def parse_dataset_name(text: str) -> tuple[str, dict[str, Any]]:
    """``"mfeat:views=fou,kar"`` -> ``("mfeat", {"views": ["fou", "kar"]})``."""
    name, *pairs = text.split(":")
    kwargs = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(
                f"dataset {text!r}: loader arguments are written name:key=value[:key=value], "
                f"got {pair!r}."
            )
        key, value = pair.split("=", 1)
        kwargs[key.strip()] = parse_value(value.strip())
    return name.strip(), kwargs
