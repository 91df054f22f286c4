"""Turn an estimator's ``backbone``/``calibration``/``fusion``/``weighting`` parameter (a registered
name, a class or an unbuilt instance) plus its prefix-routed nested parameters into fresh,
unbuilt component instances."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Mapping
from typing import Any

from fusekit.engine.registry import get_registry
from fusekit.plugin import BASES, COMPONENT_KINDS, Component

PREFIXES = COMPONENT_KINDS


def accepted_params(cls: type) -> list[str]:
    return [
        name
        for name, p in inspect.signature(cls.__init__).parameters.items()
        if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    ]


def _takes_any(cls: type) -> bool:
    return any(p.kind == p.VAR_KEYWORD for p in inspect.signature(cls.__init__).parameters.values())


def instantiate(kind: str, spec: Any, params: Mapping[str, Any], where: str = "") -> Component:
    """A new, unbuilt component of ``kind`` from a name, a class or an instance."""
    base = BASES[kind]
    label = f"{kind}{where}"
    if isinstance(spec, str):
        cls = get_registry().get(kind, spec)
        defaults: dict[str, Any] = {}
    elif isinstance(spec, type):
        cls, defaults = spec, {}
    elif isinstance(spec, Component):
        cls, defaults = type(spec), spec.get_params()
        if not params:
            return copy.deepcopy(spec)
    else:
        raise TypeError(
            f"{label} must be a registered name, a {base.__name__} subclass or an instance, got "
            f"{type(spec).__name__} {spec!r}."
        )
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise TypeError(f"{label} {spec!r} is {cls!r}, which is not a {base.__name__} subclass.")
    unknown = [name for name in params if name not in accepted_params(cls)]
    if unknown and not _takes_any(cls):
        raise ValueError(
            f"{label} {getattr(cls, '__name__', cls)} got unknown parameters {unknown}; it accepts "
            f"{accepted_params(cls)}."
        )
    return cls(**{**defaults, **params})


def weightings_for(spec: Any, params: Mapping[str, Any]) -> list[Component]:
    """The network's weightings: one from a single spec, or one per entry of a list, in order.

    ``weighting__x=...`` configures a single weighting; entries of a list are configured by
    passing instances (``weighting=["modality_dropout", OGMGEWeighting(alpha=0.3)]``).
    """
    if not isinstance(spec, (list, tuple)):
        return [instantiate("weighting", spec, params)]
    if params:
        raise ValueError(
            f"weighting is a list, so nested parameters {sorted(params)} have no single "
            "weighting to go to; pass configured instances in the list instead, e.g. "
            "weighting=['modality_dropout', OGMGEWeighting(alpha=0.3)]."
        )
    return [
        instantiate("weighting", entry, {}, where=f" [{position}]")
        for position, entry in enumerate(spec)
    ]


def split_nested(params: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """``{"fusion__rank": 8, "lr": 1}`` -> ``{"rank": 8}`` for ``prefix="fusion"``."""
    start = prefix + "__"
    return {key[len(start) :]: value for key, value in params.items() if key.startswith(start)}


def _component_class(kind: str, spec: Any) -> type:
    if isinstance(spec, str):
        return get_registry().get(kind, spec)
    return spec if isinstance(spec, type) else type(spec)


def backbones_for(
    spec: Any, nested: Mapping[str, Any], names: tuple[str, ...]
) -> dict[str, Component]:
    """One backbone per modality from one spec for all or a ``{modality: spec}`` dict.

    ``backbone__hidden=64`` goes to every modality's backbone that accepts ``hidden``;
    ``backbone__audio__hidden=64`` to modality ``audio`` only.
    """
    if isinstance(spec, Mapping):
        unknown = [name for name in spec if name not in names]
        missing = [name for name in names if name not in spec]
        if unknown or missing:
            raise ValueError(
                f"backbone dict names modalities {list(spec)}, but X has {list(names)}"
                + (f"; unknown: {unknown}" if unknown else "")
                + (f"; without a backbone: {missing}" if missing else "")
                + "."
            )
        specs = dict(spec)
    else:
        specs = {name: spec for name in names}
    per_modality = {
        name: {k.split("__", 1)[1]: v for k, v in nested.items() if k.startswith(name + "__")}
        for name in names
    }
    shared = {
        key: value
        for key, value in nested.items()
        if "__" not in key or key.split("__", 1)[0] not in names
    }
    for key in shared:
        if "__" in key:
            raise ValueError(
                f"backbone__{key}: {key.split('__', 1)[0]!r} is not a modality; modalities are "
                f"{list(names)}."
            )
        classes = {name: _component_class("backbone", specs[name]) for name in names}
        if not any(key in accepted_params(cls) or _takes_any(cls) for cls in classes.values()):
            raise ValueError(
                f"backbone__{key}: no backbone in use accepts {key!r} ("
                + ", ".join(
                    f"{name}: {cls.__name__} {accepted_params(cls)}"
                    for name, cls in classes.items()
                )
                + ")."
            )
    backbones = {}
    for name in names:
        cls = _component_class("backbone", specs[name])
        applicable = {
            k: v for k, v in shared.items() if k in accepted_params(cls) or _takes_any(cls)
        }
        backbones[name] = instantiate(
            "backbone", specs[name], {**applicable, **per_modality[name]}, where=f" of {name!r}"
        )
    return backbones
