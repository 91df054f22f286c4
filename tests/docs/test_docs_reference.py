"""docs/reference.md lists every registered plugin and is what docs/make_reference.py writes."""

import importlib.util
import sys
from pathlib import Path

import pytest
from first_party import first_party_entries, registry_with_an_extra_plugin

import fusekit.engine.registry

DOCS = Path(__file__).parents[2] / "docs"


def _make_reference():
    spec = importlib.util.spec_from_file_location("make_reference", DOCS / "make_reference.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


make_reference = _make_reference()
# the repository's own plugins: an environment may hold other fusekit plugins
ENTRIES = sorted(first_party_entries(), key=lambda e: (e.kind, e.name))
METHODS = [e for e in ENTRIES if e.kind != "dataset"]
DATASETS = [e for e in ENTRIES if e.kind == "dataset"]


def _reference() -> str:
    return (DOCS / "reference.md").read_text()


def _ids(entries):
    return [f"{e.kind}-{e.name}" for e in entries]


@pytest.mark.parametrize("entry", METHODS, ids=_ids(METHODS))
def test_every_registered_method_is_in_the_reference(entry):
    assert f"### `{entry.name}` ({entry.kind})" in _reference(), (
        f"{entry.kind} {entry.name!r} ({entry.distribution}) is missing from docs/reference.md: "
        "add its notes to docs/make_reference.py and run it"
    )


@pytest.mark.parametrize("entry", DATASETS, ids=_ids(DATASETS))
def test_every_registered_dataset_is_in_the_reference(entry):
    assert f"### `{entry.name}` (dataset)" in _reference()


def test_reference_has_plugins_of_every_kind():
    assert {e.kind for e in ENTRIES} >= {"fusion", "backbone", "calibration", "weighting"}
    assert DATASETS, "no data set registered"


@pytest.mark.parametrize("entry", ENTRIES, ids=_ids(ENTRIES))
def test_every_plugin_has_hand_written_paper_equations_and_when_to_use(entry):
    note = make_reference.NOTES.get((entry.kind, entry.name))
    assert note is not None, f"add NOTES[({entry.kind!r}, {entry.name!r})] to make_reference.py"
    assert note.paper and note.equations and note.when


def test_reference_is_up_to_date():
    text, _ = make_reference.render(first_party_entries())
    assert text == _reference(), (
        "docs/reference.md is stale: run .venv/bin/python docs/make_reference.py"
    )


def test_an_extra_installed_plugin_leaves_the_reference_checks_passing(monkeypatch):
    registry = registry_with_an_extra_plugin()
    assert make_reference.render(registry.entries())[0] != _reference()  # unfiltered: would fail
    monkeypatch.setattr(fusekit.engine.registry, "get_registry", lambda: registry)
    ours = first_party_entries()
    assert "elsewhere_fusion" not in {e.name for e in ours}
    assert sorted(ours, key=lambda e: (e.kind, e.name)) == ENTRIES
    test_reference_is_up_to_date()
    test_parameters_come_from_the_init_signature()


def test_parameters_come_from_the_init_signature():
    """Each method's section lists exactly its ``__init__`` parameters, with their defaults."""
    text, _ = make_reference.render(first_party_entries())
    concat = text.split("### `concat` (fusion)")[1].split("\n### ")[0]
    assert "`indicators: bool = False`" in concat
    for entry in METHODS:
        section = text.split(f"### `{entry.name}` ({entry.kind})")[1].split("\n### ")[0]
        for parameter in make_reference._parameters(entry):
            assert f"`{parameter.name}:" in section or f"`{parameter.name} =" in section


def test_docstring_parameter_sections_are_parsed():
    class Documented:
        """Summary.

        Parameters:
            alpha: the first
                one, continued.
            beta, gamma: shared meaning.
        """

    assert make_reference.docstring_params(Documented) == {
        "alpha": "the first one, continued.",
        "beta": "shared meaning.",
        "gamma": "shared meaning.",
    }
