"""Tasks for the BTW tests on which every modality carries necessary information.

A uniquely named module (not ``conftest``) so that it cannot collide with another test folder's
helpers when the whole repository's tests run in one session.
"""

import numpy as np

from fusekit import Modalities


def exclusion_task(n_modalities, n, seed, strength=3.0):
    """M + 1 classes; modality m names one class that y is *not*; y is the class nobody names.

    The M modalities exclude the M classes other than y, each a different one, in random order,
    as a one-hot bump of height ``strength`` over unit noise (plus two pure-noise columns). An
    additive (concat + linear head) model can be exact; a model that ignores any one modality m
    is left with two equally likely candidates (y and the class m excludes), so its accuracy is
    at most 1/2 (chance 1/(M + 1)).
    """
    rng = np.random.default_rng(seed)
    n_classes = n_modalities + 1
    y = rng.integers(0, n_classes, n)
    excluded = np.array([[c for c in range(n_classes) if c != label] for label in y])
    excluded = rng.permuted(excluded, axis=1)  # (n, M): the class modality m excludes
    blocks = {}
    for m in range(n_modalities):
        block = rng.normal(size=(n, n_classes + 2))
        block[np.arange(n), excluded[:, m]] += strength
        blocks[f"m{m}"] = block
    return Modalities(**blocks), y


def sum_task(n_modalities, n, seed, noise=0.3):
    """Two outputs ±(s_1 + … + s_M)/√M + noise, s_m ~ N(0, 1) in modality m's first column.

    Each modality carries an equal 1/M share of the target's signal variance, so a model that
    ignores one has R² ≤ 1 − 1/M (1/2 for M = 2) while a full model can reach
    1/(1 + noise²) ≈ 0.92.
    """
    rng = np.random.default_rng(seed)
    parts = rng.normal(size=(n, n_modalities))
    blocks = {
        f"m{m}": np.column_stack([parts[:, m], rng.normal(size=(n, 2 + m))])
        for m in range(n_modalities)
    }
    total = parts.sum(axis=1) / np.sqrt(n_modalities)
    y = np.stack([total + noise * rng.normal(size=n), -total + noise * rng.normal(size=n)], 1)
    return Modalities(**blocks), y


def split(X, y, n_train):
    """The first ``n_train`` rows to fit on, the rest (same distribution) to score on."""
    head = Modalities(**{name: X[name][:n_train] for name in X})
    tail = Modalities(**{name: X[name][n_train:] for name in X})
    return head, y[:n_train], tail, y[n_train:]
