"""Early stopping in scikit-learn's terms on a fixed validation split (skorch callbacks).

``FusionClassifier(early_stopping=True)`` holds out a stratified, shuffled, seeded
``validation_fraction`` of the training rows (:func:`sklearn.model_selection.train_test_split`),
hands skorch a :class:`FixedSplit` of them as ``train_split`` and monitors the validation loss with
:class:`BestValidationStopping`: ``MLPClassifier``'s rule (stop after ``n_iter_no_change``
consecutive epochs whose score does not beat the best by ``tol``), with the score being minus
the validation loss as in ``HistGradientBoosting*(scoring="loss")``; the weights of the best
epoch are restored when training ends.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from skorch.callbacks import Callback
from torch.utils.data import Subset


class FixedSplit:
    """A skorch ``train_split``: the given training and validation rows, whatever the data."""

    def __init__(self, train_rows: np.ndarray, valid_rows: np.ndarray) -> None:
        self.train_rows = np.asarray(train_rows, dtype=np.int64)
        self.valid_rows = np.asarray(valid_rows, dtype=np.int64)

    def __call__(self, dataset: Any, y: Any = None, **fit_params: Any) -> tuple[Subset, Subset]:
        n = len(dataset)
        if max(self.train_rows.max(), self.valid_rows.max()) >= n:
            raise ValueError(f"FixedSplit holds row numbers beyond the {n} rows of the data")
        return Subset(dataset, self.train_rows.tolist()), Subset(dataset, self.valid_rows.tolist())


class BestValidationStopping(Callback):
    """Stops when ``-valid_loss`` has not beaten the best by ``tol`` for ``n_iter_no_change``
    consecutive epochs; restores the best epoch's weights at the end of training.

    Fitted: ``best_epoch_`` (skorch's 1-based history epoch), ``best_score_`` (``-valid_loss``).
    """

    def __init__(self, n_iter_no_change: int = 10, tol: float = 1e-4) -> None:
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol

    def initialize(self) -> BestValidationStopping:
        self._reset()
        return self

    def _reset(self) -> None:
        self.best_score_ = -math.inf
        self.best_epoch_: int | None = None
        self.misses_ = 0
        self._best_state: dict[str, torch.Tensor] | None = None

    def on_train_begin(self, net: Any, **kwargs: Any) -> None:
        self._reset()

    def on_epoch_end(self, net: Any, **kwargs: Any) -> None:
        row = net.history[-1]
        score = -float(row["valid_loss"])
        if score < self.best_score_ + self.tol:  # MLPClassifier's _update_no_improvement_count
            self.misses_ += 1
        else:
            self.misses_ = 0
        if score > self.best_score_:
            self.best_score_ = score
            self.best_epoch_ = int(row["epoch"])
            self._best_state = {
                key: value.detach().clone() for key, value in net.module_.state_dict().items()
            }
        if self.misses_ >= self.n_iter_no_change:
            raise KeyboardInterrupt  # skorch's way to end fit_loop; on_train_end still runs

    def on_train_end(self, net: Any, **kwargs: Any) -> None:
        if self._best_state is not None:
            net.module_.load_state_dict(self._best_state)
            self._best_state = None
