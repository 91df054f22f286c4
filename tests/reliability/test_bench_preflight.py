"""A bench setting that no unit could run with fails before the first fit, naming the setting
(it used to surface only after every unit had trained, as error rows or a late exception)."""

import numpy as np
import pytest

from fusekit.bench import BenchConfig, run_bench
from fusekit.bench.data import from_arrays, load_named
from fusekit.bench.preflight import PreflightError, preflight
from fusekit.cli import main
from fusekit.data import Modalities
from fusekit.datasets import make_multimodal_classification

TINY = {"datasets": (), "max_epochs": 1, "folds": 2, "batch_size": 32, "references": False}


@pytest.fixture(scope="module")
def three_classes():
    X, y = make_multimodal_classification(
        n_samples=30, n_features=[3, 2], n_classes=3, names=["a", "b"], random_state=0
    )
    return X, y


def _bench(tmp_path, data, **settings):
    """run_bench on in-memory data; a preflight error must leave no results.csv behind (it is
    created when the first unit is about to run)."""
    return run_bench(
        out_dir=tmp_path, data=data, quiet=True, backend="serial", **{**TINY, **settings}
    )


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (
            {"metric": "acuracy"},
            r"metric 'acuracy' is not a scikit-learn scorer name\. Did you "
            r"mean \['accuracy'",
        ),
        (
            {"metric": "f1"},
            r"metric 'f1' cannot score data set 'toy' \(classification, 3 "
            r"classes\): .*average",
        ),
        (
            {"params": {"epochs": 3}},
            r"params: 'epochs' is not a parameter of the estimator\. "
            r"Did you mean 'max_epochs'\?",
        ),
        (
            {"params": {"fuson__rank": 3}},
            r"params: 'fuson__rank' is not a parameter of the "
            r"estimator: nested parameters start with one of",
        ),
        (
            {"fusion": ["concat", "lowrank"], "params": {"fusion__rank": 3}},
            r"configuration concat\+none\+none\+mlp \(modalities \['a', 'b'\]\) cannot take the "
            r"parameters \['fusion__rank'\]: fusion ConcatFusion got unknown parameters \['rank'\]",
        ),
        ({"params": {"backbone__c__hidden": 8}}, r"backbone__c__hidden.*'c' is not a modality"),
        (
            {"tune": {"lrr": [0.1, 0.01]}},
            r"tune: 'lrr' is not a parameter of the estimator\. "
            r"Did you mean 'lr'\?",
        ),
        (
            {"fusion": ["concat", "late"], "baseline": "tensor"},
            r"data set 'toy': baseline 'tensor' must name exactly one configuration, it matches "
            r"\[\]; configurations: \['concat\+none\+none\+mlp', 'late\+none\+none\+mlp'\]",
        ),
    ],
)
def test_bad_setting_fails_before_the_first_fit(tmp_path, three_classes, settings, expected):
    with pytest.raises(PreflightError, match=expected):
        _bench(tmp_path, {"toy": three_classes}, **settings)
    assert not (tmp_path / "results.csv").exists()  # no unit started


def test_more_folds_than_the_largest_class_fails_naming_the_data_set(tmp_path):
    rng = np.random.default_rng(0)
    X = Modalities(a=rng.normal(size=(9, 2)), b=rng.normal(size=(9, 2)))
    y = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2])  # largest class: 4 samples
    with pytest.raises(
        PreflightError,
        match=r"data set 'toy': stratified folds=5 need a class with at least 5 samples, but its "
        r"largest class has 4\. Use fewer folds",
    ):
        _bench(tmp_path, {"toy": (X, y)}, folds=5)
    assert not (tmp_path / "results.csv").exists()


def test_accuracy_on_a_regression_target_fails_before_training(tmp_path):
    rng = np.random.default_rng(0)
    X = Modalities(a=rng.normal(size=(20, 3)), b=rng.normal(size=(20, 2)))
    with pytest.raises(
        PreflightError,
        match=r"metric 'accuracy' cannot score data set 'reg' \(a regression target\): "
        r"continuous is not supported",
    ):
        _bench(tmp_path, {"reg": (X, rng.normal(size=20))}, metric="accuracy")
    assert not (tmp_path / "results.csv").exists()


def test_data_set_with_one_class_fails_naming_it(tmp_path):
    X = Modalities(a=np.zeros((6, 2)), b=np.ones((6, 2)))
    with pytest.raises(PreflightError, match=r"data set 'flat' has one class \('x'\)"):
        _bench(tmp_path, {"flat": (X, np.array(["x"] * 6))})


def test_data_set_smaller_than_the_folds_fails_naming_it(tmp_path):
    rng = np.random.default_rng(0)
    X = Modalities(a=rng.normal(size=(3, 2)), b=rng.normal(size=(3, 2)))
    with pytest.raises(PreflightError, match=r"data set 'small' has 3 samples, fewer than folds=4"):
        _bench(tmp_path, {"small": (X, rng.normal(size=3))}, folds=4)


def test_unknown_component_name_fails_before_any_data_is_loaded(tmp_path, three_classes):
    with pytest.raises(ValueError, match=r"unknown fusion \['concatt'\]; installed: \["):
        _bench(tmp_path, {"toy": three_classes}, fusion=["concatt"])
    assert not (tmp_path / "results.csv").exists()


def test_loader_argument_the_loader_does_not_take_fails_before_loading():
    with pytest.raises(
        ValueError,
        match=r"dataset 'mfeat:vews=fou': its loader takes no argument \['vews'\]; it "
        r"accepts \['views'",
    ):
        load_named("mfeat:vews=fou")


def test_settings_every_configuration_accepts_pass(three_classes):
    data = [from_arrays("toy", *three_classes, {})]
    config = BenchConfig(
        datasets=(),
        fusion=["concat", "late"],
        params={"backbone__hidden": 8, "max_epochs": 2},
        tune={"lr": [0.01, 0.1]},
        metric="balanced_accuracy",
        baseline="late",
        folds=3,
        references=False,
    )
    assert preflight(config, data) is None


def test_cli_names_the_bad_metric_and_exits_2(tmp_path, three_classes, capsys):
    import pandas as pd

    X, y = three_classes
    frame = pd.DataFrame(
        np.hstack([X["a"], X["b"]]), columns=["a__0", "a__1", "a__2", "b__0", "b__1"]
    )
    frame["label"] = y
    frame.to_csv(tmp_path / "toy.csv", index=False)
    out = tmp_path / "out"
    argv = ["bench", "--data", str(tmp_path / "toy.csv"), "--target", "label", "--metric"]
    code = main(
        [
            *argv,
            "roc_auc",
            "--folds",
            "2",
            "--max-epochs",
            "1",
            "--out",
            str(out),
            "--no-references",
            "--backend",
            "serial",
            "--quiet",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "metric 'roc_auc' cannot score data set 'toy.csv' (classification, 3 classes)" in err
    assert not (out / "results.csv").exists()
