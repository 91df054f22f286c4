"""Power of the paired t-tests behind the claims tables: the smallest effect a run can detect,
and how many seeds (or folds) a paper's effect size needs.

A claim is judged on ``n`` paired differences ``d_i`` (method − baseline, one per seed or fold)
with standard deviation ``sd``. The two-sided one-sample t-test of "mean 0" at ``alpha`` uses the
standard error ``sd · sqrt(1/n + rho)``: ``rho = 0`` for independent seeds (each its own split),
``rho = n_test / n_train`` for the Nadeau-Bengio corrected t over cross-validation folds
(``fusekit.bench.stats``). A true mean difference ``effect`` gives the statistic a noncentral t
distribution with ``n − 1`` degrees of freedom and noncentrality ``effect / (sd · sqrt(1/n +
rho))``, so the power is ``P(|T'| > t(1 − alpha/2, n − 1))``.

Hand-written on :data:`scipy.stats.nct` because no installed library solves for the effect or
``n`` of the *corrected* test (``statsmodels``' ``TTestPower`` does the uncorrected one and is
the tests' oracle; it is not a dependency).

Scripts import it as they import ``provenance``, with the repository's ``benchmarks/`` folder on
``sys.path``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import optimize, stats

__all__ = ["POWER", "detectable_effect", "paired_power", "power_cells", "runs_needed"]

ALPHA = 0.05
#: The conventional target power (Cohen 1988).
POWER = 0.8


def _check(sd: float, n: int, alpha: float, rho: float) -> None:
    if not (isinstance(n, int) and n >= 2):
        raise ValueError(f"n (the number of paired differences) must be an int >= 2, got {n!r}.")
    if not (math.isfinite(sd) and sd > 0):
        raise ValueError(f"sd (of the paired differences) must be finite and > 0, got {sd!r}.")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}.")
    if not (math.isfinite(rho) and rho >= 0):
        raise ValueError(f"rho (n_test / n_train, 0 for seeds) must be >= 0, got {rho!r}.")


def paired_power(effect: float, sd: float, n: int, alpha: float = ALPHA, rho: float = 0.0) -> float:
    """Power of the two-sided (corrected) paired t-test to reject "mean 0" when the true mean
    difference is ``effect`` (see the module docstring)."""
    _check(sd, n, alpha, rho)
    df = n - 1
    noncentrality = abs(effect) / (sd * math.sqrt(1 / n + rho))
    critical = stats.t.ppf(1 - alpha / 2, df)
    upper = float(stats.nct.sf(critical, df, noncentrality))
    # The far tail (rejecting on the wrong side) is below 1e-8 once the noncentrality is large,
    # where scipy's nct.cdf can return NaN: count it as 0 then.
    lower = float(stats.nct.cdf(-critical, df, noncentrality))
    return upper + (lower if math.isfinite(lower) else 0.0)


def detectable_effect(
    sd: float, n: int, alpha: float = ALPHA, power: float = POWER, rho: float = 0.0
) -> float:
    """The smallest true mean difference that ``n`` paired differences of standard deviation
    ``sd`` detect with probability ``power`` (two-sided test at ``alpha``)."""
    _check(sd, n, alpha, rho)
    if not alpha < power < 1:
        raise ValueError(f"power must lie in (alpha, 1) = ({alpha}, 1), got {power!r}.")
    scale = sd * math.sqrt(1 / n + rho)
    high = scale
    while paired_power(high, sd, n, alpha, rho) < power:
        high *= 2
    return float(
        optimize.brentq(
            lambda effect: paired_power(effect, sd, n, alpha, rho) - power, 0.0, high, xtol=1e-12
        )
    )


def runs_needed(
    effect: float,
    sd: float,
    alpha: float = ALPHA,
    power: float = POWER,
    rho: float = 0.0,
    most: int = 100_000,
) -> int | None:
    """The smallest ``n >= 2`` whose paired test detects a true difference ``effect`` with
    probability ``power``; ``None`` when none up to ``most`` does (with ``rho > 0`` the standard
    error never falls below ``sd · sqrt(rho)``, so more folds of the same split cannot help)."""
    _check(sd, 2, alpha, rho)
    if effect == 0 or not math.isfinite(effect):
        raise ValueError(f"effect must be finite and non-zero, got {effect!r}.")
    high = 2
    while paired_power(effect, sd, high, alpha, rho) < power:
        if high >= most:
            return None
        high = min(2 * high, most)
    low = high // 2  # power(low) < target (or low < 2, which has no test), power(high) >= it
    while high - low > 1:  # power grows with n: bisect for the first n that reaches the target
        middle = (low + high) // 2
        if middle >= 2 and paired_power(effect, sd, middle, alpha, rho) >= power:
            high = middle
        else:
            low = middle
    return high


def power_cells(differences: Sequence[float], paper_gain: float | None, rho: float = 0.0) -> str:
    """The Markdown cells ``detectable | runs needed`` of a claims row: the effect these paired
    differences detect with 80 % power, and the number of seeds (folds) of the same spread that
    the paper's gain needs (``—`` without a gain; ``> 100000`` when out of reach)."""
    differences = np.asarray(differences, dtype=float)
    sd = float(differences.std(ddof=1))
    if sd == 0:  # every run gave the same difference: any n >= 2 rejects a non-zero one
        return "0 (no spread) | " + ("—" if paper_gain is None else "2")
    detectable = f"{detectable_effect(sd, len(differences), rho=rho):.3f}"
    if paper_gain is None:
        return f"{detectable} | —"
    needed = runs_needed(abs(paper_gain), sd, rho=rho)
    return f"{detectable} | " + ("> 100000" if needed is None else str(needed))
