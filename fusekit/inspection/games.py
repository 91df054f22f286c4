"""Shapley values of a small cooperative game: exact, by sampled permutations, or leave-one-out.

A game is a value function ``value(S)`` over coalitions ``S``: frozensets of player indices
``0..M-1``. A value may be a number or an array (e.g. per-sample predictions, shape ``(n, K)``);
every result is stacked as ``(M, *value_shape)``, player first.

Exact (Shapley 1953, "A value for n-person games"), ``value`` evaluated once per coalition
(``2^M`` calls)::

    phi_i = sum over S in N \\ {i} of  |S|! (M - |S| - 1)! / M!  * (v(S + {i}) - v(S))      (1)

It satisfies efficiency, ``sum_i phi_i = v(N) - v({})``, to float precision.

Permutation sampling (Castro, Gomez & Tejada 2009, "Polynomial calculation of the Shapley value
based on sampling"): equation (1) is the expectation over uniformly random orders ``pi`` of the
players of ``v(P_i + {i}) - v(P_i)``, ``P_i`` the players before ``i`` in ``pi``; it is
estimated by the mean over ``P`` sampled orders, with standard error ``std / sqrt(P)``. The
marginals of one order telescope to ``v(N) - v({})``, so the estimate is efficient exactly too.
Repeated coalitions are evaluated once.

Leave-one-out: ``v(N) - v(N \\ {i})`` (``M + 1`` calls; not a Shapley value: redundant players
share nothing and get about 0 each).

Pairwise interactions: the Shapley interaction index (Grabisch & Roubens 1999, "An axiomatic
approach to the concept of interaction among players in cooperative games", Def. 3, order 2), from
the same ``2^M`` values::

    I_ij = sum over S in N \\ {i, j} of  |S|! (M - |S| - 2)! / (M - 1)!
           * (v(S + {i, j}) - v(S + {i}) - v(S + {j}) + v(S))                             (2)

``I_ij > 0``: together the pair adds more than each alone (complementary); ``I_ij < 0``: each adds
less once the other is in (redundant: they carry the same information); 0 for additive players.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

#: ``value(coalition) -> float | ndarray``, a coalition being a frozenset of player indices.
ValueFunction = Callable[[frozenset[int]], object]


def _members(mask: int, n_players: int) -> frozenset[int]:
    return frozenset(i for i in range(n_players) if mask >> i & 1)


def shapley_weights(n_players: int) -> np.ndarray:
    """``(M, 2^M)`` matrix ``W`` with ``phi = W @ v``, ``v`` indexed by coalition bitmask (1)."""
    if n_players < 1:
        raise ValueError(f"a game needs at least one player, got n_players={n_players}.")
    factorial = [math.factorial(k) for k in range(n_players + 1)]
    weights = np.zeros((n_players, 2**n_players))
    for mask in range(2**n_players):
        size = mask.bit_count()
        for player in range(n_players):
            if mask >> player & 1:
                continue
            weight = factorial[size] * factorial[n_players - size - 1] / factorial[n_players]
            weights[player, mask | 1 << player] += weight
            weights[player, mask] -= weight
    return weights


def _values(value: ValueFunction, n_players: int) -> np.ndarray:
    """``(2^M, *value_shape)``: ``value`` of every coalition, indexed by bitmask."""
    return np.stack(
        [np.asarray(value(_members(mask, n_players)), dtype=np.float64)
         for mask in range(2**n_players)]
    )  # fmt: skip


def interaction_weights(n_players: int) -> np.ndarray:
    """``(M, M, 2^M)`` tensor ``W`` with ``I = W @ v`` (equation (2)); zero on the diagonal."""
    if n_players < 2:
        raise ValueError(f"interactions need at least two players, got n_players={n_players}.")
    factorial = [math.factorial(k) for k in range(n_players + 1)]
    weights = np.zeros((n_players, n_players, 2**n_players))
    for i in range(n_players):
        for j in range(n_players):
            if i == j:
                continue
            pair = 1 << i | 1 << j
            for mask in range(2**n_players):
                if mask & pair:
                    continue
                size = mask.bit_count()
                weight = (
                    factorial[size] * factorial[n_players - size - 2] / factorial[n_players - 1]
                )
                weights[i, j, mask | pair] += weight
                weights[i, j, mask | 1 << i] -= weight
                weights[i, j, mask | 1 << j] -= weight
                weights[i, j, mask] += weight
    return weights


def exact_shapley_interactions(value: ValueFunction, n_players: int) -> np.ndarray:
    """Pairwise Shapley interaction indices ``(M, M, *value_shape)`` by equation (2), symmetric,
    zero on the diagonal; ``value`` is called 2^M times."""
    return np.tensordot(interaction_weights(n_players), _values(value, n_players), axes=1)


def exact_shapley(value: ValueFunction, n_players: int) -> np.ndarray:
    """Exact Shapley values ``(M, *value_shape)`` by equation (1), calling ``value`` 2^M times."""
    return np.tensordot(shapley_weights(n_players), _values(value, n_players), axes=1)


def sample_permutations(
    n_players: int, n_permutations: int, rng: np.random.Generator
) -> np.ndarray:
    """``(P, M)`` uniformly random orders of the players, one per row."""
    return rng.permuted(np.tile(np.arange(n_players), (n_permutations, 1)), axis=1)


def permutation_shapley(
    value: ValueFunction, permutations: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Sampled Shapley values and their standard errors, each ``(M, *value_shape)``.

    ``permutations`` ``(P, M)``: the orders to average over (see :func:`sample_permutations`).
    The standard error is NaN for a single order.
    """
    n_orders, n_players = permutations.shape
    memo: dict[frozenset[int], np.ndarray] = {}

    def cached(coalition: frozenset[int]) -> np.ndarray:
        if coalition not in memo:
            memo[coalition] = np.asarray(value(coalition), dtype=np.float64)
        return memo[coalition]

    mean: np.ndarray | float = 0.0
    squares: np.ndarray | float = 0.0  # Welford's running sum of squared deviations
    for count, order in enumerate(permutations, start=1):
        coalition: frozenset[int] = frozenset()
        previous = cached(coalition)
        marginals = np.empty((n_players, *previous.shape))
        for player in order:
            coalition = coalition | {int(player)}
            current = cached(coalition)
            marginals[player] = current - previous  # v(P_i + {i}) - v(P_i)
            previous = current
        delta = marginals - mean
        mean = mean + delta / count
        squares = squares + delta * (marginals - mean)
    if n_orders < 2:
        return np.asarray(mean), np.full_like(np.asarray(mean), np.nan)
    return np.asarray(mean), np.sqrt(np.asarray(squares) / (n_orders - 1) / n_orders)


def leave_one_out(value: ValueFunction, n_players: int) -> np.ndarray:
    """``v(N) - v(N \\ {i})`` for each player, ``(M, *value_shape)``; ``M + 1`` calls."""
    everyone = frozenset(range(n_players))
    full = np.asarray(value(everyone), dtype=np.float64)
    return np.stack(
        [full - np.asarray(value(everyone - {i}), dtype=np.float64) for i in range(n_players)]
    )
