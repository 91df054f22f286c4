"""A repository script (a benchmark) loaded as a module, for tests of its report functions."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def load_script(path: str) -> ModuleType:
    """The script at ``path`` (relative to the repository root), run as a fresh module."""
    name = Path(path).stem + "_under_test"
    spec = importlib.util.spec_from_file_location(name, ROOT / path)  # safe: a repo script
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
