"""Robustness toolkit: corrupt or remove modalities at test time and score any fitted estimator.

``robustness_curve`` (noise / salt-and-pepper / zero-out / removal / temporal shuffle at levels),
``missing_modality_table`` (every subset of modalities removed), ``plot_robustness`` and the
``corrupt`` function they build on. Corruptions live in ``CORRUPTIONS`` (name -> ``Corruption``);
pass your own ``Corruption`` wherever a name is accepted.
"""

from fusekit.robustness.corruptions import CORRUPTIONS, Corruption, apply_corruption
from fusekit.robustness.plot import plot_robustness
from fusekit.robustness.protocols import corrupt, missing_modality_table, robustness_curve

__all__ = [
    "CORRUPTIONS",
    "Corruption",
    "apply_corruption",
    "corrupt",
    "missing_modality_table",
    "plot_robustness",
    "robustness_curve",
]
