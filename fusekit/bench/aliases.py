"""Components that are another component under a different name, found by what they do.

A grid axis may list two names for one method (``all`` includes, e.g., a composite weighting
whose default has no steps, which trains exactly like the plain one). No name is special-cased:
each candidate is fitted once on a small fixed probe (:func:`probe_fingerprint`: 32 samples, two
vector modalities, 3 classes, 4 epochs, batch 8, seed 0, the other axes at the estimator's
defaults), and two components whose predicted probabilities on the probe are bit-identical are
one method. The one kept is the estimator's default for that axis if it is among them, else the
first listed. A component whose probe fit fails (e.g. a sequence backbone on vector data) is
always kept. The probe is a heuristic: a component that differs only after more than 4 epochs or
only on sequence data would be merged; fingerprints are cached per process.

:func:`dealias` is the one place that fits these probes: ``run_bench`` calls it once, and the
grid, the plan and the pre-flight checks then see only the distinct axes it returns (planning
trains nothing).
"""

from __future__ import annotations

import dataclasses
import hashlib
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from fusekit.bench.config import GRID_KINDS, BenchConfig, estimator_default, expand
from fusekit.bench.runner import torch_threads

_CACHE: dict[tuple[str, Any], str | None] = {}


def probe_fingerprint(kind: str, spec: Any) -> str | None:
    """A hash of the probe model's predicted probabilities with ``kind=spec``; None if the
    probe fit fails."""
    key = (kind, spec)
    if key in _CACHE:
        return _CACHE[key]
    from fusekit.data import Modalities
    from fusekit.estimator import FusionClassifier

    rng = np.random.default_rng(0)
    X = Modalities(a=rng.normal(size=(32, 3)), b=rng.normal(size=(32, 2)))
    y = np.arange(32) % 3
    try:
        with torch_threads(1), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = FusionClassifier(
                **{kind: spec}, max_epochs=4, batch_size=8, random_state=0, verbose=0
            ).fit(X, y)
            proba = np.asarray(model.predict_proba(X), dtype=np.float64)
        found = hashlib.sha1(proba.tobytes()).hexdigest()
    except Exception:  # noqa: BLE001 - a component the probe cannot fit is kept as distinct
        found = None
    _CACHE[key] = found
    return found


def distinct(kind: str, values: Sequence[Any]) -> tuple[list[Any], dict[Any, Any]]:
    """``(kept, dropped)``: ``values`` without aliases, and ``{dropped: the one kept}``."""
    if len(values) < 2:
        return list(values), {}
    default = estimator_default(kind)
    order = sorted(values, key=lambda v: v != default)  # the default first, else list order
    kept_by_print: dict[str, Any] = {}
    dropped: dict[Any, Any] = {}
    for value in order:
        found = probe_fingerprint(kind, value)
        if found is not None and found in kept_by_print:
            dropped[value] = kept_by_print[found]
        elif found is not None:
            kept_by_print[found] = value
    return [v for v in values if v not in dropped], dropped


def dealias(config: BenchConfig) -> tuple[BenchConfig, dict[str, dict[Any, Any]]]:
    """``(config with each axis's distinct values, {kind: {alias: the one kept}})``: every
    axis expanded (``all``, names checked) and its aliases dropped; only axes that lost one
    are in the second item."""
    kept, dropped = {}, {}
    for kind in GRID_KINDS:
        kept[kind], dropped[kind] = distinct(kind, expand(kind, getattr(config, kind)))
    return dataclasses.replace(config, **kept), {kind: d for kind, d in dropped.items() if d}
