"""Synthetic data for the catalogue tests: easy tasks with any number of modalities.

A module of its own (not ``conftest``): test folders have no ``__init__``, so
``from conftest import`` could pick up another folder's conftest."""

import numpy as np

from fusekit.engine.registry import Registry

#: Every fusion shipped in ``fusekit.builtin`` (plugins test themselves in their own folders).
BUILTIN_FUSIONS = Registry(autoload=False).names("fusion")


def easy_task(n, n_modalities, kind, missing, seed=0, shift=1.5):
    """Binary task where every modality carries the label: ``({name: array}, y)``.

    Modality i has width 2 + i, as a vector ``(n, d)`` or a sequence ``(n, 4, d)``; with
    ``missing`` each modality is absent (all NaN) for ~30 % of the rows, independently.
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    sign = (2 * y - 1).astype(float)
    arrays = {}
    for i in range(n_modalities):
        shape = (n, 2 + i) if kind == "vector" else (n, 4, 2 + i)
        values = rng.normal(size=shape) + shift * sign.reshape(-1, *([1] * (len(shape) - 1)))
        if missing:
            values[rng.random(n) < 0.3] = np.nan
        arrays[f"m{i}"] = values
    return arrays, y
