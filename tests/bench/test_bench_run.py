"""A tiny bench end to end: the results file, the leaderboard, the plots and the report."""

import base64
import re
from pathlib import Path

import numpy as np
import pandas as pd

from fusekit.bench import Sweep, run_bench
from fusekit.bench.runner import COLUMNS
from fusekit.plugin import WarmupCosine


def _run(tmp_path, toy, tiny, **settings):
    return run_bench(
        out_dir=tmp_path, data={"toy": toy}, quiet=True, backend="serial", **{**tiny, **settings}
    )


def test_results_have_one_row_per_fold_configuration_and_level(tmp_path, toy, tiny):
    result = _run(
        tmp_path,
        toy,
        tiny,
        fusion=["concat", "late"],
        sweeps=[Sweep("gaussian", levels=(0.0, 3.0))],
        missing=True,
        references=True,
    )
    frame = pd.read_csv(tmp_path / "results.csv")
    assert list(frame.columns) == COLUMNS
    # (2 configurations + 4 reference rows: logistic, hist_gb, only audio, only video)
    # x 2 folds x (1 clean + 2 modalities x 2 levels + 2 single removals + both removed)
    assert len(frame) == (2 + 4) * 2 * (1 + 4 + 2 + 1)
    assert set(frame["fusion"]) == {
        "concat",
        "late",
        "ref:logistic",
        "ref:hist_gb",
        "ref:only audio",
        "ref:only video",
    }
    assert (frame["status"] == "ok").all()
    assert frame["fit_time"].gt(0).all() and frame["predict_time"].gt(0).all()
    assert set(frame["scenario"]) == {"clean", "corruption", "missing", "empty"}
    clean = frame[frame["scenario"] == "clean"]
    assert clean.groupby("fusion")["fold"].nunique().eq(2).all()
    # the reference rows ran on exactly the folds of the fusion rows (paired)
    tests = clean.groupby("fusion")["n_test"].apply(tuple)
    assert tests.nunique() == 1
    assert clean["n_train"].add(clean["n_test"]).eq(len(toy[1])).all()
    # level 0 of a gaussian sweep leaves the data unchanged: the clean score
    zero = frame[(frame["corruption"] == "gaussian") & (frame["level"] == 0.0)]
    merged = zero.merge(clean, on=["fusion", "fold"], suffixes=("", "_clean"))
    np.testing.assert_allclose(merged["score"], merged["score_clean"])
    assert len(result.results) == len(frame)


def test_leaderboard_groups_ties_with_the_best_and_bolds_group_one(tmp_path, toy, tiny):
    result = _run(
        tmp_path, toy, tiny, fusion=["concat", "late", "mean"], repeats=2, references=True
    )
    summary = result.summary
    clean = result.results[result.results["scenario"] == "clean"]
    means = clean.groupby("fusion")["score"].mean()
    # the best mean is in group 1, groups never decrease down the table, and within a group
    # the means do not increase
    assert summary.iloc[0]["fusion"] == means.idxmax() and summary.iloc[0]["group"] == 1
    assert summary["group"].is_monotonic_increasing
    for _, group in summary.groupby("group"):
        assert group["score"].is_monotonic_decreasing
    np.testing.assert_allclose(summary.set_index("fusion")["mean"], means[summary["fusion"]])
    assert (summary["low"] <= summary["score"]).all() and (
        summary["score"] <= summary["high"]
    ).all()
    markdown = (tmp_path / "leaderboard.md").read_text()
    assert markdown.strip() == result.leaderboard.strip()
    assert "Nadeau-Bengio corrected resampled t-test" in markdown  # the test is named
    table = [line for line in markdown.splitlines() if line.startswith("| ")][1:]
    for line, (_, row) in zip(table, summary.iterrows(), strict=True):
        assert (f"**{row['fusion']}**" in line) == (row["group"] == 1)
    assert "needs at least 2" in markdown  # one data set: no cross-data-set ranking


