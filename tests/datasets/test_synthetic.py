"""make_multimodal_classification / _regression: the ground truth they promise is really there."""

import numpy as np
import pytest
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import cross_val_score

from fusekit.datasets import make_multimodal_classification, make_multimodal_regression


def _accuracy(features, y):
    flat = features.reshape(len(features), -1)
    return cross_val_score(LinearDiscriminantAnalysis(), flat, y, cv=3).mean()


def test_same_seed_same_data_other_seed_other_data():
    kwargs = dict(n_features=[4, 3], sequence_length=[None, 5], noise=(0, 1), missing_rate=0.2)
    X1, y1 = make_multimodal_classification(60, random_state=3, **kwargs)
    X2, y2 = make_multimodal_classification(60, random_state=3, **kwargs)
    X3, _ = make_multimodal_classification(60, random_state=4, **kwargs)
    np.testing.assert_array_equal(y1, y2)
    for name in X1:
        np.testing.assert_array_equal(X1[name], X2[name])
    assert not np.allclose(np.nan_to_num(X1["m0"]), np.nan_to_num(X3["m0"]))


def test_shapes_names_and_balanced_classes():
    X, y = make_multimodal_classification(
        900, [5, 7, 2], n_classes=4, sequence_length=[None, 8, None], names=["a", "b", "c"],
        random_state=0,
    )  # fmt: skip
    assert {k: v.shape for k, v in X.items()} == {"a": (900, 5), "b": (900, 8, 7), "c": (900, 2)}
    counts = np.bincount(y, minlength=4)
    assert counts.min() > 0.6 * 900 / 4, counts  # equal priors by the simplex construction


def test_uninformative_modality_is_independent_of_y(train_seed):
    X, y = make_multimodal_classification(
        600, 8, informative=[1.0, 0.0], shared=1.0, noise=0.2, random_state=train_seed
    )
    assert _accuracy(X["m0"], y) > 0.85  # 0.92-0.95 over seeds 0-5
    assert abs(_accuracy(X["m1"], y) - 0.5) < 0.08  # 0.48-0.53


def test_shared_signal_makes_modalities_redundant_specific_makes_them_complementary(train_seed):
    def alone_and_together(shared):
        X, y = make_multimodal_classification(
            600, 8, shared=shared, noise=0.1, random_state=1 + train_seed
        )
        return _accuracy(X["m0"], y), _accuracy(np.hstack([X["m0"], X["m1"]]), y)

    redundant_alone, _ = alone_and_together(1.0)
    complementary_alone, complementary_both = alone_and_together(0.0)
    # over seeds 0-5: redundant alone 0.94-0.97, complementary alone 0.73-0.78, both 0.92-0.96
    assert redundant_alone > 0.9
    assert complementary_alone < redundant_alone - 0.1
    assert complementary_both > complementary_alone + 0.1


def test_per_sample_noise_is_returned_and_is_what_hurts(train_seed):
    """Quiet rows (noise < 0.3) beat noisy ones (noise > 2) by 0.19-0.29 over seeds 0-5
    (bound 0.1). With 800 rows and the split at noise 1 the gap was 0.08-0.19."""
    X, y, info = make_multimodal_classification(
        2000, 6, informative=[1.0, 0.0], noise=[(0.0, 3.0), 0.5], shared=1.0, return_info=True,
        random_state=2 + train_seed,
    )  # fmt: skip
    assert info.noise.shape == (2000, 2)
    assert info.noise[:, 0].min() >= 0 and info.noise[:, 0].max() <= 3.0
    np.testing.assert_allclose(info.noise[:, 1], 0.5)
    model = LogisticRegression(max_iter=500).fit(X["m0"][:1000], y[:1000])
    correct = model.predict(X["m0"][1000:]) == y[1000:]
    noise = info.noise[1000:, 0]
    assert correct[noise < 0.3].mean() > correct[noise > 2.0].mean() + 0.1


def test_missing_rate_marks_whole_rows_absent_and_keeps_one_modality():
    X, _, info = make_multimodal_classification(
        2000, [3, 4], sequence_length=[None, 5], missing_rate=[0.3, 0.6], return_info=True,
        random_state=0,
    )  # fmt: skip
    for m, name in enumerate(info.names):
        flat = X[name].reshape(2000, -1)
        nan_rows = np.isnan(flat).all(axis=1)
        np.testing.assert_array_equal(nan_rows, ~info.present[:, m])
        assert not np.isnan(flat[~nan_rows]).any()
    assert info.present.any(axis=1).all()
    absent = 1 - info.present.mean(axis=0)
    # both dropped with probability 0.3 * 0.6; one of the two, at random, is then restored
    expected = np.array([0.3, 0.6]) - 0.3 * 0.6 / 2
    np.testing.assert_allclose(absent, expected, atol=0.035)


def test_regression_target_is_recoverable_from_informative_modalities(train_seed):
    X, y, info = make_multimodal_regression(
        2000, [6, 6], noise=0.05, target_noise=0.05, return_info=True, random_state=train_seed
    )
    features = np.hstack([X["m0"], X["m1"]])
    r2 = LinearRegression().fit(features[:1000], y[:1000]).score(features[1000:], y[1000:])
    assert r2 > 0.95  # 0.990-0.996 over seeds 0-5 (with 500 rows: 0.962-0.992)
    assert info.coef.shape == (4,) and np.isclose(np.linalg.norm(info.coef), 1.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(informative=1.5), "informative must be in"),
        (dict(informative=[1.0, 1.0, 1.0]), "one per modality"),
        (dict(noise=(2.0, 1.0)), "noise must be"),
        (dict(missing_rate=-0.1), "missing_rate must be in"),
        (dict(n_classes=1), "n_classes must be"),
        (dict(n_features=[3, 4], n_modalities=3), "n_modalities=3"),
        (dict(sequence_length=0), "sequence_length must be"),
    ],
)
def test_bad_parameters_name_themselves(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_multimodal_classification(20, **kwargs)
