"""Turn an estimator's ``backbone``/``calibration``/``fusion``/``weighting`` parameter (a registered
name, a class or an unbuilt instance) plus its prefix-routed nested parameters into fresh,
unbuilt component instances, each with the :class:`Origin` the registry gave for it.

This is the one place that looks a component up in the registry (by name, or for a class or an
instance by its class); everything later reads the :class:`Origin` recorded here.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from fusekit.engine.registry import PluginEntry, get_registry
from fusekit.plugin import BASES, COMPONENT_KINDS, Component
from fusekit.plugin.constraints import check_declared

PREFIXES = COMPONENT_KINDS


def accepted_params(cls: type) -> list[str]:
    return [
        name
        for name, p in inspect.signature(cls.__init__).parameters.items()
        if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    ]


def _takes_any(cls: type) -> bool:
    return any(p.kind == p.VAR_KEYWORD for p in inspect.signature(cls.__init__).parameters.values())


@dataclass(frozen=True)
class Origin:
    """Where one component of a network came from, recorded once when it is resolved.

    ``where`` places it in the network (``""``, ``" of 'audio'"`` for a modality's backbone,
    ``" [1]"`` for an entry of a weighting list); ``name``, ``distribution`` and ``version`` are
    those of its registry entry, ``None`` for a class that is not registered.
    """

    kind: str
    where: str
    cls: type
    name: str | None = None
    distribution: str | None = None
    version: str | None = None

    @classmethod
    def of(
        cls, kind: str, component_class: type, entry: PluginEntry | None, where: str = ""
    ) -> Origin:
        if entry is None:
            return cls(kind, where, component_class)
        return cls(kind, where, component_class, entry.name, entry.distribution, entry.version)

    @property
    def label(self) -> str:
        """``"fusion concat"``, ``"backbone of 'audio' mlp"``; the class name when unregistered."""
        return f"{self.kind}{self.where} {self.name or self.cls.__name__}"

    def describe(self) -> str:
        """``"fusion 'concat' from fusekit-learn 0.1"`` (for error messages)."""
        if self.name is None:
            return f"{self.kind} class {self.cls.__qualname__}, not registered"
        return f"{self.kind} {self.name!r} from {self.distribution} {self.version}"

    def record(self) -> dict[str, str] | None:
        """``{"kind", "name", "distribution", "version"}`` of a registered plugin, else ``None``."""
        if self.name is None:
            return None
        assert self.distribution is not None and self.version is not None
        return {
            "kind": self.kind,
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
        }


class Resolved(NamedTuple):
    """A fresh component and where it came from."""

    component: Component
    origin: Origin


def _declared(component: Component) -> dict[str, Any]:
    """The values of the parameters ``component`` declares constraints for (read one by one: a
    component that stores a parameter under another name is the contract checks' to name)."""
    names = type(component).parameter_constraints
    return {name: getattr(component, name) for name in names if hasattr(component, name)}


def instantiate(kind: str, spec: Any, params: Mapping[str, Any], where: str = "") -> Component:
    """A new, unbuilt component of ``kind`` from a name, a class or an instance."""
    return resolve(kind, spec, params, where).component


def resolve(
    kind: str, spec: Any, params: Mapping[str, Any], where: str = "", fresh: bool = True
) -> Resolved:
    """A new, unbuilt component of ``kind`` from a name, a class or an instance, with its origin.

    ``fresh=False``: an instance given without parameters is used as it is (tests that hold
    the component they hand in), not copied.
    """
    base = BASES[kind]
    label = f"{kind}{where}"
    registry = get_registry()
    if isinstance(spec, str):
        entry: PluginEntry | None = registry.entry(kind, spec)
        cls = entry.obj
        defaults: dict[str, Any] = {}
    elif isinstance(spec, type):
        cls, defaults = spec, {}
        entry = registry.entry_of(kind, cls)
    elif isinstance(spec, Component):
        cls, defaults = type(spec), spec.get_params()
        entry = registry.entry_of(kind, cls)
        if not params:
            origin = Origin.of(kind, cls, entry, where)
            if not isinstance(spec, base):
                raise TypeError(
                    f"{label} {spec!r} is a {cls.__name__}, which is not a {base.__name__}."
                )
            check_declared(cls.parameter_constraints, _declared(spec), origin.label)
            return Resolved(copy.deepcopy(spec) if fresh else spec, origin)
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
    component = cls(**{**defaults, **params})
    origin = Origin.of(kind, cls, entry, where)
    check_declared(cls.parameter_constraints, _declared(component), origin.label)
    return Resolved(component, origin)


def weightings_for(spec: Any, params: Mapping[str, Any]) -> list[Component]:
    """The network's weightings (see :func:`resolve_weightings`), without their origins."""
    return [resolved.component for resolved in resolve_weightings(spec, params)]


def resolve_weightings(spec: Any, params: Mapping[str, Any], fresh: bool = True) -> list[Resolved]:
    """The network's weightings: one from a single spec, or one per entry of a list, in order.

    ``weighting__x=...`` configures a single weighting; entries of a list are configured by
    passing instances (``weighting=["modality_dropout", OGMGEWeighting(alpha=0.3)]``).
    """
    if not isinstance(spec, (list, tuple)):
        return [resolve("weighting", spec, params, fresh=fresh)]
    if params:
        raise ValueError(
            f"weighting is a list, so nested parameters {sorted(params)} have no single "
            "weighting to go to; pass configured instances in the list instead, e.g. "
            "weighting=['modality_dropout', OGMGEWeighting(alpha=0.3)]."
        )
    return [
        resolve("weighting", entry, {}, where=f" [{position}]", fresh=fresh)
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
    """One backbone per modality (see :func:`resolve_backbones`), without their origins."""
    return {
        name: resolved.component
        for name, resolved in resolve_backbones(spec, nested, names).items()
    }


def resolve_backbones(
    spec: Any, nested: Mapping[str, Any], names: tuple[str, ...], fresh: bool = True
) -> dict[str, Resolved]:
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
        backbones[name] = resolve(
            "backbone",
            specs[name],
            {**applicable, **per_modality[name]},
            where=f" of {name!r}",
            fresh=fresh
            and isinstance(spec, Mapping),  # one instance for all is copied per modality
        )
    return backbones
