"""Training budgets stated in optimiser steps (``BenchConfig(budget_steps=N)``, ``--budget-steps``).

An epoch budget is not the same budget on every data set: 5 epochs are 105 optimiser steps on a
1333-row training fold at batch size 64, but 5 steps on BasicMotions' 53 rows (one batch per
epoch), where the methods that need more updates (SCFAE's auto-encoders, low-rank and tensor
fusion) stay at chance. A step budget gives every configuration the same number of parameter
updates whatever the fold's size: each fit trains for the fewest whole epochs that reach ``N``
steps, ``ceil(N / ceil(n_train / batch_size))``, with its own batch size (64, the estimator's
default, unless set). Everything else a method recommends (lr, optimiser, schedule) still applies.

Why steps rather than epochs with early stopping on an inner validation split: on the small data
sets that need the budget most, a validation split holds out a large share of rows (at the default
``validation_fraction=0.1``, 6 of BasicMotions' 53 rows, 1.5 per class, whose loss then decides
the stopping epoch) that the fit then never learns from, and its stopping epoch is decided by
a handful of rows; a step budget costs no data and is the same for every configuration.
"""

from __future__ import annotations

import math

#: The estimator's default batch size (``FusionClassifier(batch_size=64)``).
DEFAULT_BATCH_SIZE = 64


def epochs_for(steps: int, n_train: int, batch_size: int | None = None) -> int:
    """The fewest whole epochs that give at least ``steps`` optimiser steps on ``n_train`` rows
    in batches of ``batch_size`` (the last, partial batch is a step too)."""
    batch = DEFAULT_BATCH_SIZE if batch_size is None else int(batch_size)
    per_epoch = max(1, math.ceil(n_train / batch))
    return max(1, math.ceil(steps / per_epoch))
