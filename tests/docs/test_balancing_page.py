"""docs/balancing.md: its at-a-glance table says what the classes declare, each balancing method
sits once under its group (BalanceBenchmark's, for the methods it lists), and its composition
recipes fit.

The expected flags are the classes' own declarations (``needs_unimodal_heads``,
``needs_all_training_rows``, ``needs_training_data``, ``data_parallel_safe``,
``supported_tasks``, a ``task_loss`` override, a ``validation_fraction`` parameter), not anything
the page derives; the expected groups for BalanceBenchmark's methods are copied from its README
("Algorithms currently supported", GeWu-Lab/BalanceBenchmark), an independent source.
"""

from __future__ import annotations

import ast
import inspect
import re
import runpy
from pathlib import Path

import numpy as np
import pytest

from fusekit import FusionClassifier
from fusekit.datasets import make_imbalanced_classification
from fusekit.engine.registry import get_registry
from fusekit.plugin import Weighting

ROOT = Path(__file__).parents[2]
PAGE = (ROOT / "docs" / "balancing.md").read_text(encoding="utf-8")
GROUPS = {
    "data": "Data level",
    "feed-forward": "Feed-forward level",
    "objective": "Objective level",
    "optimisation": "Optimisation level",
}
#: BalanceBenchmark's README, "Algorithms currently supported", in fusekit's names.
BALANCEBENCHMARK_GROUPS = {
    "sample_valuation": "data",
    "mla": "feed-forward",
    "opm": "feed-forward",
    "greedy": "feed-forward",
    "amco": "feed-forward",
    "mmcosine": "objective",
    "umt": "objective",
    "mbsd": "objective",
    "cml": "objective",
    "mmpareto": "objective",
    "gradient_blending": "objective",
    "lfm": "objective",
    "ogm_ge": "optimisation",
    "agm": "optimisation",
    "pmr": "optimisation",
    "relearning": "optimisation",
    "reconboost": "optimisation",
}
COLUMNS = [
    "group",
    "name",
    "unimodal heads",
    "extra work",
    "held-out rows",
    "all training rows",
    "owns the task loss",
    "data-parallel",
    "tasks",
]


def _section(heading: str) -> str:
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", PAGE, re.M | re.S)
    assert match, f"docs/balancing.md has no '## {heading}' section"
    return match.group(1)


def _table_rows(text: str, first_header: str) -> list[list[str]]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def _glance() -> dict[str, dict[str, str]]:
    header = _table_rows(_section("At a glance"), "group")
    rows = {}
    for cells in header:
        entry = dict(zip(COLUMNS, cells, strict=True))
        name = re.match(r"`(\w+)`", entry["name"]).group(1)
        assert name not in rows, f"{name} appears twice in the at-a-glance table"
        rows[name] = entry
    return rows


def _balancing_methods() -> list[str]:
    table = runpy.run_path(str(ROOT / "benchmarks" / "balancing" / "table.py"), run_name="table")
    return table["balancing_methods"]()


def _component(name: str):
    registry = get_registry()
    kind = "fusion" if name == "mmcosine" else "weighting"
    return registry.get(kind, name)


def _expected(name: str) -> dict[str, str]:
    cls = _component(name)
    instance = cls()  # instance flags: some follow a default parameter (``unimodal="auto"``)
    if cls.needs_all_training_rows:
        rows = "every row"
    elif cls.needs_training_data:
        rows = "in memory"
    else:
        rows = "no"
    owns = issubclass(cls, Weighting) and cls.task_loss is not Weighting.task_loss
    tasks = tuple(cls.supported_tasks)
    holds_out = "validation_fraction" in inspect.signature(cls).parameters
    return {
        "unimodal heads": "yes" if instance.needs_unimodal_heads else "no",
        "held-out rows": "yes" if holds_out else "no",
        "all training rows": rows,
        "owns the task loss": "yes" if owns else "no",
        "data-parallel": "yes" if instance.data_parallel_safe else "no",
        "tasks": "both" if set(tasks) == {"classification", "regression"} else tasks[0],
    }


def test_every_balancing_method_is_in_the_table_once():
    documented = set(_glance())
    registered = set(_balancing_methods()) | {"mmcosine"}
    assert registered <= documented, f"missing from the table: {sorted(registered - documented)}"
    unregistered = documented - registered
    assert all("fusekit-" in _glance()[name]["name"] for name in unregistered), (
        f"documented but not registered (and not marked as a plugin): {sorted(unregistered)}"
    )


@pytest.mark.parametrize("name", sorted(set(_balancing_methods()) | {"mmcosine"}))
def test_the_table_says_what_the_class_declares(name):
    row = _glance()[name]
    expected = _expected(name)
    # a cell may explain itself after its value: "no (splits the concat head)"
    got = {column: row[column].split(" (")[0] for column in expected}
    assert got == expected, f"{name}: the table says {got}, the class declares {expected}"


def test_groups_are_balancebenchmarks_and_each_method_has_one_section_under_its_group():
    rows = _glance()
    for name, group in BALANCEBENCHMARK_GROUPS.items():
        assert rows[name]["group"] == group, f"{name}: BalanceBenchmark puts it in {group}"
    for name, entry in rows.items():
        assert entry["group"] in GROUPS, f"{name}: unknown group {entry['group']!r}"
        unlisted = "*" in entry["name"]
        assert unlisted == (name not in BALANCEBENCHMARK_GROUPS), f"{name}: the * mark is wrong"
        headings = re.findall(rf"^### `{name}`", PAGE, re.M)
        assert len(headings) == 1, f"{name}: {len(headings)} sections, expected one"
        assert re.search(rf"^### `{name}`", _section(GROUPS[entry["group"]]), re.M), (
            f"{name}: its section is not under '## {GROUPS[entry['group']]}'"
        )


def _recipes() -> list[dict]:
    rows = _table_rows(_section("Composition"), "recipe")
    recipes = []
    for cells in rows:
        code = re.match(r"`([^`]+)`", cells[0]).group(1)
        call = ast.parse(f"f({code})", mode="eval").body
        recipes.append({kw.arg: ast.literal_eval(kw.value) for kw in call.keywords})
    return recipes


@pytest.mark.parametrize("recipe", _recipes(), ids=str)
def test_each_composition_recipe_fits_with_the_components_it_names(recipe):
    registry = get_registry()
    if recipe.get("calibration") not in (None, *registry.names("calibration")):
        pytest.skip(f"calibration {recipe['calibration']!r} is a plugin not installed here")
    X, y = make_imbalanced_classification(48, imbalance=8.0, random_state=0)
    model = FusionClassifier(max_epochs=1, batch_size=16, random_state=0, **recipe).fit(X, y)
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    network = model.module_
    names = recipe.get("weighting", "none")
    names = [names] if isinstance(names, str) else names
    assert [type(w) for w in network.weightings] == [registry.get("weighting", n) for n in names]
    if "fusion" in recipe:
        assert type(network.fusion) is registry.get("fusion", recipe["fusion"])
    if "calibration" in recipe:
        assert type(network.calibration) is registry.get("calibration", recipe["calibration"])
