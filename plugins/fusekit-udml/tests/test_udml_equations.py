"""UDML's Eqs. 3, 7, 10 and 13 on worked examples, each derived by hand in the test.

The equations (UDML, Sec. 3; the paper's Eq. 7 as normalised weights):
    (13) α^m = M · d^m / Σ_k d^k                        (dependency ratios, Σ_m α^m = M)
    (7)  w_i^m = [1 / ((u_i^m)^p α^m)] / Σ_k [1 / ((u_i^k)^p α^k)]   over present k;
         p = 1 (paper) or 2 (official code: inverse variance)
    (3)  z̃_i^m = |P_i| · w_i^m · z_i^m   (code: (1 + |P_i| · w_i^m) · z_i^m)
    (10) L_est = Σ_m mean_{i: m present} (σ̂_i^m − σ_i^m)²
"""

import pytest
import torch
from fusekit_udml.equations import (
    dependency_ratios,
    estimator_loss,
    gaussian_kl,
    scale_features,
    unbiased_weights,
)

ALL = torch.ones(1, 2, dtype=torch.bool)


def test_dependency_ratios_sum_to_M_and_ignore_scale():
    scores = torch.tensor([0.7, 2.3, 1.1])
    alpha = dependency_ratios(scores)
    assert alpha.sum().item() == pytest.approx(3.0)
    torch.testing.assert_close(dependency_ratios(scores * 17.0), alpha)


def test_dependency_ratios_worked_examples():
    # (13): d = (3, 1) -> 2 · (3, 1) / 4 = (1.5, 0.5)
    torch.testing.assert_close(
        dependency_ratios(torch.tensor([3.0, 1.0])), torch.tensor([1.5, 0.5])
    )
    # the release code's initial depends (32, 10): 2 · (32, 10) / 42 = (1.52381, 0.47619)
    code_initial = dependency_ratios(torch.tensor([32.0, 10.0]))  # --audio_depend 32, visual 10
    torch.testing.assert_close(code_initial, torch.tensor([1.52381, 0.47619]), atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("alpha", "expected"),
    [([1.6, 0.4], [0.2, 0.8]), ([1.5, 0.5], [0.25, 0.75])],
)
def test_equal_uncertainty_weights_undo_the_dependency(alpha, expected):
    # (7) with u = 1: w ∝ 1/α. (1.6, 0.4): (0.625, 2.5) / 3.125 = (0.2, 0.8) (Fig. 3's 0.8 : 0.2);
    # (1.5, 0.5): (2/3, 2) / (8/3) = (0.25, 0.75)
    weights = unbiased_weights(torch.ones(1, 2), torch.tensor(alpha), ALL, power=1.0)
    torch.testing.assert_close(weights, torch.tensor([expected]))


def test_three_modalities_from_dependency_scores():
    alpha = dependency_ratios(torch.tensor([2.0, 1.0, 1.0]))  # 3 · (2, 1, 1) / 4 = (1.5, .75, .75)
    # (7), u = 1: w ∝ (2/3, 4/3, 4/3), sum 10/3 -> (0.2, 0.4, 0.4)
    weights = unbiased_weights(torch.ones(1, 3), alpha, torch.ones(1, 3, dtype=torch.bool), 1.0)
    torch.testing.assert_close(weights, torch.tensor([[0.2, 0.4, 0.4]]))


def test_weights_sum_to_one_over_present_modalities_and_zero_when_absent():
    generator = torch.Generator().manual_seed(0)
    uncertainty = torch.rand(64, 4, generator=generator) * 10 + 0.1
    alpha = dependency_ratios(torch.rand(4, generator=generator) + 0.1)
    mask = torch.rand(64, 4, generator=generator) > 0.4
    mask[0] = False  # a sample with nothing present
    weights = unbiased_weights(uncertainty, alpha, mask, power=1.0)
    assert torch.isfinite(weights).all()
    assert (weights[~mask] == 0).all()
    assert (weights[mask] > 0).all()
    some = mask.any(dim=1)
    torch.testing.assert_close(weights[some].sum(dim=1), torch.ones(int(some.sum())))
    assert weights[0].sum() == 0


def test_bias_cancels_in_the_effective_contribution():
    generator = torch.Generator().manual_seed(1)
    uncertainty = torch.rand(32, 3, generator=generator) * 5 + 0.5
    alpha = dependency_ratios(torch.rand(3, generator=generator) + 0.1)
    mask = torch.ones(32, 3, dtype=torch.bool)
    weights = unbiased_weights(uncertainty, alpha, mask, power=1.0)
    effective = alpha * weights / (alpha * weights).sum(dim=1, keepdim=True)
    uncertainty_only = unbiased_weights(uncertainty, torch.ones(3), mask, power=1.0)
    torch.testing.assert_close(effective, uncertainty_only, atol=1e-6, rtol=0)


def test_weight_decreases_in_uncertainty_and_dependency_and_vanishes():
    alpha = torch.tensor([1.0, 1.0])
    levels = torch.tensor([[u, 1.0] for u in (0.5, 1.0, 2.0, 8.0, 1e6)])
    first = unbiased_weights(levels, alpha, torch.ones(5, 2, dtype=torch.bool), 1.0)[:, 0]
    assert (first.diff() < 0).all() and first[-1] < 1e-5
    more_dependent = unbiased_weights(torch.ones(1, 2), torch.tensor([1.2, 0.8]), ALL, 1.0)
    assert more_dependent[0, 0] < 0.5