def test_report_references_every_png_it_claims_and_each_exists(tmp_path, toy, tiny):
    from fusekit.datasets import make_multimodal_classification

    other = make_multimodal_classification(
        n_samples=60, n_features=[3, 3], n_classes=2, names=["audio", "video"], random_state=1
    )
    result = run_bench(
        out_dir=tmp_path,
        data={"toy": toy, "other": other},  # two data sets: the cross-data-set diagram appears
        quiet=True,
        backend="serial",
        **{**tiny, "references": True},
        fusion=["concat", "late"],
        sweeps=[Sweep("gaussian", levels=(0.0, 1.0))],
        missing=True,
    )
    html = result.report.read_text()
    linked = set(re.findall(r'href="([^"]+\.png)"', html))
    claimed = {figure.file for figure in result.figures}
    assert linked == claimed
    assert {
        "fit_time_toy.png",
        "robustness_toy_gaussian.png",
        "missing_toy.png",
        "fit_time_other.png",
        "critical_difference.png",
    } <= linked
    embedded = re.findall(
        r'<a href="([^"]+\.png)"><img [^>]*src="data:image/png;base64,([^"]+)"', html
    )
    assert {name for name, _ in embedded} == linked
    for name, payload in embedded:
        data = (Path(tmp_path) / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        assert base64.b64decode(payload) == data  # the page shows exactly the file it links
    text = re.sub(r"base64,[^\"]+", "", html)
    # the verdicts, their test, the reference rows and the cross-data-set ranking are shown
    assert "Nadeau-Bengio corrected resampled t-test" in text and "tied with the best" in text
    assert text.count('class="reference"') + text.count('class="best reference"') == 2 * 4
    assert "Across data sets" in text and "Friedman p =" in text
    assert "Modality importance: Shapley values" in text  # from the missing-modality rows
    empty = result.results[result.results["scenario"] == "empty"]
    assert len(empty) == len(result.results[result.results["scenario"] == "clean"])
    assert not re.search(r"(src|href)=.(https?:|//)", text)  # self-contained: nothing fetched


def test_continuous_target_is_benched_as_regression_with_r2(tmp_path, tiny):
    from fusekit.datasets import make_multimodal_regression

    X, y = make_multimodal_regression(n_samples=40, n_features=[3, 2], random_state=0)
    result = run_bench(
        out_dir=tmp_path,
        data={"reg": (X, y)},
        quiet=True,
        backend="serial",
        **{**tiny, "max_epochs": 1, "references": True},
    )
    clean = result.results[result.results["scenario"] == "clean"]
    assert (clean["status"] == "ok").all() and set(clean["metric"]) == {"r2"}
    # concat + 4 references (logistic -> Ridge, hist_gb regressor, each modality alone), 2 folds
    assert len(clean) == 5 * 2 and clean["score"].le(1.0).all()
    assert {"ref:logistic", "ref:hist_gb"} <= set(clean["fusion"])


def test_results_record_the_training_each_fit_had(tmp_path, toy, tiny):
    """The lr, optimiser and schedule actually used, the epochs and the first / last training
    loss: values the run was given (lr 0.05, 2 epochs) or the estimator's documented fallback
    (Adam, constant lr); empty on the reference rows."""
    _run(tmp_path, toy, tiny, fusion=["concat"], lr=0.05, references=True)
    frame = pd.read_csv(tmp_path / "results.csv")
    fits = frame[frame["fusion"] == "concat"]
    assert (fits["lr"] == 0.05).all()
    assert (fits["optimizer"] == "Adam").all() and (fits["lr_schedule"] == "constant").all()
    assert (fits["n_epochs"] == 2).all()
    assert np.isfinite(fits[["train_loss_first", "train_loss_last"]]).all(axis=None)
    # 3 balanced classes: the first epoch's mean cross-entropy is near log 3 ≈ 1.10
    assert fits["train_loss_first"].between(0.5, 2.0).all()
    references = frame[frame["fusion"].str.startswith("ref:")]
    assert references[["lr", "optimizer", "n_epochs", "train_loss_last"]].isna().all(axis=None)


def test_results_record_the_schedule_and_the_epochs_early_stopping_ran(tmp_path, toy, tiny):
    schedule = WarmupCosine()
    _run(
        tmp_path,
        toy,
        tiny,
        fusion=["concat"],
        max_epochs=30,
        params={
            "lr_schedule": schedule,
            "early_stopping": True,
            "n_iter_no_change": 2,
            "tol": 10.0,  # no epoch can improve by 10: the best is epoch 1, stop after 1 + 2
        },
    )
    frame = pd.read_csv(tmp_path / "results.csv")
    assert (frame["lr_schedule"] == repr(schedule)).all()
    assert (frame["n_epochs"] == 3).all()


def test_a_results_file_from_before_the_training_columns_resumes(tmp_path, toy, tiny):
    """An older results.csv (no tuned / training columns) is read with those columns empty, and
    a resumed run skips its finished units."""
    from fusekit.bench.runner import TRAINING_COLUMNS
    from fusekit.bench.store import ResultStore

    _run(tmp_path, toy, tiny, fusion=["concat"])
    frame = pd.read_csv(tmp_path / "results.csv")
    frame.drop(columns=["tuned", *TRAINING_COLUMNS]).to_csv(tmp_path / "results.csv", index=False)
    read = ResultStore(tmp_path).read()
    assert list(read.columns) == COLUMNS
    assert read["lr"].isna().all() and (read["tuned"] == "").all()  # lr: a number, absent
    assert len(ResultStore(tmp_path).finished()) == 2  # both folds
    _run(tmp_path, toy, tiny, fusion=["concat"])  # resumes: nothing left to fit
    assert len(pd.read_csv(tmp_path / "results.csv")) == len(frame)
