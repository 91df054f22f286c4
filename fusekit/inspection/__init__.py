"""Model inspection: which modalities does a fitted model rely on?

``modality_importance`` attributes the score to the modalities by marking them absent (exact
Shapley values over modality subsets, sampled permutations, or leave-one-out), optionally per
sample; ``modality_interactions`` tells redundant from complementary pairs (pairwise Shapley
interactions from the same cached predictions); ``plot_modality_importance`` draws the table.
The game-theory part works on any value function: ``exact_shapley``,
``exact_shapley_interactions``, ``permutation_shapley``, ``leave_one_out``. ``imbalance_degree``
folds the Shapley values into BalanceBenchmark's one-number imbalance measure.
"""

from fusekit.inspection.games import (
    exact_shapley,
    exact_shapley_interactions,
    leave_one_out,
    permutation_shapley,
    sample_permutations,
)
from fusekit.inspection.imbalance import imbalance_degree, imbalance_from_shapley
from fusekit.inspection.importance import ModalityContributions, modality_importance
from fusekit.inspection.interactions import modality_interactions
from fusekit.inspection.plot import plot_modality_importance

__all__ = [
    "ModalityContributions",
    "exact_shapley",
    "exact_shapley_interactions",
    "imbalance_degree",
    "imbalance_from_shapley",
    "leave_one_out",
    "modality_importance",
    "modality_interactions",
    "permutation_shapley",
    "plot_modality_importance",
    "sample_permutations",
]
