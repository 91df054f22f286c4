"""The leaderboard on hand-made results: ranking criteria, baseline differences, references."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from fusekit.bench.leaderboard import summarize, to_markdown
from fusekit.bench.runner import COLUMNS

N_TRAIN, N_TEST = 80, 20


def _results(scores: dict[str, dict[str, list[float]]]) -> pd.DataFrame:
    """``{fusion: {scenario: per-fold scores}}`` -> results.csv rows (one data set)."""
    rows = []
    for fusion, by_scenario in scores.items():
        for scenario, values in by_scenario.items():
            for fold, score in enumerate(values):
                row = dict.fromkeys(COLUMNS)
                row.update(
                    unit_id=f"{fusion}-{fold}",
                    dataset="d",
                    fusion=fusion,
                    weighting="-" if fusion.startswith("ref:") else "none",
                    calibration="-" if fusion.startswith("ref:") else "none",
                    backbone="-" if fusion.startswith("ref:") else "mlp",
                    repeat=fold // 5,
                    fold=fold % 5,
                    scenario=scenario,
                    modality="a" if scenario == "missing" else None,
                    metric="accuracy",
                    score=score,
                    fit_time=1.0,
                    predict_time=0.01,
                    n_train=N_TRAIN,
                    n_test=N_TEST,
                    status="ok",
                    error="",
                )
                rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


RNG = np.random.default_rng(0)
BASE = 0.8 + RNG.normal(0, 0.02, size=10)
NOISE = RNG.normal(0, 0.02, size=10)
NOISE -= NOISE.mean()  # zero-mean: logistic's clean mean is late's minus 0.005 exactly
RESULTS = _results(
    {
        # clean: concat clearly best; with a modality missing: late clearly best
        "concat": {"clean": list(BASE + 0.1), "missing": list(BASE - 0.3)},
        "late": {"clean": list(BASE), "missing": list(BASE - 0.05)},
        # indistinguishable from late on clean data (corrected se of the difference about 0.012)
        "ref:logistic": {"clean": list(BASE + NOISE - 0.005), "missing": list(BASE + NOISE - 0.2)},
    }
)


def test_rank_by_missing_changes_the_verdict():
    clean = summarize(RESULTS)
    assert list(clean["fusion"])[0] == "concat" and list(clean["group"]) == [1, 2, 2]
    missing = summarize(RESULTS, rank_by="missing")
    assert list(missing["fusion"]) == ["late", "ref:logistic", "concat"]
    assert list(missing["group"]) == [1, 2, 3]
    assert "ranked by missing" in to_markdown(missing)


def test_baseline_difference_is_the_corrected_paired_interval():
    summary = summarize(RESULTS, baseline="late+none").set_index("fusion")
    diff = (BASE + NOISE - 0.005) - BASE  # ref:logistic - late, per fold
    # by hand: mean, corrected variance (1/J + n_test/n_train) s^2, t with J-1 df
    half = stats.t.ppf(0.975, 9) * np.sqrt((1 / 10 + N_TEST / N_TRAIN) * diff.var(ddof=1))
    assert summary.loc["concat", "delta"] == pytest.approx(0.1)
    assert summary.loc["late", "delta"] == 0.0
    assert summary.loc["late", "baseline"] == "late+none+none+mlp"
    logistic = summary.loc["ref:logistic"]
    assert logistic["delta"] == pytest.approx(-0.005) and logistic["reference"]
    assert logistic["delta_low"] == pytest.approx(-0.005 - half, abs=1e-12)
    assert logistic["delta_high"] == pytest.approx(-0.005 + half, abs=1e-12)
    assert logistic["p_baseline"] > 0.05 > summary.loc["concat", "p_baseline"]
    markdown = to_markdown(summary.reset_index())
    assert "vs baseline" in markdown and "ref:... rows are scikit-learn" in markdown


def test_baseline_must_name_one_configuration():
    with pytest.raises(ValueError, match="baseline 'tensor' must name exactly one"):
        summarize(RESULTS, baseline="tensor")


def test_rank_by_robust_without_sweeps_says_what_to_run():
    with pytest.raises(ValueError, match="needs corruption rows: run with --corrupt"):
        summarize(RESULTS, rank_by="robust")
