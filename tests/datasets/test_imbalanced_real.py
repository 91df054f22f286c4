"""The bundled real data sets named imbalanced have a dominant modality: alone, it beats the weak
one clearly under a model that is not fusekit's (scikit-learn's shrinkage LDA, closed form)."""

import numpy as np
import pytest
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fusekit.datasets import IMBALANCED_REAL, load_imbalanced


def _alone(values, y):
    model = make_pipeline(
        StandardScaler(), LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")
    )
    return cross_val_score(model, values.reshape(len(values), -1), y, cv=4).mean()


@pytest.mark.parametrize("name", sorted(IMBALANCED_REAL))
def test_the_dominant_modality_alone_beats_the_weak_one(name):
    entry = IMBALANCED_REAL[name]
    X, y = load_imbalanced(name)
    assert set(X) == {entry.dominant, entry.weak}
    assert _alone(X[entry.dominant], y) > _alone(X[entry.weak], y) + 0.05
    assert _alone(X[entry.weak], y) > 1.5 / len(np.unique(y))  # the weak one is no noise


def test_an_unknown_name_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="unknown imbalanced data set 'cremad'.*nutrimouse_diet"):
        load_imbalanced("cremad")
