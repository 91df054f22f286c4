"""The Shapley imbalance degree: hand-worked values, and the same number from a fitted model's
coalition scores computed here by blanking modalities (independent of modality_importance)."""

import numpy as np
import pytest

from fusekit import FusionClassifier, Modalities
from fusekit.inspection import imbalance_degree, imbalance_from_shapley
from fusekit.testing.fixtures import make_joint_task


@pytest.mark.parametrize(
    "values, expected",
    [
        ([0.3, 0.1], 0.2 / 0.4),  # |φ1 − φ2| / (|φ1| + |φ2|)
        ([0.25, 0.25], 0.0),  # equal credit
        ([0.4, 0.0], 1.0),  # all credit to one
        ([0.6, 0.3, 0.0], (0.3 + 0.6 + 0.3) / (2 * 0.9)),  # Σ_{i<j} |φi − φj| / ((M − 1) Σ |φ|)
        ([0.9, 0.0, 0.0], 1.0),  # one of three holds everything: still 1
        ([0.0, 0.0], 0.0),  # nothing contributes
        ([0.2, -0.2], 0.4 / 0.4),  # a harmful modality counts by its size
    ],
)
def test_imbalance_from_shapley_by_hand(values, expected):
    assert imbalance_from_shapley(values) == pytest.approx(expected)


@pytest.mark.parametrize("values", [[0.5], [0.1, np.nan]])
def test_imbalance_needs_two_finite_values(values):
    with pytest.raises(ValueError, match="at least two finite Shapley values"):
        imbalance_from_shapley(values)


def _blank(X, names):
    return Modalities({m: np.full_like(v, np.nan) if m in names else v for m, v in X.items()})


def test_imbalance_degree_of_a_fitted_model_matches_its_coalition_scores():
    X, y = make_joint_task(70, seed=3, n_modalities=2, shapes={"a": (4,), "b": (3,)})
    model = FusionClassifier(max_epochs=2, random_state=0).fit(X[:40], y[:40])
    Xt, yt = X[40:], y[40:]
    v = {
        "": model.score(_blank(Xt, {"a", "b"}), yt),
        "a": model.score(_blank(Xt, {"b"}), yt),
        "b": model.score(_blank(Xt, {"a"}), yt),
        "ab": model.score(Xt, yt),
    }
    phi_a = 0.5 * ((v["a"] - v[""]) + (v["ab"] - v["b"]))  # two-player Shapley value
    phi_b = 0.5 * ((v["b"] - v[""]) + (v["ab"] - v["a"]))
    degree, shapley = imbalance_degree(model, Xt, yt)
    assert shapley == pytest.approx({"a": phi_a, "b": phi_b})
    assert degree == pytest.approx(abs(phi_a - phi_b) / (abs(phi_a) + abs(phi_b)))
