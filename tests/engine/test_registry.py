"""Plugin discovery: built-ins through the hooks, entry points, failures, duplicates, the CLI."""

import types
from importlib import metadata

import pytest

from fusekit import Fusion, FusionClassifier, hookimpl
from fusekit.cli import main
from fusekit.engine.registry import PluginError, PluginWarning, Registry, get_registry

BUILTINS = {
    "backbone": {"identity", "mlp"},
    "calibration": {"none"},
    "fusion": {"concat", "late"},
    "weighting": {"none", "modality_dropout"},
}


@pytest.mark.parametrize("kind", sorted(BUILTINS))
def test_builtins_are_registered_through_hooks(kind):
    registry = Registry(autoload=False)
    assert BUILTINS[kind] <= set(registry.names(kind))
    for name in BUILTINS[kind]:
        assert registry.entry(kind, name).distribution == "fusekit-learn"


def test_unknown_name_lists_the_known_ones(vectors):
    X, y = vectors
    with pytest.raises(ValueError, match=r"unknown fusion 'nope'.*concat.*late"):
        FusionClassifier(fusion="nope").fit(X, y)


def _plugin_module(name, fusions):
    module = types.ModuleType(name)

    @hookimpl
    def fusekit_fusions():
        return fusions

    module.fusekit_fusions = fusekit_fusions
    return module


class _Dummy(Fusion):
    """A dummy fusion."""


def test_duplicate_names_name_both_distributions_and_leave_the_rest_usable():
    registry = Registry(autoload=False)
    registry.load()
    registry.register(_plugin_module("first", {"dup": _Dummy}), "dist-one", "1.0")
    registry.register(_plugin_module("second", {"dup": _Dummy, "solo": _Dummy}), "dist-two", "2.0")
    with pytest.warns(PluginWarning, match=r"dist-one 1.0 and .*dist-two 2.0"):
        names = registry.names("fusion")
    assert "dup" not in names
    assert {"concat", "late", "solo"} <= set(names)
    assert "mlp" in registry.names("backbone")
    with pytest.raises(PluginError, match=r"fusion 'dup'.*dist-one.*dist-two"):
        registry.entry("fusion", "dup")


def test_name_clash_with_a_builtin_keeps_the_builtin():
    registry = Registry(autoload=False)
    registry.load()
    registry.register(_plugin_module("clash", {"concat": _Dummy}), "dist-x", "0.1")
    with pytest.warns(PluginWarning, match=r"concat.*fusekit-learn.*dist-x.*built-in is kept"):
        entry = registry.entry("fusion", "concat")
    assert entry.distribution == "fusekit-learn"
    assert entry.obj is not _Dummy


def test_a_third_claimant_is_listed_too():
    registry = Registry(autoload=False)
    registry.load()
    for dist in ("dist-a", "dist-b", "dist-c"):
        registry.register(_plugin_module(dist, {"dup": _Dummy}), dist, "1")
    with pytest.warns(PluginWarning):
        registry.load()
    with pytest.raises(PluginError, match=r"3 plugins.*dist-a.*dist-b.*dist-c"):
        registry.entry("fusion", "dup")


def test_strict_mode_raises_on_a_duplicate_name():
    registry = Registry(autoload=False, strict=True)
    registry.load()
    registry.register(_plugin_module("first", {"dup": _Dummy}), "dist-one", "1.0")
    registry.register(_plugin_module("second", {"dup": _Dummy}), "dist-two", "2.0")
    with pytest.raises(PluginError, match=r"dist-one.*dist-two"):
        registry.names("fusion")


class _BrokenEntryPoint:
    name = "broken"
    group = "fusekit"

    class dist:  # noqa: N801 - mimics importlib.metadata.Distribution
        name = "fusekit-broken"
        version = "9.9"

    def load(self):
        raise ImportError("no module named fusekit_broken_dependency")


def _with_broken_entry_point(monkeypatch):
    real = metadata.entry_points

    def entry_points(**kwargs):
        found = list(real(**kwargs))
        if kwargs.get("group") == "fusekit":
            found.append(_BrokenEntryPoint())
        return found

    monkeypatch.setattr(metadata, "entry_points", entry_points)


def test_broken_plugin_is_skipped_with_a_warning(monkeypatch):
    _with_broken_entry_point(monkeypatch)
    registry = Registry(strict=False)
    with pytest.warns(PluginWarning, match="fusekit-broken 9.9"):
        names = registry.names("fusion")
    assert {"concat", "late"} <= set(names)
    assert registry.failures[0].distribution == "fusekit-broken"


def test_strict_mode_raises_on_a_broken_plugin(monkeypatch):
    _with_broken_entry_point(monkeypatch)
    with pytest.raises(PluginError, match="fusekit-broken"):
        Registry(strict=True).names("fusion")


def test_strict_mode_from_environment(monkeypatch):
    _with_broken_entry_point(monkeypatch)
    monkeypatch.setenv("FUSEKIT_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError):
        Registry().names("fusion")


def test_autoload_can_be_disabled(monkeypatch):
    _with_broken_entry_point(monkeypatch)
    monkeypatch.setenv("FUSEKIT_DISABLE_PLUGIN_AUTOLOAD", "1")
    registry = Registry()
    assert "concat" in registry.names("fusion")
    assert not registry.failures


def test_cli_lists_every_plugin(capsys):
    assert main(["plugins"]) == 0
    printed = capsys.readouterr().out
    for entry in get_registry().entries():
        assert entry.name in printed
    assert "Concatenate the modality vectors" in printed
    assert "distribution" in printed.splitlines()[0]


def test_cli_filters_by_kind(capsys):
    main(["plugins", "--kind", "weighting"])
    lines = capsys.readouterr().out.splitlines()[1:]
    assert lines and all(line.startswith("weighting") for line in lines)


def test_cli_names_a_conflict_and_still_lists_the_rest(capsys, monkeypatch):
    import fusekit.engine.registry as registry_module

    registry = Registry(autoload=False)
    registry.load()
    registry.register(_plugin_module("first", {"dup": _Dummy}), "dist-one", "1.0")
    registry.register(_plugin_module("second", {"dup": _Dummy}), "dist-two", "2.0")
    with pytest.warns(PluginWarning):
        registry.load()
    monkeypatch.setattr(registry_module, "_REGISTRY", registry)
    assert main(["plugins"]) == 0
    captured = capsys.readouterr()
    assert "concat" in captured.out and "'dup'" not in captured.out
    assert "conflict: fusion 'dup' is claimed by dist-one 1.0, dist-two 2.0" in captured.err
