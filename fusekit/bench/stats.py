"""The statistics behind a leaderboard's verdicts.

Within one data set (paired folds: every configuration is scored on the same J = folds x repeats
train/test splits), the fold scores of a configuration are not independent draws: the training
sets overlap, so the plain standard error understates the variance. Nadeau & Bengio (2003,
"Inference for the generalization error", Machine Learning 52) correct the variance of the mean
of J resampled scores (or paired differences) ``d_j`` with

    var_corrected = (1 / J + n_test / n_train) * s^2,     s^2 = sum_j (d_j - mean)^2 / (J - 1)

and refer ``t = mean / sqrt(var_corrected)`` to Student's t with J - 1 degrees of freedom (the
corrected resampled t-test; Bouckaert & Frank 2004 use it for repeated k-fold CV). Intervals are
``mean ± t_{1-alpha/2, J-1} sqrt(var_corrected)``; quantiles and p-values come from
:data:`scipy.stats.t`.

"Tied with the best": the configuration with the highest mean, and every configuration whose
paired per-fold differences from it do not reject "no difference" (two-sided corrected t-test,
``alpha`` 0.05). Groups: group 1 is the best and its ties; group 2 is the best of the rest and
its ties among the rest; and so on.

"Tied" is not "the same": with few folds almost everything is not significantly worse. A
configuration is *practically equivalent to the best* when the paired difference from the best is
shown to lie inside a region of practical equivalence ``[-rope, +rope]`` (:data:`ROPE`, one point
of accuracy or r2 by default, the ROPE Benavoli et al. 2017, JMLR 18, use for accuracies): two
one-sided corrected t-tests at ``alpha`` (TOST, Schuirmann 1987), i.e. the ``1 - 2 alpha``
corrected interval of the mean difference inside the ROPE (:func:`equivalent`). With 3 folds the
interval is wide, so few configurations earn it: the verdict says what the folds show, no more.

Folds: each pair of configurations is compared on the folds both finished. The best is chosen
among the configurations that finished every fold, so one that failed on a fold (a reference
model, say) is compared on its own folds and shrinks nobody else's comparison; its mean, std and
interval are over its own folds, and the leaderboard row says how many.

Across data sets (Demšar 2006, JMLR 7): the average rank of each configuration (rank 1 the best
mean on a data set), the Friedman test (:func:`scipy.stats.friedmanchisquare`) and the Nemenyi
post-hoc test (:func:`scikit_posthocs.posthoc_nemenyi_friedman`), drawn as a critical-difference
diagram by :func:`scikit_posthocs.critical_difference_diagram`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from fusekit.bench.settings import ROPE

ALPHA = 0.05
WITHIN_TEST = (
    "Nadeau-Bengio corrected resampled t-test on paired per-fold differences "
    "(variance x (1/J + n_test/n_train), t with J-1 df, two-sided, alpha 0.05)"
)
EQUIVALENCE_TEST = (
    "two one-sided corrected t-tests (TOST, alpha 0.05): the 90 % Nadeau-Bengio corrected "
    "interval of the paired difference from the best lies inside the ROPE"
)
ACROSS_TEST = "Friedman test on per-data-set ranks, Nemenyi post-hoc test (alpha 0.05)"


def corrected_variance(values: Sequence[float], n_train: float, n_test: float) -> float:
    """Nadeau-Bengio corrected variance of the mean of ``values`` (J resampled scores)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return float("nan")
    return (1.0 / len(values) + n_test / n_train) * float(np.var(values, ddof=1))


def corrected_interval(
    values: Sequence[float], n_train: float, n_test: float, alpha: float = ALPHA
) -> tuple[float, float]:
    """``(low, high)``: the 1 - ``alpha`` corrected interval of the mean of ``values``."""
    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean())
    half = stats.t.ppf(1 - alpha / 2, len(values) - 1) * np.sqrt(
        corrected_variance(values, n_train, n_test)
    )
    return mean - half, mean + half


def corrected_ttest(differences: Sequence[float], n_train: float, n_test: float) -> float:
    """Two-sided p-value of "mean difference 0" under the corrected resampled t-test.

    Differences that are all equal have zero variance: p 1 when they are all 0 (the same
    scores), p 0 otherwise (one configuration beat the other on every fold by the same margin).
    """
    differences = np.asarray(differences, dtype=np.float64)
    mean = float(differences.mean())
    variance = corrected_variance(differences, n_train, n_test)
    if not np.isfinite(variance):
        return float("nan")
    if variance == 0.0:
        return 1.0 if mean == 0.0 else 0.0
    t_value = mean / np.sqrt(variance)
    return float(2 * stats.t.sf(abs(t_value), len(differences) - 1))


