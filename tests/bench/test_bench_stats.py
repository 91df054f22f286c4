"""The verdicts: corrected intervals worked by hand; synthetic fold scores with known truth."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from fusekit.bench.stats import (
    corrected_interval,
    corrected_ttest,
    corrected_variance,
    cross_dataset,
    verdicts,
)


def test_corrected_interval_matches_the_nadeau_bengio_formula_by_hand():
    scores = [0.80, 0.82, 0.78, 0.85, 0.81]  # J = 5 folds, n_train 80, n_test 20
    # mean 0.812; squared deviations .000144 .000064 .001024 .001444 .000004, sum .00268
    # s^2 = .00268 / 4 = .00067; factor 1/5 + 20/80 = .45; corrected variance .0003015
    assert corrected_variance(scores, 80, 20) == pytest.approx(0.0003015, rel=1e-9)
    # t_{0.975, 4} = 2.776445 (Student's t table); half-width 2.776445 * sqrt(.0003015)
    half = 2.776445 * 0.0003015**0.5
    low, high = corrected_interval(scores, 80, 20)
    assert low == pytest.approx(0.812 - half, abs=1e-6)
    assert high == pytest.approx(0.812 + half, abs=1e-6)
    # (without the n_test/n_train term, factor 1/5, it would be sqrt(.45/.2) = 1.5x narrower)
    # p-value of these as differences from 0.8: t = .012 / sqrt(.0003015) = 0.6911 with 4 df;
    # two-sided p from the t table (t=0.6911, 4 df): 0.5275
    p = corrected_ttest(np.array(scores) - 0.8, 80, 20)
    assert p == pytest.approx(0.5275, abs=5e-4)


def _synthetic(seed: int) -> pd.DataFrame:
    """30 paired folds (10-fold x 3 repeats): fold difficulty shared by every configuration."""
    rng = np.random.default_rng(seed)
    base = 0.8 + rng.normal(0, 0.03, size=30)
    noise = rng.normal(0, 0.02, size=30)
    return pd.DataFrame(
        {
            "best": base + 0.10 + rng.normal(0, 0.02, size=30),  # clearly better than a, b
            "twin_a": base,  # two identical configurations
            "twin_b": base.copy(),
            # indistinguishable from twin_a by noise: zero-mean noise plus 0.002, far below the
            # corrected standard error of the difference (about 0.0076)
            "noisy": base + (noise - noise.mean()) + 0.002,
        }
    )


@pytest.mark.parametrize("seed", range(5))
def test_verdicts_on_synthetic_fold_scores_come_out_right(seed):
    found = verdicts(_synthetic(seed), n_train=90, n_test=10)
    assert found["best"].group == 1 and found["best"].tied
    assert found["best"].p_vs_best == 1.0
    for name in ("twin_a", "twin_b", "noisy"):  # clearly worse than the best
        assert not found[name].tied and found[name].group == 2
        assert found[name].p_vs_best < 1e-6
    assert found["twin_a"].mean == found["twin_b"].mean
    assert corrected_ttest(_synthetic(seed)["twin_a"] - _synthetic(seed)["twin_b"], 90, 10) == 1.0
    assert corrected_ttest(_synthetic(seed)["noisy"] - _synthetic(seed)["twin_a"], 90, 10) > 0.5
    # noisy and the twins sit in one group; the interval contains each mean
    for verdict in found.values():
        assert verdict.low < verdict.mean < verdict.high


def test_a_configuration_indistinguishable_from_the_best_is_tied_with_it():
    scores = _synthetic(0)
    scores = scores.assign(noisy_best=scores["best"] + (scores["noisy"] - scores["twin_a"]))
    found = verdicts(scores, n_train=90, n_test=10)
    assert found["best"].tied and found["noisy_best"].tied
    assert {found["best"].group, found["noisy_best"].group} == {1}
    assert not found["twin_a"].tied


def test_one_fold_ties_everything_and_intervals_are_undefined():
    found = verdicts(pd.DataFrame({"a": [0.9], "b": [0.5]}), 10, 5)
    assert found["a"].tied and found["b"].tied
    assert np.isnan(found["a"].low)


def test_cross_dataset_ranks_friedman_and_nemenyi():
    # 6 data sets, 3 configurations: "good" always first, "mid" second, "bad" third
    means = pd.DataFrame(
        {"good": [0.9, 0.8, 0.7, 0.95, 0.85, 0.6], "mid": [0.8, 0.7, 0.6, 0.9, 0.8, 0.5]},
    ).assign(bad=lambda f: f["mid"] - 0.1)
    result = cross_dataset(means)
    assert result.ranks.to_dict() == {"good": 1.0, "mid": 2.0, "bad": 3.0}
    # Friedman with a perfect ordering, N = 6, k = 3: chi2 = 12 N / (k (k+1)) * sum R_j^2
    # - 3 N (k+1) = 12*6/12 * (1 + 4 + 9) - 3*6*4 = 84 - 72 = 12; p = exp(-12 / 2) (chi2, 2 df)
    assert result.friedman_p == pytest.approx(np.exp(-6), rel=1e-9)
    assert result.nemenyi.loc["good", "bad"] < 0.05 <= result.nemenyi.loc["good", "mid"]
    assert cross_dataset(means.iloc[:1]) is None  # one data set: no cross-data-set test


def test_equivalence_is_the_90_percent_corrected_interval_inside_the_rope_by_hand():
    from fusekit.bench.stats import equivalent

    diffs = np.array([0.002, -0.001, 0.003, 0.000, 0.001])  # J = 5, n_train 80, n_test 20
    # mean 0.001; deviations .001 -.002 .002 -.001 0 -> squares sum 1e-5, s^2 = 2.5e-6;
    # corrected variance (1/5 + 1/4) * 2.5e-6 = 1.125e-6; t_{0.95, 4} = 2.131847 (table)
    half = 2.131847 * 1.125e-6**0.5
    inside, low, high = equivalent(diffs, 80, 20, rope=0.005)
    assert (low, high) == pytest.approx((0.001 - half, 0.001 + half), abs=1e-7)
    assert inside  # [-0.00126, 0.00326] lies inside +-0.005
    assert not equivalent(diffs, 80, 20, rope=0.003)[0]  # the upper end 0.00326 is outside
    # the same decision as the two one-sided tests: both p-values below 0.05
    se = 1.125e-6**0.5
    p_low = stats.t.sf((0.001 + 0.005) / se, 4)  # H0: mean <= -rope
    p_high = stats.t.cdf((0.001 - 0.005) / se, 4)  # H0: mean >= +rope
    assert max(p_low, p_high) < 0.05
    assert not equivalent([0.001], 80, 20, rope=0.5)[0]  # one fold shows nothing


def test_a_configuration_that_failed_a_fold_shrinks_no_other_comparison():
    rng = np.random.default_rng(3)
    base = 0.8 + rng.normal(0, 0.03, size=5)
    scores = pd.DataFrame(
        {
            "a": base + 0.05,
            "b": base + 0.05 + np.array([0.004, -0.004, 0.002, -0.002, 0.0]),
            "ref": np.r_[base[:4] - 0.2, np.nan],  # failed on the last fold
        }
    )
    found = verdicts(scores, n_train=80, n_test=20, rope=0.01)
    assert found["a"].n_folds == found["b"].n_folds == 5 and found["ref"].n_folds == 4
    # a vs b on all 5 folds: exactly what the test gives on the complete columns
    by_hand = corrected_ttest((scores["a"] - scores["b"]).to_numpy(), 80, 20)
    assert found["b"].p_vs_best == pytest.approx(by_hand)
    assert found["b"].equivalent and not found["ref"].tied
    # the failed one's mean and interval are over its own 4 folds
    assert found["ref"].mean == pytest.approx(float(np.mean(base[:4] - 0.2)))
    assert (found["ref"].low, found["ref"].high) == pytest.approx(
        corrected_interval(base[:4] - 0.2, 80, 20)
    )


def test_the_corrected_variance_is_baycomps_for_k_fold():
    baycomp = pytest.importorskip("baycomp")
    x = np.array([0.81, 0.79, 0.84, 0.80, 0.83, 0.78, 0.82, 0.80, 0.85, 0.79])
    y = x + np.array([0.01, -0.02, 0.00, 0.03, 0.01, -0.01, 0.02, 0.00, 0.01, 0.02])
    # 5-fold x 2 repeats: n_test / n_train = 1 / 4, baycomp's 1 / (folds - 1)
    mean, var, df = baycomp.CorrelatedTTest.compute_statistics(x, y, runs=2)
    assert corrected_variance(y - x, 80, 20) == pytest.approx(var, rel=1e-12)
    assert df == 9 and mean == pytest.approx(float(np.mean(y - x)))
