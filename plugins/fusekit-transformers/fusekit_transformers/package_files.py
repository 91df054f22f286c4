"""The files the ``wordllama`` wheel ships, found without importing the package."""

from __future__ import annotations

import importlib.util
from pathlib import Path

#: The configuration whose weights the wheel ships (Llama 2 tokenizer, 256 dimensions).
CONFIG = "l2_supercat"
WEIGHTS = f"weights/{CONFIG}_256.safetensors"
TOKENIZER = f"tokenizers/{CONFIG}_tokenizer_config.json"
TENSOR = "embedding.weight"


def package_file(relative: str) -> Path:
    """A file of the installed ``wordllama`` package; ``ImportError`` saying what to install."""
    spec = importlib.util.find_spec("wordllama")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "the wordllama backbone needs the wordllama package, whose wheel ships its weights: "
            "pip install fusekit-transformers (or pip install wordllama)."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise FileNotFoundError(
            f"the installed wordllama package has no {relative}; reinstall wordllama (0.4)."
        )
    return path


def tokenizer_bytes() -> bytes:
    """wordllama's tokenizer file (a ``tokenizers`` JSON)."""
    return package_file(TOKENIZER).read_bytes()
