"""Discovers plugins (built-ins first, then the ``fusekit`` entry-point group) once, lazily.

pluggy alone is not robust enough: ``load_setuptools_entrypoints`` stops at the first plugin that
fails to import, and silently skips a second plugin registered under a taken name. So entry points
are loaded one by one, failures are recorded (distribution, version, error) and skipped with a
warning (``strict=True`` or ``FUSEKIT_STRICT_PLUGINS=1`` raises instead), and hooks are called
implementation by implementation. Two plugins claiming one method name disable that name only,
never the rest: a built-in keeps its name (the newcomer is skipped with a warning naming both
distributions); between two installed plugins the name is withheld, and asking for it raises a
:class:`PluginError` naming both (strict mode raises at load). ``FUSEKIT_DISABLE_PLUGIN_AUTOLOAD=1``
loads the built-ins only.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import warnings
from dataclasses import dataclass
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy

from fusekit.plugin import BASES, KINDS, check_kind, hookspecs

ENTRY_POINT_GROUP = "fusekit"
BUILTIN_DISTRIBUTION = "fusekit-learn"
#: fusekit-learn's plugin modules outside :mod:`fusekit.builtin`, imported by name as entry
#: points are (so the engine never imports the applications above it): the data-set loaders.
BUILTIN_PLUGINS = ("fusekit.datasets.hooks",)


class PluginError(RuntimeError):
    """A plugin could not be loaded, or two plugins claim the same name."""


class PluginWarning(UserWarning):
    """A plugin failed to load and was skipped."""


@dataclass(frozen=True)
class PluginEntry:
    """One registered method."""

    name: str
    kind: str
    obj: Any
    distribution: str
    version: str
    plugin: str

    @property
    def description(self) -> str:
        doc = (getattr(self.obj, "__doc__", None) or "").strip()
        return doc.splitlines()[0] if doc else ""


@dataclass(frozen=True)
class PluginFailure:
    """An entry point that could not be loaded."""

    plugin: str
    distribution: str
    version: str
    error: str


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def _builtin_modules() -> list[ModuleType]:
    import fusekit.builtin as package

    names = [
        f"{package.__name__}.{info.name}"
        for info in pkgutil.iter_modules(package.__path__)
        if not info.name.startswith("_")
    ]
    # fusekit.builtin's own modules and the fixed BUILTIN_PLUGINS: no name comes from a file
    return [importlib.import_module(n) for n in (*names, *BUILTIN_PLUGINS)]  # safe: fixed names


class Registry:
    """Name -> class tables per plugin kind, built through the pluggy hooks."""

    def __init__(self, strict: bool | None = None, autoload: bool | None = None) -> None:
        self.strict = _env_flag("FUSEKIT_STRICT_PLUGINS") if strict is None else strict
        self.autoload = (
            not _env_flag("FUSEKIT_DISABLE_PLUGIN_AUTOLOAD") if autoload is None else autoload
        )
        self.manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.manager.add_hookspecs(hookspecs)
        self._origins: dict[int, tuple[str, str, str]] = {}
        self.failures: list[PluginFailure] = []
        #: Names two plugins claim, by ``(kind, name)``: the claimants, in load order.
        self.conflicts: dict[tuple[str, str], list[PluginEntry]] = {}
        self._entries: dict[str, dict[str, PluginEntry]] | None = None

    # -- loading -----------------------------------------------------------------------------
    def register(self, plugin: ModuleType | object, distribution: str, version: str) -> None:
        """Register a plugin object (usually a module of ``@hookimpl`` functions)."""
        name = getattr(plugin, "__name__", repr(plugin))
        if self.manager.is_registered(plugin):
            return
        self.manager.register(plugin, name=f"{distribution}:{name}")
        self._origins[id(plugin)] = (distribution, version, name)
        self._entries = None

    def _load_builtins(self) -> None:
        version = _distribution_version(BUILTIN_DISTRIBUTION)
        for module in _builtin_modules():
            self.register(module, BUILTIN_DISTRIBUTION, version)

    def _load_entry_points(self) -> None:
        for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
            distribution = entry_point.dist.name if entry_point.dist else "<unknown>"
            version = entry_point.dist.version if entry_point.dist else "?"
            try:
                plugin = entry_point.load()
            except Exception as error:  # noqa: BLE001 - isolate any broken plugin
                self._fail(entry_point.name, distribution, version, error)
                continue
            self.register(plugin, distribution, version)

    def _fail(self, plugin: str, distribution: str, version: str, error: BaseException) -> None:
        failure = PluginFailure(plugin, distribution, version, f"{type(error).__name__}: {error}")
        message = (
            f"fusekit plugin {plugin!r} from distribution {distribution} {version} failed to load "
            f"and was skipped: {failure.error}. Reinstall or uninstall {distribution}."
        )
        if self.strict:
            raise PluginError(message) from error
        self.failures.append(failure)
        warnings.warn(message, PluginWarning, stacklevel=3)

    def load(self) -> None:
        if self._entries is not None:
            return
        if not self.manager.get_plugins():
            self._load_builtins()
            if self.autoload:
                self._load_entry_points()
        self._entries = self._collect()

    def _collect(self) -> dict[str, dict[str, PluginEntry]]:
        tables: dict[str, dict[str, PluginEntry]] = {kind: {} for kind in KINDS}
        for kind, spec in KINDS.items():
            hook_name = spec.hook
            hook = getattr(self.manager.hook, hook_name)
            for impl in reversed(hook.get_hookimpls()):
                distribution, version, plugin_name = self._origins.get(
                    id(impl.plugin), ("<unknown>", "?", impl.plugin_name)
                )
                try:
                    provided = impl.function() or {}
                except Exception as error:  # noqa: BLE001 - isolate any broken plugin
                    self._fail(plugin_name, distribution, version, error)
                    continue
                if not isinstance(provided, dict):
                    self._fail(
                        plugin_name,
                        distribution,
                        version,
                        TypeError(f"{hook_name}() returned {type(provided).__name__}, not a dict"),
                    )
                    continue
                for name, obj in provided.items():
                    problem = _invalid(kind, name, obj)
                    if problem:
                        self._fail(plugin_name, distribution, version, TypeError(problem))
                        continue
                    entry = PluginEntry(name, kind, obj, distribution, version, plugin_name)
                    if (kind, name) in self.conflicts:
                        claimants = self.conflicts[kind, name]
                        claimants.append(entry)
                        claimants.sort(key=_claimant_order)
                    elif name in tables[kind]:
                        self._clash(tables[kind], tables[kind][name], entry)
                    else:
                        tables[kind][name] = entry
        return tables

    def _clash(
        self, table: dict[str, PluginEntry], first: PluginEntry, second: PluginEntry
    ) -> None:
        """Two plugins claim one name: keep a built-in's, else withhold the name from both."""
        claimants = sorted([first, second], key=_claimant_order)
        self.conflicts[first.kind, first.name] = claimants
        message = _conflict_message(claimants)
        if self.strict:
            raise PluginError(message)
        kept, skipped = claimants
        if kept.distribution == BUILTIN_DISTRIBUTION:
            table[kept.name] = kept
            message += (
                f" The built-in is kept; {skipped.plugin} from {skipped.distribution} is skipped."
            )
        else:
            del table[first.name]
            message += " Neither is used until one is uninstalled."
        warnings.warn(message, PluginWarning, stacklevel=4)

    # -- queries -----------------------------------------------------------------------------
    def names(self, kind: str) -> list[str]:
        self.load()
        assert self._entries is not None
        return sorted(self._entries[_check_kind(kind)])

    def entry(self, kind: str, name: str) -> PluginEntry:
        self.load()
        assert self._entries is not None
        kind = _check_kind(kind)
        table = self._entries[kind]
        if name not in table and (kind, name) in self.conflicts:
            raise PluginError(_conflict_message(self.conflicts[kind, name]))
        if name not in table:
            known = ", ".join(sorted(table)) or "none"
            hint = ""
            if self.failures:
                hint = " Some plugins failed to load: " + "; ".join(
                    f"{f.plugin} ({f.distribution})" for f in self.failures
                )
            raise ValueError(f"unknown {kind} {name!r}. Known {kind} names: {known}.{hint}")
        return table[name]

    def get(self, kind: str, name: str) -> Any:
        return self.entry(kind, name).obj

    def entries(self) -> list[PluginEntry]:
        self.load()
        assert self._entries is not None
        return [entry for table in self._entries.values() for entry in table.values()]

    def name_of(self, kind: str, cls: type) -> str | None:
        """The registered name of ``cls`` in ``kind``, if any."""
        entry = self.entry_of(kind, cls)
        return None if entry is None else entry.name

    def entry_of(self, kind: str, cls: type) -> PluginEntry | None:
        """The entry that registers ``cls`` as a ``kind``, if any."""
        for entry in self.entries():
            if entry.kind == kind and entry.obj is cls:
                return entry
        return None


