"""Real data sets where one modality dominates, for balancing benchmarks.

Each entry is a bundled data set (its card in ``fusekit/datasets/data/``) whose modalities are
unequal: a model on the *dominant* modality alone scores well above one on the *weak* modality
alone. The unimodal reference rows and the Shapley imbalance degree of plain joint training are
measured by ``benchmarks/balancing/table.py`` and copied onto each card.

* ``nutrimouse_diet``: hepatic lipid concentrations (dominant: the diet sets the fatty acids) and
  gene expression of 40 mice; 5 diets.
* ``mfeat_fou_mor``: two views of the UCI handwritten digits computed in different ways, the
  Fourier coefficients of the contours (dominant) and six morphological counts; 2,000 digits.
  Both views come from the same images, but they are neither redundant (a linear model on both
  beats either alone) nor equal.

Not here: ``basic_motions`` (accelerometer and gyroscope of one smartwatch). A linear model on the
flattened series favours the accelerometer (0.78 against 0.55), but fusekit's default network
scores about 0.9 on either sensor alone and 1.0 on both (``benchmarks/results/balancing_table.md``
history in ``benchmarks/balancing/README.md``): nothing dominates there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fusekit.data import Modalities
from fusekit.datasets.real import load_mfeat, load_nutrimouse


@dataclass(frozen=True)
class ImbalancedDataset:
    """A bundled data set with a known dominant modality."""

    name: str
    dominant: str
    weak: str
    card: str
    load: Callable[[], tuple[Modalities, np.ndarray]]


IMBALANCED_REAL = {
    entry.name: entry
    for entry in (
        ImbalancedDataset(
            "nutrimouse_diet", "lipid", "gene", "nutrimouse.md", lambda: load_nutrimouse("diet")
        ),
        ImbalancedDataset(
            "mfeat_fou_mor", "fou", "mor", "mfeat.md", lambda: load_mfeat(views=("fou", "mor"))
        ),
    )
}


def load_imbalanced(name: str) -> tuple[Modalities, np.ndarray]:
    """``(Modalities, y)`` of the imbalanced real data set ``name`` (:data:`IMBALANCED_REAL`)."""
    if name not in IMBALANCED_REAL:
        raise ValueError(
            f"unknown imbalanced data set {name!r}; expected one of {sorted(IMBALANCED_REAL)}"
        )
    return IMBALANCED_REAL[name].load()
