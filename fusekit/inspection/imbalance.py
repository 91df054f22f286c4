"""How unevenly a fitted model relies on its modalities: the Shapley imbalance degree.

BalanceBenchmark (Xu et al., arXiv:2502.10816) measures modality imbalance from per-modality
Shapley values of the accuracy game, with absent modalities as the coalition's complement (its
toolkit: ``balancemm/evaluation/modalitys.py``, ``Calculate_Shapley``). fusekit plays the same
game with :func:`~fusekit.inspection.modality_importance` (exact Shapley over the ``2^M``
coalitions, absent = all-NaN rows through the model's own mask handling) and folds the values
``φ_1 .. φ_M`` into one number::

    ID = Σ_{i<j} |φ_i − φ_j| / ((M − 1) · Σ_i |φ_i|)        in [0, 1]

For two modalities ``ID = |φ_1 − φ_2| / (|φ_1| + |φ_2|)``: 0 when both add the same to the score,
1 when one adds everything and the other nothing. Each pair counts once and the ``M − 1`` keeps the
bound 1 for any ``M`` (one modality holding all the credit gives ``(M − 1) Σ|φ| / ((M − 1) Σ|φ|)``).
``ID`` is 0 when no modality contributes at all (``Σ |φ| = 0``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fusekit.inspection.importance import modality_importance


def imbalance_from_shapley(values: Any) -> float:
    """``Σ_{i<j} |φ_i − φ_j| / ((M − 1) Σ |φ_i|)`` of per-modality Shapley values ``values``."""
    phi = np.asarray(values, dtype=np.float64).ravel()
    if phi.size < 2 or not np.isfinite(phi).all():
        raise ValueError(
            f"imbalance needs at least two finite Shapley values, got {phi.tolist()!r}"
        )
    total = np.abs(phi).sum()
    if total == 0:
        return 0.0
    pairs = np.abs(phi[:, None] - phi[None, :])[np.triu_indices(phi.size, k=1)].sum()
    return float(pairs / ((phi.size - 1) * total))


def imbalance_degree(model: Any, X: Any, y: Any, *, scoring: Any = None) -> tuple[float, dict]:
    """The Shapley imbalance degree of a fitted ``model`` on ``(X, y)`` and the Shapley values
    ``{modality: φ}`` it comes from (exact, no bootstrap; ``scoring`` as in
    :func:`~fusekit.inspection.modality_importance`, default the model's score)."""
    table = modality_importance(model, X, y, scoring=scoring, method="shapley", n_repeats=0)
    shapley = dict(zip(table["modality"], table["importance"].astype(float), strict=True))
    return imbalance_from_shapley(list(shapley.values())), shapley
