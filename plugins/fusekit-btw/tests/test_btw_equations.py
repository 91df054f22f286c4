"""Properties of BTW's weight equations, on hand examples.

Hou, Wang, Wang, "BTW", Findings of EMNLP 2025 (arXiv 2508.18551): Eq. 5 categorical KL(p^m ‖ p^MM),
Eq. 15 Gaussian KL (Eq. 6 for regression), Eq. 7 MI, Eqs. 8-9 combination, Eq. 10 EMA
w^(t) = α ŵ^(t) + (1 − α) w^(t−1) with α ± 0.05 (the authors' step) clipped to [0, 1]. Every
expected number below is computed in the test or derived in a comment.
"""

import numpy as np
import pytest
import torch
from fusekit_btw import equations as eq
from scipy import integrate, stats
from sklearn.feature_selection import mutual_info_regression
from sklearn.metrics import mutual_info_score


def test_gaussian_kl_matches_closed_form_value_torch_and_numerical_integration():
    value = eq.gaussian_kl(0.3, 0.5, -0.2, 0.8)
    assert value == pytest.approx(0.3606286, abs=1e-7)
    p, q = torch.distributions.Normal(0.3, 0.5), torch.distributions.Normal(-0.2, 0.8)
    assert value == pytest.approx(float(torch.distributions.kl_divergence(p, q)), abs=1e-6)

    def integrand(x):
        log_ratio = stats.norm.logpdf(x, 0.3, 0.5) - stats.norm.logpdf(x, -0.2, 0.8)
        return stats.norm.pdf(x, 0.3, 0.5) * log_ratio

    numeric, _ = integrate.quad(integrand, -10, 10)
    assert value == pytest.approx(numeric, abs=1e-7)


def test_gaussian_kl_is_zero_for_identical_gaussians():
    assert eq.gaussian_kl(1.7, 0.4, 1.7, 0.4) == pytest.approx(0.0, abs=1e-12)


def test_categorical_kl_direction_is_unimodal_against_multimodal():
    p, q = np.array([0.7, 0.2, 0.1]), np.array([0.5, 0.3, 0.2])
    assert eq.categorical_kl(p, q) == pytest.approx(0.0851228, abs=1e-7)
    assert eq.categorical_kl(p, q) == pytest.approx(stats.entropy(p, q), abs=1e-9)
    assert eq.categorical_kl(q, p) != pytest.approx(eq.categorical_kl(p, q), abs=1e-4)


def test_identical_distributions_give_floored_zero_kl():
    p = np.array([[[0.2, 0.8], [0.2, 0.8]]])  # (1, M=2, C=2)
    kl = eq.instance_kl_classification(p, np.array([[0.2, 0.8]]), np.ones((1, 2), bool))
    np.testing.assert_allclose(kl, eq.KL_FLOOR)


def test_disagreeing_modality_gets_the_weight_of_eqs_5_8_9():
    multimodal = np.array([[0.5, 0.3, 0.2]])
    unimodal = np.array([[[0.5, 0.3, 0.2], [0.7, 0.2, 0.1], [0.5, 0.3, 0.2]]])  # (1, 3, 3)
    mask = np.ones((1, 3), bool)
    kl = eq.instance_kl_classification(unimodal, multimodal, mask)
    expected_kl = np.array([eq.KL_FLOOR, stats.entropy([0.7, 0.2, 0.1], [0.5, 0.3, 0.2]), 1e-5])
    np.testing.assert_allclose(kl[0], expected_kl, rtol=1e-9)
    local = eq.combine(eq.normalise_rows(kl, mask), np.full(3, 1 / 3), mask, "local")
    np.testing.assert_allclose(local[0], expected_kl / expected_kl.sum(), rtol=1e-9)
    assert local[0].argmax() == 1 and local[0, 1] > 0.999
    mi = np.array([0.5, 0.1, 0.4])
    bi = eq.combine(eq.normalise_rows(kl, mask), mi, mask, "bi")
    product = expected_kl / expected_kl.sum() * mi
    np.testing.assert_allclose(bi[0], product / product.sum(), rtol=1e-9)


def test_rows_sum_to_one_over_present_modalities_and_absent_is_zero():
    rng = np.random.default_rng(0)
    kl = rng.exponential(size=(50, 4)) + eq.KL_FLOOR
    mask = rng.random((50, 4)) < 0.7
    mask[0] = [True, False, False, False]
    mask[1] = False
    mi = eq.normalise_mi(rng.random(4))
    for level in ("local", "bi"):
        weights = eq.combine(eq.normalise_rows(kl, mask), mi, mask, level)
        assert np.isfinite(weights).all() and (weights >= 0).all()
        assert (weights[~mask] == 0).all()
        has_any = mask.any(axis=1)
        np.testing.assert_allclose(weights[has_any].sum(axis=1), 1.0, atol=1e-6)
        assert (weights[1] == 0).all()
        assert weights[0, 0] == pytest.approx(1.0)