def _claimant_order(entry: PluginEntry) -> tuple[bool, str, str]:
    """Built-ins first, then by distribution and plugin name (load order is not stable)."""
    return (entry.distribution != BUILTIN_DISTRIBUTION, entry.distribution, entry.plugin)


def _conflict_message(claimants: list[PluginEntry]) -> str:
    first = claimants[0]
    who = " and ".join(f"{c.plugin} from {c.distribution} {c.version}" for c in claimants)
    return (
        f"{len(claimants)} plugins register the {first.kind} {first.name!r}: {who}. "
        "Uninstall one of them."
    )


def _invalid(kind: str, name: Any, obj: Any) -> str | None:
    """Why ``obj`` cannot be registered as ``kind`` ``name``, or ``None`` when it can."""
    if not isinstance(name, str) or not name:
        return f"{kind} names must be non-empty strings, got {name!r}"
    if kind == "dataset":
        return None if callable(obj) else f"dataset {name!r} is {obj!r}, not a callable loader"
    base = BASES[kind]
    if not (isinstance(obj, type) and issubclass(obj, base)):
        return f"{kind} {name!r} is {obj!r}, not a subclass of fusekit.{base.__name__}"
    return None


def _check_kind(kind: str) -> str:
    return check_kind(kind).name


def _distribution_version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "0+unknown"


_REGISTRY: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, loaded on first use."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = Registry()
    _REGISTRY.load()
    return _REGISTRY


def reset_registry() -> None:
    """Forget the loaded plugins (tests; after installing a plugin at run time)."""
    global _REGISTRY
    _REGISTRY = None


def available(kind: str) -> list[str]:
    """Registered names of one plugin kind."""
    return get_registry().names(kind)
