"""Raw inputs (text, categories) for the contract checks of backbones that accept only them.

A backbone whose ``input_kinds`` holds no float kind (``vector``, ``sequence``, ``image``) but a
raw one is checked on raw values: short texts of a small vocabulary, or two columns of labels.
Informative rows name their class (``"w1"`` words, ``"c1"`` labels), so an easy task is learnable.
Its encoders are fitted through :func:`fusekit.raw_inputs.prepare`, as ``fit`` fits them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from fusekit import raw_inputs
from fusekit.data import PreparedInput
from fusekit.engine.resolve import backbones_for
from fusekit.plugin import RAW_KINDS, InputEncoder

FLOAT_KINDS = ("vector", "sequence", "image")
N_LABELS = 3  # classes of the easy task; labels and words are drawn from as many values


def raw_kind(accepted: tuple[str, ...]) -> str | None:
    """The raw kind to check a backbone on: one it accepts, where it accepts no float kind."""
    if any(kind in FLOAT_KINDS for kind in accepted):
        return None
    return next((kind for kind in accepted if kind in RAW_KINDS), None)


def values(kind: str, n: int, seed: int, y: np.ndarray | None = None) -> np.ndarray:
    """``(n, 1)`` texts or ``(n, 2)`` labels; with ``y``, each row names its class."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, N_LABELS, n) if y is None else np.asarray(y)
    noise = rng.integers(0, N_LABELS, n)
    if kind == "text":
        texts = [
            f"w{label} x{extra} w{label}" if extra else f"w{label}"
            for label, extra in zip(labels, rng.integers(0, 4, n), strict=True)
        ]
        return np.array(texts, dtype=object).reshape(-1, 1)
    cells = [[f"c{label}", f"n{other}"] for label, other in zip(labels, noise, strict=True)]
    return np.array(cells, dtype=object)


def encoders(
    kind: str, plugin: Any, params: Mapping[str, Any], names: tuple[str, ...]
) -> dict[str, InputEncoder]:
    """Each modality's encoder, made by its backbone and fitted on raw values."""
    chosen = backbones_for(plugin, params, names)
    made = {m: chosen[m].input_encoder() for m in names}
    raw = {m: values(kind, 40, seed=i) for i, m in enumerate(names)}
    raw_inputs.prepare(raw, dict.fromkeys(names, kind), made, fit=True)
    return made


def encoded(
    kind: str, fitted: Mapping[str, InputEncoder], n: int, seed: int
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Features and step masks of ``n`` fresh raw rows per modality, through ``fitted``."""
    raw = {m: values(kind, n, seed=seed + i) for i, m in enumerate(fitted)}
    prepared: PreparedInput = raw_inputs.prepare(
        raw, dict.fromkeys(fitted, kind), dict(fitted), fit=False
    )
    features = {m: torch.from_numpy(a) for m, a in prepared.arrays.items()}
    steps = {m: torch.from_numpy(s) for m, s in prepared.steps.items()}
    return features, steps
