"""make_imbalanced_classification: the imbalance and the ground truth it promises are there."""

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from fusekit.datasets import make_imbalanced_classification


def _lda_accuracy(features, y, n_train):
    """A linear discriminant (the Bayes rule's form here) fitted on many rows, scored on others."""
    lda = LinearDiscriminantAnalysis().fit(features[:n_train], y[:n_train])
    return lda.score(features[n_train:], y[n_train:])


@pytest.mark.parametrize("imbalance", [0.5, 1.0, 2.0])
def test_fast_modality_bayes_accuracy_is_the_closed_form(imbalance):
    _, _, info = make_imbalanced_classification(
        20000, imbalance=imbalance, slow_strength=1.5, return_info=True, random_state=0
    )
    # two groups at distance s_fast·√2: P(group right) = Φ(s_fast / √2); the class within the
    # group is a coin toss for the fast modality alone (F = 2)
    expected = norm.cdf(imbalance * 1.5 / np.sqrt(2)) / 2
    assert info.bayes_accuracy["fast"] == pytest.approx(expected, abs=0.006)


def test_bayes_accuracies_match_a_linear_discriminant_fitted_on_many_rows():
    X, y, info = make_imbalanced_classification(
        24000, imbalance=1.0, return_info=True, random_state=1
    )
    both = np.hstack([X["fast"], X["slow"]])
    assert _lda_accuracy(both, y, 20000) == pytest.approx(info.bayes_accuracy["both"], abs=0.02)
    assert _lda_accuracy(X["slow"], y, 20000) == pytest.approx(
        info.bayes_accuracy["slow"], abs=0.02
    )


def test_the_modalities_are_complementary():
    _, _, info = make_imbalanced_classification(5000, return_info=True, random_state=2)
    accuracy = info.bayes_accuracy
    assert accuracy["fast"] <= 0.5 + 1e-9  # it never tells the class within the group (F = 2)
    assert accuracy["both"] > max(accuracy["fast"], accuracy["slow"]) + 0.05


def test_class_means_have_the_declared_geometry():
    _, _, info = make_imbalanced_classification(
        10, imbalance=3.0, slow_strength=2.0, n_groups=3, n_fine=2, return_info=True,
        random_state=3,
    )  # fmt: skip
    fast, slow = info.fast_means, info.slow_means  # (6, 4), (6, 32)
    np.testing.assert_allclose(fast[0], fast[1])  # same group: same fast mean
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 6.0)  # s_fast = 3 · 2
    np.testing.assert_allclose(fast[0] @ fast[2], 0.0, atol=1e-9)  # groups orthogonal
    np.testing.assert_allclose(np.linalg.norm(slow, axis=1), 2.0)
    distances = np.linalg.norm(slow[:, None] - slow[None], axis=2)[np.triu_indices(6, 1)]
    np.testing.assert_allclose(distances, distances[0])  # a regular simplex


def test_rows_follow_their_class_means_with_unit_noise():
    X, y, info = make_imbalanced_classification(6000, return_info=True, random_state=4)
    for name, means in (("fast", info.fast_means), ("slow", info.slow_means)):
        residual = X[name] - means[y]
        assert np.abs(residual.mean(axis=0)).max() < 4 / np.sqrt(6000) * 1.5
        np.testing.assert_allclose(residual.std(axis=0), 1.0, atol=0.05)
    np.testing.assert_array_equal(y, info.group * 2 + info.fine)


def test_imbalance_changes_only_the_fast_modality():
    X1, y1 = make_imbalanced_classification(50, imbalance=1.0, random_state=5)
    X8, y8 = make_imbalanced_classification(50, imbalance=8.0, random_state=5)
    np.testing.assert_array_equal(y1, y8)
    np.testing.assert_array_equal(X1["slow"], X8["slow"])
    assert np.abs(X8["fast"]).mean() > np.abs(X1["fast"]).mean()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"imbalance": 0}, "imbalance must be a number > 0"),
        ({"imbalance": float("inf")}, "imbalance must be finite"),
        ({"slow_strength": -1.0}, "slow_strength must be a number > 0"),
        ({"n_groups": 1}, "n_groups must be an integer >= 2"),
        ({"n_fine": 2.5}, "n_fine must be an integer >= 2"),
        ({"n_groups": 5, "n_fast_features": 4}, "n_fast_features must be an integer >= 5"),
        ({"n_slow_features": 2}, "n_slow_features must be an integer >= 3"),
        ({"names": ("a", "a")}, "names must be two different modality names"),
        ({"n_samples": True}, "n_samples must be an integer >= 2"),
    ],
)
def test_bad_parameters_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_imbalanced_classification(**kwargs)
