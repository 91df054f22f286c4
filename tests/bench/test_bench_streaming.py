"""``fusekit bench --data FILE.parquet --stream``: units fit and score streamed folds.

The reference: the same folds drawn independently with scikit-learn's ``StratifiedKFold`` and an
in-memory fit of each fold's rows with the unit's seed; with ``shuffle=False`` the streamed
unit must score exactly what that fit scores.
"""

import argparse

import numpy as np
import pandas as pd
import pytest
from reliability.raising import raises_exactly
from sklearn.model_selection import StratifiedKFold

from fusekit import FusionClassifier
from fusekit.bench.api import run_bench
from fusekit.bench.cli import add_bench_parser, config_from_args

pytest.importorskip("pyarrow")


@pytest.fixture
def parquet_file(tmp_path, toy):
    X, y = toy
    frame = pd.DataFrame(
        np.hstack([X["audio"], X["video"]]),
        columns=[f"audio__{i}" for i in range(4)] + [f"video__{i}" for i in range(3)],
    )
    frame["label"] = np.array(["cat", "dog", "eel"])[y]
    frame.loc[7, "label"] = None  # a row without a target is left out, as in memory
    path = tmp_path / "toy.parquet"
    frame.to_parquet(path, row_group_size=16)  # 4 row groups
    return path, frame


def test_streamed_units_score_what_an_in_memory_fit_of_the_fold_scores(tmp_path, parquet_file):
    path, frame = parquet_file
    settings = {"max_epochs": 2, "batch_size": 8, "folds": 2, "seed": 3}
    result = run_bench(
        datasets=[str(path)],
        target="label",
        stream=True,
        params={"shuffle": False},
        out_dir=tmp_path / "out",
        backend="serial",
        quiet=True,
        **settings,
    )
    rows = result.results
    assert (rows["status"] == "ok").all(), rows["error"].tolist()
    assert set(rows["fusion"]) == {"concat"}  # no reference rows for streamed data
    assert rows["n_train"].add(rows["n_test"]).eq(59).all()
    kept = frame[frame["label"].notna()].reset_index(drop=True)
    features, y = kept.drop(columns="label"), kept["label"].to_numpy()
    folds = StratifiedKFold(n_splits=2, shuffle=True, random_state=3).split(features, y)
    for fold, (train, test) in enumerate(folds):
        model = FusionClassifier(
            max_epochs=2, batch_size=8, shuffle=False, random_state=3 * 10_007 + fold
        ).fit(features.iloc[train], y[train])
        expected = model.score(features.iloc[test], y[test])
        assert rows.loc[rows["fold"] == fold, "score"].item() == pytest.approx(expected, abs=1e-12)
    assert "reference rows" in (tmp_path / "out" / "report.html").read_text()


def test_what_needs_the_features_in_memory_is_refused(tmp_path, parquet_file):
    path, _ = parquet_file
    with raises_exactly(ValueError, r"streamed bench .* cannot run the removed-modality table"):
        run_bench(datasets=[str(path)], target="label", stream=True, missing=True, out_dir=tmp_path)


def test_the_stream_flag_reaches_the_config(parquet_file):
    path, _ = parquet_file
    parser = argparse.ArgumentParser()
    add_bench_parser(parser.add_subparsers())
    args = parser.parse_args(["bench", "--data", str(path), "--target", "label", "--stream"])
    config = config_from_args(args)
    assert config.stream and config.datasets == (str(path),) and not config.sweeps
    plain = config_from_args(parser.parse_args(["bench", "--data", str(path)]))
    assert not plain.stream
