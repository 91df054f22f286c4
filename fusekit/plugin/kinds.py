"""The table of plugin kinds: every other place (registry, resolve, CLI, scaffold, testing, docs)
reads the kinds from here.

A kind is what a plugin can provide: its base class (``None`` for data sets, which are loader
callables), the pluggy hook that provides it (:mod:`fusekit.plugin.hookspecs`) and the registered
name an estimator uses when the user names none (``None``: not an estimator parameter).
"""

from __future__ import annotations

from dataclasses import dataclass

from fusekit.plugin.base import Backbone, Calibration, Component, Fusion, Weighting


@dataclass(frozen=True)
class Kind:
    """One plugin kind."""

    name: str
    base: type[Component] | None
    hook: str
    default: str | None

    @property
    def is_component(self) -> bool:
        """True for network components (an estimator parameter), False for data sets."""
        return self.base is not None


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("backbone", Backbone, "fusekit_backbones", "mlp"),
        Kind("calibration", Calibration, "fusekit_calibrations", "none"),
        Kind("fusion", Fusion, "fusekit_fusions", "concat"),
        Kind("weighting", Weighting, "fusekit_weightings", "none"),
        Kind("dataset", None, "fusekit_datasets", None),
    )
}

#: The network component kinds, which are estimator parameters (``fusion=...``, ``fusion__x=...``).
COMPONENT_KINDS: tuple[str, ...] = tuple(name for name, kind in KINDS.items() if kind.is_component)

#: Component kind -> base class.
BASES: dict[str, type[Component]] = {
    name: kind.base for name, kind in KINDS.items() if kind.base is not None
}


def check_kind(kind: str) -> Kind:
    """The :class:`Kind` called ``kind``, or a ValueError listing the kinds."""
    if kind not in KINDS:
        raise ValueError(f"unknown plugin kind {kind!r}; kinds: {', '.join(KINDS)}")
    return KINDS[kind]