def test_all_equal_predictions_give_uniform_kl_and_mi_shaped_bi_weights():
    kl = np.full((2, 4), eq.KL_FLOOR)
    mask = np.array([[True, True, True, True], [True, False, True, True]])
    kl_normalised = eq.normalise_rows(kl, mask)
    np.testing.assert_allclose(kl_normalised[0], 0.25)
    np.testing.assert_allclose(kl_normalised[1], [1 / 3, 0, 1 / 3, 1 / 3])
    mi = eq.normalise_mi(np.array([0.4, 0.3, 0.2, 0.1]))
    bi = eq.combine(kl_normalised, mi, mask, "bi")
    np.testing.assert_allclose(bi[0], mi)
    np.testing.assert_allclose(bi[1], np.array([0.4, 0, 0.2, 0.1]) / 0.7)


def test_larger_disagreement_gives_larger_normalised_kl():
    mask = np.ones((1, 3), bool)
    multimodal = np.array([[0.6, 0.3, 0.1]])
    far = np.array([0.05, 0.15, 0.8])
    classification = []
    for step in np.linspace(0.1, 1.0, 6):
        moved = multimodal[0] + step * (far - multimodal[0])
        unimodal = np.stack([[0.5, 0.3, 0.2], moved, [0.6, 0.25, 0.15]])[None]
        kl = eq.instance_kl_classification(unimodal, multimodal, mask)
        classification.append(eq.normalise_rows(kl, mask)[0, 1])
    assert np.all(np.diff(classification) > 0)
    regression = []
    for gap in np.linspace(0.1, 2.0, 6):
        unimodal = np.array([[[0.2], [gap], [-0.3]]])  # (1, 3, 1)
        kl = eq.instance_kl_regression(
            unimodal, np.zeros((1, 1)), np.full((1, 3, 1), 0.5), np.full((1, 1), 0.6), mask, 1e-3
        )
        regression.append(eq.normalise_rows(kl, mask)[0, 1])
    assert np.all(np.diff(regression) > 0)


def test_mi_matches_sklearn_on_a_hand_example():
    multimodal = np.array([0, 0, 1, 1, 2, 2, 0, 1])
    unimodal = np.stack(
        [
            multimodal,  # identical labels: I = H(Ŷ^MM)
            np.array([0, 1, 1, 1, 2, 0, 0, 2]),
            np.zeros(8, int),  # constant predictor: I = 0
        ],
        axis=1,
    )
    mask = np.ones((8, 3), bool)
    mask[7, 1] = False
    mi = eq.modality_mi_classification(unimodal, multimodal, mask)
    counts = np.bincount(multimodal) / 8
    assert mi[0] == pytest.approx(-(counts * np.log(counts)).sum())
    assert mi[0] == pytest.approx(mutual_info_score(unimodal[:, 0], multimodal))
    assert mi[1] == pytest.approx(mutual_info_score(unimodal[:7, 1], multimodal[:7]))
    assert mi[2] == pytest.approx(0.0)
    normalised = eq.normalise_mi(mi)
    assert normalised.sum() == pytest.approx(1.0)
    assert normalised[2] == pytest.approx(eq.MI_FLOOR / np.maximum(mi, eq.MI_FLOOR).sum())


def test_regression_mi_is_deterministic_with_a_seed_and_ranks_informative_predictions():
    rng = np.random.default_rng(0)
    multimodal = rng.normal(size=(300, 1))
    unimodal = np.stack(
        [multimodal + 0.1 * rng.normal(size=(300, 1)), rng.normal(size=(300, 1))], axis=1
    )
    mask = np.ones((300, 2), bool)
    first = eq.modality_mi_regression(unimodal, multimodal, mask, random_state=3)
    second = eq.modality_mi_regression(unimodal, multimodal, mask, random_state=3)
    np.testing.assert_array_equal(first, second)
    assert first[0] > 1.0 and first[0] > 5 * first[1]


def test_ema_worked_example_of_eq10():
    # w^(0) = 1, α = 0.5, ŵ = (0.2, 0.3, 0.5): 0.5 · ŵ + 0.5 · 1 = (0.6, 0.65, 0.75)
    updated = eq.ema(np.ones(3), np.array([0.2, 0.3, 0.5]), 0.5)
    np.testing.assert_allclose(updated, [0.6, 0.65, 0.75])


