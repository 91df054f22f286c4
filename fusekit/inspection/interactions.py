"""Which pairs of modalities are redundant, and which complementary? Pairwise interactions.

The same score game as :func:`fusekit.inspection.modality_importance` (a coalition's value is the
model's score with only its modalities present, the others marked absent) and the same ``2^M``
cached predictions; the pairwise Shapley interaction index of each pair (equation (2) of
:mod:`fusekit.inspection.games`, Grabisch & Roubens 1999):

- ``I_ab > 0``: **complementary**: together the pair scores more than each adds alone;
- ``I_ab < 0``: **redundant**: each adds less once the other is present (shared information);
- ``I_ab = 0``: additive.

``std``: the standard deviation over bootstrap resamples of the rows (predictions reused).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils import check_random_state

from fusekit.inspection.games import exact_shapley_interactions
from fusekit.inspection.importance import ScoreGame

COLUMNS = ["modality_a", "modality_b", "interaction", "std", "kind", "metric"]


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def modality_interactions(
    model: Any,
    X: Any,
    y: Any,
    *,
    scoring: str | Callable | None = None,
    max_modalities: int = 8,
    n_repeats: int = 20,
    tolerance: float = 1e-12,
    random_state: int | np.random.RandomState | None = None,
) -> pd.DataFrame:
    """Pairwise Shapley interactions of ``model``'s modalities on ``(X, y)``, exact (``2^M``
    predictions; refused above ``max_modalities``).

    Parameters are those of :func:`~fusekit.inspection.modality_importance`; ``tolerance``: an
    interaction within ±tolerance is called ``"additive"``.

    Returns a DataFrame ``modality_a, modality_b, interaction, std, kind, metric``, one row per
    pair, strongest (largest absolute interaction) first; ``kind`` is ``"complementary"``,
    ``"redundant"`` or ``"additive"``. ``table.attrs["matrix"]`` holds the ``(M, M)`` matrix
    (zero diagonal) as a DataFrame indexed by modality.
    """
    max_modalities = _check_int("max_modalities", max_modalities, 2)
    n_repeats = _check_int("n_repeats", n_repeats, 0)
    game = ScoreGame.of(model, X, y, scoring, "modality_interactions")
    n_players = len(game.names)
    if n_players < 2:
        raise ValueError(f"modality_interactions needs two or more modalities, got {game.names}.")
    if n_players > max_modalities:
        raise ValueError(
            f"modality_interactions is exact over 2^M coalitions: {n_players} modalities need "
            f"{2**n_players} predictions, above max_modalities={max_modalities}; raise it or "
            f"select modalities."
        )
    seed = int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
    everyone = np.arange(game.n_samples)
    matrix = exact_shapley_interactions(game.on(everyone), n_players)  # (M, M)
    bootstrap = np.random.default_rng([seed, 2])
    replicates = np.array(
        [exact_shapley_interactions(
            game.on(bootstrap.integers(0, game.n_samples, game.n_samples)), n_players)
         for _ in range(n_repeats)]
    ).reshape(n_repeats, n_players, n_players)  # fmt: skip
    spread = (
        replicates.std(axis=0, ddof=1) if n_repeats > 1 else np.full((n_players, n_players), np.nan)
    )
    rows = []
    for a, b in combinations(range(n_players), 2):
        value = float(matrix[a, b])
        kind = "additive"
        if value > tolerance:
            kind = "complementary"
        elif value < -tolerance:
            kind = "redundant"
        rows.append((game.names[a], game.names[b], value, float(spread[a, b]), kind, game.metric))
    table = pd.DataFrame(rows, columns=COLUMNS)
    order = table["interaction"].abs().sort_values(ascending=False, kind="stable").index
    table = table.loc[order].reset_index(drop=True)
    table.attrs["matrix"] = pd.DataFrame(matrix, index=game.names, columns=game.names)
    table.attrs["n_model_calls"] = game.predictions.model_calls
    return table
