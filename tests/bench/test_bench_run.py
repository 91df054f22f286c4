"""A tiny bench end to end: the results file, the leaderboard, the plots and the report."""

import base64
import re
from pathlib import Path

import numpy as np
import pandas as pd

from fusekit.bench import Sweep, run_bench
from fusekit.bench.runner import COLUMNS


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
    )
    frame = pd.read_csv(tmp_path / "results.csv")
    assert list(frame.columns) == COLUMNS
    # 2 configurations x 2 folds x (1 clean + 2 modalities x 2 levels + 2 single removals)
    assert len(frame) == 2 * 2 * (1 + 4 + 2)
    assert (frame["status"] == "ok").all()
    assert frame["fit_time"].gt(0).all() and frame["predict_time"].gt(0).all()
    assert set(frame["scenario"]) == {"clean", "corruption", "missing"}
    clean = frame[frame["scenario"] == "clean"]
    assert clean.groupby("fusion")["fold"].nunique().eq(2).all()
    assert clean["n_train"].add(clean["n_test"]).eq(len(toy[1])).all()
    # level 0 of a gaussian sweep leaves the data unchanged: the clean score
    zero = frame[(frame["corruption"] == "gaussian") & (frame["level"] == 0.0)]
    merged = zero.merge(clean, on=["fusion", "fold"], suffixes=("", "_clean"))
    np.testing.assert_allclose(merged["score"], merged["score_clean"])
    assert len(result.results) == len(frame)


def test_leaderboard_ranks_by_mean_clean_score_and_bolds_the_best(tmp_path, toy, tiny):
    result = _run(tmp_path, toy, tiny, fusion=["concat", "late", "mean"])
    summary = result.summary
    clean = result.results[result.results["scenario"] == "clean"]
    means = clean.groupby("fusion")["score"].mean()
    assert list(summary["fusion"]) == list(means.sort_values(ascending=False, kind="stable").index)
    best = summary.iloc[0]
    assert best["rank"] == 1 and np.isclose(best["mean"], means.max())
    markdown = (tmp_path / "leaderboard.md").read_text()
    assert markdown.strip() == result.leaderboard.strip()
    table = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert "**1**" in table[1] and f"**{best['fusion']}**" in table[1]
    assert f"{means.max():.3f}" in table[1]


def test_report_references_every_png_it_claims_and_each_exists(tmp_path, toy, tiny):
    result = _run(
        tmp_path,
        toy,
        tiny,
        fusion=["concat", "late"],
        sweeps=[Sweep("gaussian", levels=(0.0, 1.0))],
        missing=True,
    )
    html = result.report.read_text()
    linked = set(re.findall(r'href="([^"]+\.png)"', html))
    claimed = {figure.file for figure in result.figures}
    assert linked == claimed
    assert {"fit_time_toy.png", "robustness_toy_gaussian.png", "missing_toy.png"} <= linked
    embedded = re.findall(
        r'<a href="([^"]+\.png)"><img [^>]*src="data:image/png;base64,([^"]+)"', html
    )
    assert {name for name, _ in embedded} == linked
    for name, payload in embedded:
        data = (Path(tmp_path) / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        assert base64.b64decode(payload) == data  # the page shows exactly the file it links
    text = re.sub(r"base64,[^\"]+", "", html)
    assert not re.search(r"(src|href)=.(https?:|//)", text)  # self-contained: nothing fetched


def test_continuous_target_is_benched_as_regression_with_r2(tmp_path, tiny):
    from fusekit.datasets import make_multimodal_regression

    X, y = make_multimodal_regression(n_samples=40, n_features=[3, 2], random_state=0)
    result = run_bench(
        out_dir=tmp_path,
        data={"reg": (X, y)},
        quiet=True,
        backend="serial",
        **{**tiny, "max_epochs": 1},
    )
    clean = result.results[result.results["scenario"] == "clean"]
    assert (clean["status"] == "ok").all() and set(clean["metric"]) == {"r2"}
    assert len(clean) == 2 and clean["score"].le(1.0).all()
