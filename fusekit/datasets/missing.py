"""Keep a naturally missing modality absent through a feature transformer.

A ``TfidfVectorizer`` cannot take a missing review, and an imputed one would reach the network as a
real (empty) document. :class:`AbsentWhereMissing` fits its transformer on the rows whose input is
present and writes all-NaN output rows where the input is missing, which fusekit reads as
"modality absent for this sample" (see :mod:`fusekit.data`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.utils.validation import check_is_fitted


def _present_rows(X: Any) -> np.ndarray:
    """``(n,)`` True where the row has at least one non-missing value."""
    frame = X.to_frame() if isinstance(X, pd.Series) else pd.DataFrame(np.asarray(X, dtype=object))
    return frame.notna().any(axis=1).to_numpy()


def _rows(X: Any, rows: np.ndarray) -> Any:
    return X[rows] if not isinstance(X, (pd.Series, pd.DataFrame)) else X.iloc[rows]


class AbsentWhereMissing(TransformerMixin, BaseEstimator):
    """Apply ``transformer`` to present rows; output all-NaN rows where the input is missing.

    Parameters:
        transformer: any sklearn transformer (or pipeline), e.g.
            ``make_pipeline(TfidfVectorizer(), TruncatedSVD(32))``.

    A row is missing when all its input values are missing (NaN/None). Dense output only.
    """

    def __init__(self, transformer: Any) -> None:
        self.transformer = transformer

    def fit(self, X: Any, y: Any = None) -> AbsentWhereMissing:
        present = _present_rows(X)
        if not present.any():
            raise ValueError("AbsentWhereMissing got no present row to fit its transformer on.")
        self.transformer_ = clone(self.transformer).fit(_rows(X, present))
        first_row = _rows(X, np.flatnonzero(present)[:1])
        self.n_features_out_ = int(np.shape(self.transformer_.transform(first_row))[1])
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "transformer_")
        present = _present_rows(X)
        output = np.full((len(present), self.n_features_out_), np.nan)
        if present.any():
            values = self.transformer_.transform(_rows(X, present))
            output[present] = values.toarray() if hasattr(values, "toarray") else values
        return output

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "transformer_")
        return np.asarray(self.transformer_.get_feature_names_out(), dtype=object)
