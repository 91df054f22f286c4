"""No import circles: in ``fusekit`` and in every first-party plugin package, no module imports
itself back through other modules (imports inside functions and under ``TYPE_CHECKING`` count:
they are arrows of the drawing too), and the import-linter contracts exempt no import.

The graph is grimp's (the library under import-linter), built in a fresh interpreter whose path
holds this checkout's ``fusekit`` and ``plugins/*`` (the installed plugins may be another
checkout's). Run as a script to print the circles: ``python tests/packaging/test_import_cycles.py
fusekit fusekit_vgmr``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def import_cycles(packages: list[str]) -> list[list[str]]:
    """Each circle of direct imports among ``packages``' modules once, as ``[a, b, ..., a]``."""
    import grimp

    graph = grimp.build_graph(*packages, cache_dir=None)
    seen: set[frozenset[tuple[str, str]]] = set()
    cycles = []
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back is None:
                continue
            cycle = [importer, *back]
            edges = frozenset(zip(cycle, cycle[1:], strict=False))
            if edges not in seen:  # the same circle, entered at another of its modules
                seen.add(edges)
                cycles.append(cycle)
    return cycles


def cycles_in(packages: list[str], path: list[Path]) -> list[list[str]]:
    """:func:`import_cycles` run in a fresh interpreter with ``path`` first on ``sys.path``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in path)}
    result = subprocess.run(
        [sys.executable, __file__, *packages],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_no_import_circle_in_fusekit_or_the_first_party_plugins():
    packages = CONTRACTS["root_packages"]
    assert "fusekit" in packages and "fusekit_vgmr" in packages
    path = [ROOT, *sorted(ROOT.glob("plugins/fusekit-*"))]
    cycles = cycles_in(packages, path)
    assert cycles == [], "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_a_circle_is_found_through_a_function_and_type_checking(tmp_path):
    """The check can fail: a planted package whose modules import each other back, once inside
    a function and once under ``TYPE_CHECKING``, and a third module outside the circle."""
    package = tmp_path / "circular"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from circular import b\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from circular import c\n"
    )
    (package / "c.py").write_text("import circular.a\n")
    (package / "d.py").write_text("import circular.a\n")
    cycles = cycles_in(["circular"], [tmp_path])
    assert cycles == [["circular.a", "circular.b", "circular.c", "circular.a"]]


def test_the_import_contracts_exempt_nothing_and_forbid_circles():
    contracts = CONTRACTS["contracts"]
    exempting = [c["name"] for c in contracts if c.get("ignore_imports")]
    assert exempting == [], f"contracts with ignore_imports: {exempting}"
    acyclic = [c for c in contracts if c["type"] == "acyclic_siblings"]
    assert len(acyclic) == 1
    assert set(acyclic[0]["ancestors"]) == set(CONTRACTS["root_packages"])


if __name__ == "__main__":
    print(json.dumps(import_cycles(sys.argv[1:])))
