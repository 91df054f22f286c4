"""benchmarks/power.py against independent power computations: statsmodels' TTestPower (the
one-sample t-test on paired differences) and the normal closed form for large n."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import power  # noqa: E402

statsmodels_power = pytest.importorskip("statsmodels.stats.power")
ORACLE = statsmodels_power.TTestPower()


@pytest.mark.parametrize(("effect", "sd", "n"), [(0.01, 0.02, 5), (0.013, 0.022, 25), (0.5, 1, 3)])
def test_power_of_seeds_matches_statsmodels(effect, sd, n):
    expected = ORACLE.power(effect_size=effect / sd, nobs=n, alpha=0.05, alternative="two-sided")
    assert power.paired_power(effect, sd, n) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(("sd", "n"), [(0.021, 5), (0.012, 10), (0.035, 3), (1.0, 40)])
def test_detectable_effect_has_80_percent_power_by_statsmodels(sd, n):
    effect = power.detectable_effect(sd, n)
    expected = ORACLE.solve_power(nobs=n, alpha=0.05, power=0.8, alternative="two-sided") * sd
    assert effect == pytest.approx(expected, rel=1e-6)


def test_corrected_t_is_the_plain_test_with_a_shrunk_effect():
    """Corrected standard error sd·sqrt(1/n + rho) = plain sd·sqrt(1/n) with effect size
    divided by sqrt(1 + n·rho), same df: statsmodels computes that one."""
    sd, n, rho, effect = 0.02, 3, 0.5, 0.03  # 3 folds: n_test / n_train = 1/2
    shrunk = effect / sd / math.sqrt(1 + n * rho)
    expected = ORACLE.power(effect_size=shrunk, nobs=n, alpha=0.05, alternative="two-sided")
    assert power.paired_power(effect, sd, n, rho=rho) == pytest.approx(expected, abs=1e-9)
    assert power.detectable_effect(sd, n, rho=rho) > power.detectable_effect(sd, n)


def test_two_runs_have_a_finite_detectable_effect():
    """n = 2 (1 df) needs a noncentrality near 20, where scipy's far-tail cdf is NaN."""
    effect = power.detectable_effect(0.01, 2)
    expected = ORACLE.solve_power(nobs=2, alpha=0.05, power=0.8) * 0.01
    assert effect == pytest.approx(expected, rel=1e-6)


def test_large_n_approaches_the_normal_closed_form():
    """For large n the t-test is the z-test: effect = (z_{1-alpha/2} + z_power) · sd / sqrt(n)."""
    sd, n = 0.02, 20_000
    closed = (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * sd / math.sqrt(n)
    assert power.detectable_effect(sd, n) == pytest.approx(closed, rel=1e-3)


@pytest.mark.parametrize(("effect", "sd"), [(0.013, 0.021), (0.02, 0.012), (0.005, 0.03)])
def test_runs_needed_is_the_first_n_statsmodels_gives_80_percent(effect, sd):
    n = power.runs_needed(effect, sd)
    continuous = ORACLE.solve_power(effect_size=effect / sd, alpha=0.05, power=0.8)
    assert n == math.ceil(continuous)
    assert ORACLE.power(effect / sd, n, 0.05) >= 0.8 > ORACLE.power(effect / sd, n - 1, 0.05)


def test_runs_needed_is_none_when_the_corrected_floor_is_above_the_effect():
    """With rho = 1/2 the standard error never falls below sd·sqrt(1/2): an effect of a tenth
    of sd is out of reach however many folds."""
    assert power.runs_needed(0.1, 1.0, rho=0.5, most=1000) is None
    assert power.runs_needed(0.1, 1.0, most=1000) is not None


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: power.detectable_effect(0.0, 5), "sd"),
        (lambda: power.detectable_effect(0.1, 1), "n"),
        (lambda: power.detectable_effect(0.1, 5, power=0.01), "power"),
        (lambda: power.paired_power(0.1, 0.1, 5, rho=-1), "rho"),
        (lambda: power.runs_needed(0.0, 0.1), "effect"),
    ],
)
def test_bad_arguments_name_the_parameter(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_power_cells_state_detectable_and_needed():
    """The report cells: statsmodels' detectable effect at the differences' sd and n, then the
    first n reaching 80 % for the paper's gain ("—" without one)."""
    differences = [0.01, -0.02, 0.03, 0.0, 0.015]
    sd = float(np.std(differences, ddof=1))
    detectable = ORACLE.solve_power(nobs=5, alpha=0.05, power=0.8) * sd
    needed = math.ceil(ORACLE.solve_power(effect_size=0.013 / sd, alpha=0.05, power=0.8))
    assert power.power_cells(differences, 0.013) == f"{detectable:.3f} | {needed}"
    assert power.power_cells(differences, None) == f"{detectable:.3f} | —"
    assert power.power_cells([0.01, 0.01, 0.01], None) == "0 (no spread) | —"
