"""The leaderboard on hand-made results: ranking criteria, baseline differences, references."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from fusekit.bench.leaderboard import importance_table, summarize, to_markdown
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


def _game_rows(fusion: str, fold: int, values: dict[str, float], names: list[str]) -> list[dict]:
    """results.csv rows of one fold: ``values`` maps the present modalities ("a+b", "" = none)
    to the test score; the rows record what was removed, as the runner writes them."""
    rows = []
    for present, score in values.items():
        kept = set(present.split("+")) - {""}
        removed = [m for m in names if m not in kept]
        scenario = "clean" if not removed else "empty" if not kept else "missing"
        row = dict.fromkeys(COLUMNS)
        row.update(
            unit_id=f"{fusion}-{fold}", dataset="d", fusion=fusion, weighting="none",
            calibration="none", backbone="mlp", repeat=0, fold=fold, scenario=scenario,
            modality="+".join(removed) if removed else None, metric="accuracy", score=score,
            status="ok", error="",
        )  # fmt: skip
        rows.append(row)
    return rows


def test_importance_table_is_the_shapley_value_of_the_fold_scores():
    """Two folds of a three-modality game, Shapley values worked by hand (mean over folds).

    Fold 0: v({}) = 0.1, v(a) = 0.7, v(b) = 0.7 (b a copy of a), v(c) = 0.1 (noise), v(ab) = 0.7,
    v(ac) = 0.7, v(bc) = 0.7, v(abc) = 0.7: a and b share 0.6 equally (0.3 each), c gets 0.
    Fold 1: v = 0.1 + 0.2|S| (additive): 0.2 each. Means: a = b = 0.25, c = 0.1.
    """
    names = ["a", "b", "c"]
    copy = {"": 0.1, "a": 0.7, "b": 0.7, "c": 0.1, "a+b": 0.7, "a+c": 0.7, "b+c": 0.7}
    copy["a+b+c"] = 0.7
    subsets = ["", "a", "b", "c", "a+b", "a+c", "b+c", "a+b+c"]
    additive = {s: 0.1 + 0.2 * len(set(s.split("+")) - {""}) for s in subsets}
    results = pd.DataFrame(
        _game_rows("concat", 0, copy, names) + _game_rows("concat", 1, additive, names),
        columns=COLUMNS,
    )
    table = importance_table(results)
    row = table.loc[("d", "concat", "none", "none", "mlp")]
    np.testing.assert_allclose(row[["a", "b", "c"]].to_numpy(float), [0.25, 0.25, 0.1], atol=1e-12)
    # a fold without the empty coalition (an older run) is left out, not guessed
    older = results[~((results["fold"] == 1) & (results["scenario"] == "empty"))]
    row = importance_table(older).loc[("d", "concat", "none", "none", "mlp")]
    np.testing.assert_allclose(row[["a", "b", "c"]].to_numpy(float), [0.3, 0.3, 0.0], atol=1e-12)
    assert importance_table(results[results["scenario"] != "empty"]).empty


def test_configurations_whose_training_loss_did_not_fall_are_named_under_the_table():
    results = _results({"concat": {"clean": [0.9, 0.8, 0.85]}, "late": {"clean": [0.3, 0.2, 0.4]}})
    results["train_loss_first"] = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    results["train_loss_last"] = [0.2, 0.3, 0.1, 1.5, 0.4, 1.0]  # late: 2 folds rose or stalled
    summary = summarize(results)
    counts = summary.set_index("fusion")["not_learning"]
    assert counts.to_dict() == {"concat": 0, "late": 2}
    text = to_markdown(summary)
    assert "- training loss did not fall: late in 2 of 3 folds" in text
    assert "did not fall: concat" not in text
    # no recorded losses (reference rows, older files): nothing is flagged
    assert summarize(_results({"late": {"clean": [0.3, 0.2]}}))["not_learning"].eq(0).all()


def test_the_report_names_them_too(tmp_path):
    from fusekit.bench.report import write_report

    results = _results({"concat": {"clean": [0.9, 0.8]}, "late": {"clean": [0.3, 0.2]}})
    results["train_loss_first"] = 1.0
    results["train_loss_last"] = [0.2, 0.3, 1.5, 0.4]
    page = write_report(tmp_path, results, summarize(results), [], {}).read_text()
    assert "<li>training loss did not fall: late in 1 of 2 folds" in page


def test_a_failed_reference_fold_leaves_the_paired_folds_and_the_row_says_so():
    results = RESULTS[RESULTS["scenario"] == "clean"].copy()
    broken = (
        (results["fusion"] == "ref:logistic") & (results["fold"] == 2) & (results["repeat"] == 0)
    )
    results.loc[broken, ["status", "score", "error"]] = ["error", np.nan, "ValueError: boom"]
    summary = summarize(results).set_index("fusion")
    assert summary.loc["concat", "n_paired"] == 10  # not 9: the reference shrinks nothing
    assert summary.loc["late", "n_folds"] == 10 and summary.loc["ref:logistic", "n_folds"] == 9
    # the reference's mean ± std and interval use its own 9 folds
    own = results[(results["fusion"] == "ref:logistic") & (results["status"] == "ok")]["score"]
    assert summary.loc["ref:logistic", "mean"] == pytest.approx(own.mean())
    assert summary.loc["ref:logistic", "score"] == pytest.approx(own.mean())
    text = to_markdown(summarize(results))
    assert "9 of 10 (1 failed)" in text
    assert "over 10 paired folds" in text


def test_the_verdict_column_tells_equivalent_from_not_significantly_worse():
    # late vs ref:logistic differ by 0.005 on average with per-fold noise of sd 0.02
    summary = summarize(RESULTS[RESULTS["scenario"] == "clean"], rope=0.01).set_index("fusion")
    assert summary.loc["concat", "group"] == 1
    text = to_markdown(summarize(RESULTS[RESULTS["scenario"] == "clean"], rope=0.5))
    assert "| equivalent |" in text.replace("**", "")  # a huge ROPE: everything is equivalent
    assert "ROPE (±0.5)" in text
    assert not summary.loc["late", "equivalent"] and not summary.loc["late", "tied"]


def test_interaction_table_is_the_shapley_interaction_of_the_fold_scores(tmp_path):
    """The game of the importance test, interactions worked by hand (3 players: I_ij is the
    mean over S in {{}, {k}} of v(S+ij) - v(S+i) - v(S+j) + v(S), weights 1/2 each).

    Fold 0: a, b copies: (0.7 - 0.7 - 0.7 + 0.1 + 0.7 - 0.7 - 0.7 + 0.1) / 2 = -0.6 (redundant);
    a, c and b, c: 0. Fold 1 (additive): 0. Means: a x b = -0.3, the others 0. A second
    configuration, two modalities that only work together (v = 0.5, 0.5, 0.5, 1.0):
    I = 1.0 - 0.5 - 0.5 + 0.5 = +0.5 (complementary).
    """
    from fusekit.bench.leaderboard import interaction_table
    from fusekit.bench.report import write_report

    names = ["a", "b", "c"]
    copy = {"": 0.1, "a": 0.7, "b": 0.7, "c": 0.1, "a+b": 0.7, "a+c": 0.7, "b+c": 0.7}
    copy["a+b+c"] = 0.7
    subsets = ["", "a", "b", "c", "a+b", "a+c", "b+c", "a+b+c"]
    additive = {s: 0.1 + 0.2 * len(set(s.split("+")) - {""}) for s in subsets}
    rows = _game_rows("concat", 0, copy, names) + _game_rows("concat", 1, additive, names)
    results = pd.DataFrame(rows, columns=COLUMNS)
    row = interaction_table(results).loc[("d", "concat", "none", "none", "mlp")]
    np.testing.assert_allclose(
        row[["a x b", "a x c", "b x c"]].to_numpy(float), [-0.3, 0, 0], atol=1e-12
    )
    xor = {"": 0.5, "a": 0.5, "b": 0.5, "a+b": 1.0}
    both = pd.DataFrame(
        rows + [{**r, "dataset": "e"} for r in _game_rows("late", 0, xor, ["a", "b"])],
        columns=COLUMNS,
    )
    table = interaction_table(both)
    assert table.loc[("e", "late", "none", "none", "mlp"), "a x b"] == pytest.approx(0.5)
    page = write_report(tmp_path, both, summarize(both), [], {}).read_text()
    assert "-0.300 redundant" in page and "+0.500 complementary" in page
    assert "+0.000 additive" in page


def test_only_one_row_is_the_best_and_identical_scores_are_equivalent():
    results = _results({"concat": {"clean": [0.9, 0.8, 0.85]}, "late": {"clean": [0.9, 0.8, 0.85]}})
    text = to_markdown(summarize(results)).replace("**", "")
    assert text.count("| best |") == 1 and text.count("| equivalent |") == 1
