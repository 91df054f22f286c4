"""``fusekit.plugin.__all__`` is the methods' face: every name a method imports from
``fusekit.plugin`` is listed there, and the names only the engine reads are not (they stay
importable from the package and from their modules).

The names a method imports are read from the source of every built-in and first-party method
(``from fusekit.plugin import ...``), not from the package itself.
"""

import ast
from pathlib import Path

import fusekit.plugin as face
from fusekit.plugin import base, batch, kinds, raw

ROOT = Path(__file__).parents[2]
METHOD_SOURCES = [
    *(ROOT / "fusekit" / "builtin").glob("*.py"),
    *(ROOT / "plugins").glob("fusekit-*/fusekit_*/**/*.py"),
]
ENGINE_FACING = {
    "KINDS": kinds,
    "BASES": kinds,
    "COMPONENT_KINDS": kinds,
    "Kind": kinds,
    "check_kind": kinds,
    "RECOMMENDABLE_PARAMS": base,
    "TRAINING_HOOKS": base,
    "RAW_KINDS": raw,
    "ENCODED_KINDS": raw,
    "rows_of": batch,
}


def _imported_from_the_face(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "fusekit.plugin"
        for alias in node.names
    }


def test_every_name_a_method_imports_is_in_all():
    assert len(METHOD_SOURCES) > 30  # the built-ins and the first-party distributions
    missing = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in METHOD_SOURCES
        for name in _imported_from_the_face(path) - set(face.__all__)
    }
    assert not missing


def test_all_names_exist_and_engine_facing_names_are_left_out_but_importable():
    assert all(hasattr(face, name) for name in face.__all__)
    assert not set(ENGINE_FACING) & set(face.__all__)
    for name, module in ENGINE_FACING.items():
        assert getattr(face, name) is getattr(module, name), name