def equivalent(
    differences: Sequence[float], n_train: float, n_test: float, rope: float, alpha: float = ALPHA
) -> tuple[bool, float, float]:
    """``(equivalent, low, high)``: TOST of ``|mean difference| < rope`` at ``alpha``.

    ``low, high`` is the ``1 - 2 alpha`` corrected interval of the mean difference; both
    one-sided tests reject (the difference is above ``-rope`` and below ``+rope``) exactly when
    it lies inside ``(-rope, rope)``. Differences that are all equal: equivalent when their mean
    is inside the ROPE. Fewer than 2 differences: never equivalent (nothing shown).
    """
    differences = np.asarray(differences, dtype=np.float64)
    if len(differences) < 2:
        return False, float("nan"), float("nan")
    low, high = corrected_interval(differences, n_train, n_test, 2 * alpha)
    return bool(-rope < low and high < rope), low, high


@dataclass(frozen=True)
class Verdict:
    """One configuration's verdict on one data set."""

    mean: float  # over the configuration's own finished folds
    low: float
    high: float
    p_vs_best: float  # corrected t-test against the best configuration (1.0 for the best)
    tied: bool  # not significantly worse than the best
    group: int  # 1: tied with the best; 2: tied with the best of the rest; ...
    equivalent: bool = False  # practically equivalent to the best (TOST inside the ROPE)
    n_folds: int = 0  # folds the configuration finished (its mean, std and interval use these)
    diff_low: float = float("nan")  # 1 - 2 alpha interval of (configuration - best)
    diff_high: float = float("nan")
    is_best: bool = False  # the one the others are compared with


def verdicts(
    scores: pd.DataFrame,
    n_train: float,
    n_test: float,
    alpha: float = ALPHA,
    rope: float = ROPE,
) -> dict[str, Verdict]:
    """Verdicts from ``scores``: rows the J paired folds, columns the configurations (NaN: the
    configuration did not finish that fold).

    Each pair is compared on the folds both finished; the best and each group's leader are taken
    among the configurations that finished every fold (when there are any), so a configuration
    that failed somewhere never shrinks the comparisons of the others.
    """
    scores = scores.dropna(axis=0, how="all")
    means = scores.mean(axis=0)
    counts = scores.notna().sum(axis=0)
    complete = set(counts.index[counts == counts.max()]) if len(counts) else set()
    order = list(means.sort_values(ascending=False, kind="stable").index)

    def p_worse(leader: str, other: str) -> float:
        pair = scores[[leader, other]].dropna()
        return _p(pair[leader] - pair[other], n_train, n_test, len(pair))

    groups: dict[str, int] = {}
    remaining = list(order)
    group = 0
    while remaining:
        group += 1
        leader = next((c for c in remaining if c in complete), remaining[0])
        members = [c for c in remaining if c == leader or p_worse(leader, c) >= alpha]
        for c in members:
            groups[c] = group
        remaining = [c for c in remaining if c not in members]
    best = next((c for c in order if c in complete), None)
    out = {}
    for c in order:
        own = scores[c].dropna()
        p = 1.0 if c == best else p_worse(best, c)
        low, high = (
            corrected_interval(own, n_train, n_test, alpha) if len(own) >= 2 else (np.nan, np.nan)
        )
        same, d_low, d_high = True, 0.0, 0.0
        if c != best:
            pair = scores[[best, c]].dropna()
            same, d_low, d_high = equivalent(pair[c] - pair[best], n_train, n_test, rope, alpha)
        out[c] = Verdict(
            float(means[c]),
            low,
            high,
            p,
            groups[c] == 1,
            groups[c],
            same,
            len(own),
            d_low,
            d_high,
            c == best,
        )
    return out


def _p(differences: pd.Series, n_train: float, n_test: float, n_folds: int) -> float:
    if n_folds < 2:
        return 1.0  # one fold: no test possible, nothing is significantly worse
    return corrected_ttest(differences.to_numpy(), n_train, n_test)


@dataclass
class CrossDataset:
    """Average ranks over data sets, the Friedman test and the Nemenyi p-values."""

    ranks: pd.Series  # configuration -> average rank (1 best)
    friedman_p: float
    nemenyi: pd.DataFrame  # configuration x configuration p-values
    n_datasets: int


def cross_dataset(means: pd.DataFrame) -> CrossDataset | None:
    """``means``: rows data sets, columns configurations (mean clean score, higher better).

    None with fewer than 2 data sets or 3 configurations (the Friedman test needs both);
    configurations missing on a data set are left out.
    """
    means = means.dropna(axis=1, how="any")
    if means.shape[0] < 2 or means.shape[1] < 3:
        return None
    try:
        import scikit_posthocs as sp
    except ImportError as error:
        raise ImportError(
            "the cross-data-set ranking needs scikit-posthocs: pip install scikit-posthocs "
            "(fusekit's 'bench' extra)."
        ) from error

    ranks = means.rank(axis=1, ascending=False).mean(axis=0).sort_values()
    friedman = stats.friedmanchisquare(*(means[c].to_numpy() for c in means.columns))
    # scikit-posthocs ranks each block ascending; negate so rank 1 is the best score
    nemenyi = sp.posthoc_nemenyi_friedman(-means.to_numpy())
    nemenyi.index = nemenyi.columns = list(means.columns)
    return CrossDataset(ranks, float(friedman.pvalue), nemenyi, means.shape[0])