@pytest.mark.parametrize(
    ("improved", "on_improve", "expected"),
    [(True, "increase", 0.55), (False, "increase", 0.45), (True, "decrease", 0.45)],
)
def test_alpha_moves_by_one_step_in_the_configured_direction(improved, on_improve, expected):
    assert eq.next_alpha(0.5, improved, 0.05, on_improve) == pytest.approx(expected)


def test_alpha_stays_in_unit_interval():
    assert eq.next_alpha(0.98, True, 0.05, "increase") == 1.0
    assert eq.next_alpha(0.02, False, 0.05, "increase") == 0.0


def test_categorical_kl_floors_zeros_and_renormalises_each_row():
    # spec §10.7: clip to [1e-8, 1], renormalise each row, then Eq. (5); scipy's entropy
    # normalises its inputs itself, so it is the reference on the clipped rows
    p = np.array([[0.3, 0.3, 0.6], [1.0, 0.0, 0.0]])  # (N=2, C=3), first row sums to 1.2
    q = np.array([[0.2, 0.2, 0.2], [0.0, 0.5, 0.5]])  # first row sums to 0.6; zero where p = 1
    expected = stats.entropy(np.clip(p, 1e-8, None), np.clip(q, 1e-8, None), axis=-1)
    np.testing.assert_allclose(eq.categorical_kl(p, q), expected, rtol=1e-12)
    assert np.isfinite(eq.categorical_kl(p, q)).all()


def test_equations_compute_in_float64_from_float32_inputs():
    p = np.array([0.7, 0.2, 0.1], dtype=np.float32)
    q = np.array([0.5, 0.3, 0.2], dtype=np.float32)
    assert eq.categorical_kl(p, q).dtype == np.float64
    args = (np.float32(0.3), np.float32(0.5), np.float32(-0.2), np.float32(0.8))
    assert np.asarray(eq.gaussian_kl(*args)).dtype == np.float64
    assert eq.normalise_mi(np.array([0.2, 0.1], dtype=np.float32)).dtype == np.float64


def test_absent_modalities_get_exactly_zero_kl():
    mask = np.array([[True, False], [False, True]])
    unimodal = np.array([[[0.7, 0.3], [0.1, 0.9]], [[0.6, 0.4], [0.2, 0.8]]])  # (N, M, C)
    kl = eq.instance_kl_classification(unimodal, np.array([[0.5, 0.5], [0.5, 0.5]]), mask)
    assert kl[0, 1] == 0.0 and kl[1, 0] == 0.0
    assert kl[0, 0] == pytest.approx(stats.entropy([0.7, 0.3], [0.5, 0.5]))
    regression = eq.instance_kl_regression(
        np.ones((2, 2, 1)), np.zeros((2, 1)), np.ones((2, 2, 1)), np.ones((2, 1)), mask, 1e-3
    )
    # present: KL(N(1, 1) ‖ N(0, 1)) = 1/2 (Eq. 15 by hand); absent: exactly 0
    np.testing.assert_allclose(regression, [[0.5, 0.0], [0.0, 0.5]], rtol=1e-12, atol=0)


def test_mi_of_a_modality_present_in_exactly_two_samples():
    # two samples, labels (0, 1) against (0, 1): I = H = log 2
    mask = np.array([[True, True], [True, False], [True, True]])
    unimodal = np.array([[0, 0], [1, 1], [1, 1]])
    multimodal = np.array([0, 1, 1])
    mi = eq.modality_mi_classification(unimodal, multimodal, mask)
    assert mi[1] == pytest.approx(np.log(2.0))


def test_regression_mi_equals_sklearn_per_output_and_skips_too_few_samples():
    rng = np.random.default_rng(1)
    multimodal = rng.normal(size=(40, 2))  # K = 2
    unimodal = np.stack([multimodal + 0.5 * rng.normal(size=(40, 2))] * 2, axis=1)  # (40, 2, 2)
    mask = np.ones((40, 2), bool)
    mask[3:, 0] = False  # modality 0 in exactly n_neighbors = 3 samples: MI 0
    mi = eq.modality_mi_regression(unimodal, multimodal, mask, random_state=7)
    expected = np.mean(
        [
            mutual_info_regression(
                unimodal[:, 1, k].reshape(-1, 1), multimodal[:, k], n_neighbors=3, random_state=7
            )[0]
            for k in range(2)
        ]
    )
    assert mi[0] == 0.0
    assert mi[1] == pytest.approx(expected, rel=1e-12)
    five = eq.modality_mi_regression(unimodal, multimodal, mask, random_state=7, n_neighbors=5)
    expected_five = np.mean(
        [
            mutual_info_regression(
                unimodal[:, 1, k].reshape(-1, 1), multimodal[:, k], n_neighbors=5, random_state=7
            )[0]
            for k in range(2)
        ]
    )
    assert five[1] == pytest.approx(expected_five, rel=1e-12)
    assert five[1] != pytest.approx(mi[1], rel=1e-6)


