"""``fusekit bench`` / ``fusekit datasets`` through argparse, on a CSV file with a modality spec."""

import json

import numpy as np
import pandas as pd
import pytest

from fusekit.bench.cli import config_from_args
from fusekit.bench.config import quick_config
from fusekit.cli import build_parser as _parser


def _run(argv):
    args = _parser().parse_args(argv)
    return args.handler(args)


@pytest.fixture
def csv_file(tmp_path, toy):
    X, y = toy
    frame = pd.DataFrame(
        np.hstack([X["audio"], X["video"]]),
        columns=[f"a{i}" for i in range(4)] + [f"v{i}" for i in range(3)],
    )
    frame["label"] = np.array(["cat", "dog", "eel"])[y]
    frame["comment"] = "free text the spec leaves out"
    path = tmp_path / "toy.csv"
    frame.to_csv(path, index=False)
    return path


def test_bench_on_a_csv_file_with_a_modality_spec(tmp_path, csv_file, capsys):
    spec = json.dumps({"audio": "^a", "video": ["v0", "v1", "v2"]})
    out = tmp_path / "out"
    code = _run(
        [
            "bench",
            "--data",
            str(csv_file),
            "--target",
            "label",
            "--modalities",
            spec,
            "--fusion",
            "concat,mean",
            "--folds",
            "2",
            "--max-epochs",
            "1",
            "--corrupt",
            "zero_out:video@0,1",
            "--rank-by",
            "robust",
            "--baseline",
            "concat",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "# fusekit bench leaderboard" in printed and "## toy.csv" in printed
    assert "ranked by robust" in printed and "vs baseline" in printed
    frame = pd.read_csv(out / "results.csv")
    assert (frame["status"] == "ok").all()
    assert set(frame["modality"].dropna()) == {"video"}  # the sweep touched only video
    assert frame["n_train"].add(frame["n_test"]).eq(60).all()
    assert (out / "report.html").is_file() and (out / "leaderboard.md").is_file()


def test_bad_grid_name_exits_2_with_the_reason(tmp_path, csv_file, capsys):
    code = _run(
        [
            "bench",
            "--data",
            str(csv_file),
            "--target",
            "label",
            "--fusion",
            "nope",
            "--out",
            str(tmp_path),
            "--quiet",
        ]
    )
    assert code == 2
    assert "unknown fusion ['nope']" in capsys.readouterr().err
    code = _run(["bench", "--data", str(csv_file), "--target", "label", "--out", str(tmp_path)])
    assert code == 2
    assert "holds strings (text or categories), but its backbone 'mlp'" in capsys.readouterr().err


def test_no_grid_option_means_the_quick_suite_and_options_override_it():
    args = _parser().parse_args(["bench", "--folds", "4"])
    config = config_from_args(args)
    quick = quick_config()
    assert config.fusion == quick.fusion and config.design == "axes"
    assert config.folds == 4
    args = _parser().parse_args(
        [
            *["bench", "--dataset", "nutrimouse", "--param", "fusion__x=2"],
            *["--tune", "lr=1e-3,1e-2", "--tune", "max_epochs=10"],
        ]
    )
    config = config_from_args(args)
    assert config.datasets == ("nutrimouse",) and config.design == "product"
    assert config.params == {"fusion__x": 2}
    assert config.tune == {"lr": [1e-3, 1e-2], "max_epochs": [10]}
    args = _parser().parse_args(
        [
            *["bench", "--data", "x.csv", "--target", "y", "--groups", "subject"],
            *["--cv", "group_kfold", "--cv-param", "n_splits=4", "--budget-steps", "40"],
            *["--rope", "0.005", "--tune-search", "halving"],
        ]
    )
    config = config_from_args(args)
    assert (config.groups, config.cv, dict(config.cv_params)) == (
        "subject",
        "group_kfold",
        {"n_splits": 4},
    )
    assert (config.budget_steps, config.rope, config.tune_search) == (40, 0.005, "halving")
    # epochs asked for on the default suite: epochs, not its step budget
    config = config_from_args(_parser().parse_args(["bench", "--max-epochs", "3"]))
    assert (config.max_epochs, config.budget_steps) == (3, None)
    assert config_from_args(_parser().parse_args(["bench"])).budget_steps == 100


def test_suite_flag_gives_a_csv_the_default_grid_and_help_shows_defaults(csv_file, capsys):
    args = _parser().parse_args(["bench", "--data", str(csv_file), "--target", "y", "--suite"])
    config = config_from_args(args)
    quick = quick_config()
    assert config.datasets == (str(csv_file),)
    assert (config.fusion, config.weighting, config.design) == (
        quick.fusion,
        quick.weighting,
        "axes",
    )
    assert config.sweeps == quick.sweeps and config.missing
    with pytest.raises(SystemExit):
        _parser().parse_args(["bench", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "default 10 (default suite: a budget of 100 optimiser steps" in text  # --max-epochs
    assert "--budget-steps N" in text and "--rope DELTA" in text and "--groups COLUMN" in text
    assert "default concat" in text and "default processes" in text


def test_datasets_lists_registered_sets_with_shapes(capsys):
    assert _run(["datasets"]) == 0
    printed = capsys.readouterr().out
    assert "mfeat" in printed and "n=2000, 10 classes" in printed and "fou (76,)" in printed


def test_equal_budget_and_lr_flags():
    config = config_from_args(_parser().parse_args(["bench", "--fusion", "concat"]))
    assert config.lr is None and not config.equal_budget
    args = _parser().parse_args(["bench", "--fusion", "concat", "--equal-budget", "--lr", "0.02"])
    config = config_from_args(args)
    assert config.equal_budget and config.lr == 0.02