@pytest.mark.parametrize(("power", "expected"), [(1.0, [0.73333, 0.26667]), (2.0, [0.968, 0.032])])
def test_uncertainty_power(power, expected):
    # (7) with u = (1, 11), α = (1.6, 0.4): p = 1: 1/1.6 = 0.625, 1/4.4 = 0.22727 -> (0.73333,
    # 0.26667); p = 2: 0.625 and 1/(121 · 0.4) = 0.020661 -> (0.96800, 0.03200)
    weights = unbiased_weights(torch.tensor([[1.0, 11.0]]), torch.tensor([1.6, 0.4]), ALL, power)
    torch.testing.assert_close(weights, torch.tensor([expected]), atol=5e-4, rtol=0)


def test_official_code_formula_is_M_times_eq7_with_inverse_variance():
    sigma_hat = torch.tensor([[1.0, 3.0]])  # audio, visual
    depend = torch.tensor([32.0, 10.0])
    # the release code: t_a = 2 σ_v² / (σ_a² + σ_v²), w_a = t_a / depend_a, w <- 2 w / Σ w
    t = 2 * sigma_hat.flip(1) ** 2 / (sigma_hat**2).sum()
    code = t / depend
    code = 2 * code / code.sum()
    ours = 2 * unbiased_weights(sigma_hat, dependency_ratios(depend), ALL, power=2.0)
    torch.testing.assert_close(ours, code)
    torch.testing.assert_close(ours, torch.tensor([[1.47541, 0.52459]]), atol=1e-5, rtol=0)


def test_scaling_uses_present_count_and_zeroes_absent_rows():
    z = {"a": torch.ones(2, 3), "b": torch.ones(2, 3)}
    mask = torch.tensor([[True, True], [True, False]])
    weights = torch.tensor([[0.25, 0.75], [1.0, 0.0]])
    paper = scale_features(z, weights, mask, residual=False)
    torch.testing.assert_close(paper["a"][:, 0], torch.tensor([0.5, 1.0]))  # M·w, |P| = 2 and 1
    torch.testing.assert_close(paper["b"][:, 0], torch.tensor([1.5, 0.0]))
    code = scale_features(z, weights, mask, residual=True)
    torch.testing.assert_close(code["a"][:, 0], torch.tensor([1.5, 2.0]))  # (1 + M·w)
    torch.testing.assert_close(code["b"][:, 0], torch.tensor([2.5, 0.0]))  # absent stays zero


def test_estimator_loss_ignores_absent_modalities():
    predicted = torch.tensor([[1.0, 5.0], [3.0, 100.0]])
    target = torch.tensor([[1.0, 3.0], [1.0, 1.0]])
    mask = torch.tensor([[True, True], [True, False]])
    # modality 0: mean(0, 4) = 2; modality 1: only the first sample, 4
    assert estimator_loss(predicted, target, mask).item() == pytest.approx(6.0)


def test_dependency_ratios_row_wise_on_a_batch_of_score_vectors():
    # (13) per row: 2 · (3, 1) / 4 = (1.5, 0.5) and 2 · (1, 1) / 2 = (1, 1)
    alpha = dependency_ratios(torch.tensor([[3.0, 1.0], [1.0, 1.0]]))
    torch.testing.assert_close(alpha, torch.tensor([[1.5, 0.5], [1.0, 1.0]]))


def test_estimator_loss_worked_example_with_more_samples_than_modalities():
    # B = 3, M = 2; residuals σ̂ − σ: modality 0: (3, −1, 2), all present -> mean(9, 1, 4) = 14/3;
    # modality 1: (−2, 7, 0.5), sample 1 absent -> mean(4, 0.25) = 2.125; total 14/3 + 2.125
    target = torch.tensor([[1.0, 2.0], [2.0, 1.0], [0.0, 0.5]])
    residual = torch.tensor([[3.0, -2.0], [-1.0, 7.0], [2.0, 0.5]])
    mask = torch.tensor([[True, True], [True, False], [True, True]])
    loss = estimator_loss(target + residual, target, mask)
    assert loss.item() == pytest.approx(14.0 / 3.0 + 2.125)


def test_gaussian_kl_matches_torch_distributions_summed_over_features():
    generator = torch.Generator().manual_seed(3)
    mean = torch.randn(4, 2, 3, generator=generator, dtype=torch.float64)
    std = torch.rand(4, 2, 3, generator=generator, dtype=torch.float64) + 0.2
    prior_variance = torch.tensor([0.5, 1.0, 2.0, 4.0], dtype=torch.float64)
    expected = torch.distributions.kl_divergence(
        torch.distributions.Normal(mean, std),
        torch.distributions.Normal(torch.zeros_like(mean), prior_variance.sqrt()[:, None, None]),
    ).sum(dim=(1, 2))  # (B,)
    torch.testing.assert_close(gaussian_kl(mean, std, prior_variance), expected)