def test_global_ablations_are_per_modality_constants():
    # N = 3, M = 2; modality 1 present in one sample only
    kl_normalised = np.array([[0.2, 0.8], [0.6, 0.0], [1.0, 0.0]])
    mask = np.array([[True, True], [True, False], [True, False]])
    mi_normalised = np.array([0.7, 0.3])
    global_kl = eq.combine(kl_normalised, mi_normalised, mask, "global_kl")
    # modality 0: mean(0.2, 0.6, 1.0) = 0.6; modality 1: 0.8 (its one sample); absent 0
    np.testing.assert_allclose(global_kl, [[0.6, 0.8], [0.6, 0.0], [0.6, 0.0]], rtol=1e-12)
    global_mi = eq.combine(kl_normalised, mi_normalised, mask, "global_mi")
    np.testing.assert_allclose(global_mi, [[0.7, 0.3], [0.7, 0.0], [0.7, 0.0]], rtol=1e-12)
    with pytest.raises(ValueError, match="level must be one of"):
        eq.combine(kl_normalised, mi_normalised, mask, "nope")


def test_ema_with_a_previous_weight_other_than_one():
    # α = 0.25, ŵ = (1, 0), w^(t−1) = (2, 4): 0.25 + 0.75 · 2 = 1.75 and 0.75 · 4 = 3
    np.testing.assert_allclose(eq.ema(np.array([2.0, 4.0]), np.array([1.0, 0.0]), 0.25), [1.75, 3])


def test_categorical_kl_of_float32_inputs_equals_the_float64_value():
    p = np.array([0.7, 0.2, 0.1], dtype=np.float32)
    q = np.array([0.5, 0.3, 0.2], dtype=np.float32)
    expected = stats.entropy(p.astype(np.float64), q.astype(np.float64))
    assert eq.categorical_kl(p, q) == pytest.approx(expected, rel=1e-12)
    assert eq.categorical_kl(q, p) == pytest.approx(
        stats.entropy(q.astype(np.float64), p.astype(np.float64)), rel=1e-12
    )


def test_categorical_kl_clips_entries_above_one():
    # spec §10.7: clip to [1e-8, 1] then renormalise: (3, 1) -> (1, 1) -> uniform, KL 0
    assert eq.categorical_kl(np.array([3.0, 1.0]), np.array([0.5, 0.5])) == pytest.approx(0.0)
    assert eq.categorical_kl(np.array([0.5, 0.5]), np.array([3.0, 1.0])) == pytest.approx(0.0)


def test_regression_std_floor_is_applied_in_float64():
    # float32 zero stds floored at 0.1 (the float64 0.1, not float32's 0.100000001):
    # unimodal floored, σ_q = 1: KL(N(1, 0.1²) ‖ N(0, 1)) = log(1 / 0.1) + (0.01 + 1) / 2 − 1/2;
    # multimodal floored, σ_p = 0.1: KL(N(1, 0.1²) ‖ N(0, 0.1²)) = 1 / (2 · 0.01) = 50
    zeros = np.zeros((1, 1, 1), dtype=np.float32)
    cases = [
        (zeros, np.ones((1, 1)), np.log(10.0) + 0.005),
        (np.zeros((1, 1, 1)), zeros[0], 50.0),
    ]
    for unimodal_std, multimodal_std, expected in cases:
        kl = eq.instance_kl_regression(
            np.ones((1, 1, 1)),
            np.zeros((1, 1)),
            unimodal_std,
            multimodal_std,
            np.ones((1, 1), bool),
            0.1,
        )
        assert kl[0, 0] == pytest.approx(expected, rel=1e-12)


def test_regression_mi_passes_the_random_state_on_tied_predictions():
    # integer-valued predictions tie; sklearn's jitter (seeded by random_state) breaks the ties
    rng = np.random.default_rng(2)
    multimodal = rng.integers(0, 3, size=(60, 1)).astype(float)
    unimodal = (multimodal + rng.integers(0, 2, size=(60, 1)))[:, None, :]  # (60, 1, 1)
    mi = eq.modality_mi_regression(unimodal, multimodal, np.ones((60, 1), bool), random_state=11)
    expected = mutual_info_regression(
        unimodal[:, 0, :], multimodal[:, 0], n_neighbors=3, random_state=11
    )[0]
    assert mi[0] == pytest.approx(expected, rel=1e-12)
