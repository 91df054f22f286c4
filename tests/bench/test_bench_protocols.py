"""Real protocols: references that fit on NaN-padded data, grouped and user-given splitters
recorded as data, budgets in optimiser steps."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import GroupKFold, StratifiedGroupKFold, StratifiedKFold

from fusekit.bench import run_bench
from fusekit.bench.budget import epochs_for
from fusekit.bench.config import BenchConfig, plan
from fusekit.bench.data import from_arrays, load_file
from fusekit.bench.manifest import config_from_json, config_to_json
from fusekit.bench.reference import make_reference
from fusekit.bench.splitters import splits


def test_reference_models_fit_when_a_column_is_nan_in_every_training_row():
    rng = np.random.default_rng(0)
    y = np.arange(30) % 2
    seq = rng.normal(size=(30, 4, 2))
    seq[:, 3, :] = np.nan  # a padded step no training sequence reaches
    X = {"s": seq, "v": rng.normal(size=(30, 2))}
    X["v"][:, 1] = np.nan
    for name in ("ref:hist_gb", "ref:logistic", "ref:only s"):
        model = make_reference(name, "classification", 0).fit(X, y)
        assert model.predict(X).shape == (30,)
    # every column empty: the model still fits (a constant prediction)
    empty = {"s": np.full((30, 2), np.nan)}
    assert make_reference("ref:hist_gb", "classification", 0).fit(empty, y).predict(empty).shape


def test_grouped_splits_keep_each_group_on_one_side_and_match_scikit_learn():
    y = np.arange(40) % 2
    groups = np.repeat(np.arange(8), 5)
    found = splits(y, "classification", 4, 2, 7, groups=groups)
    assert len(found) == 8
    for repeat, fold, train, test in found:
        assert not set(groups[train]) & set(groups[test])
        # what scikit-learn gives with the bench's documented settings, computed on its own
        expected = list(
            StratifiedGroupKFold(4, shuffle=True, random_state=7 + repeat).split(
                np.zeros(40), y, groups
            )
        )[fold]
        np.testing.assert_array_equal(test, expected[1])
    # no groups, no cv: the stratified k-fold of before (unit ids and resume unchanged)
    old = list(StratifiedKFold(3, shuffle=True, random_state=0).split(np.zeros(40), y))
    ours = [test for _, _, _, test in splits(y, "classification", 3, 1, 0)]
    assert all(np.array_equal(a, b[1]) for a, b in zip(ours, old, strict=True))


def test_a_splitter_object_is_recorded_by_name_and_a_rerun_rebuilds_it():
    config = BenchConfig(cv=GroupKFold(n_splits=3))
    payload = json.loads(json.dumps(config_to_json(config)))
    assert payload["cv"] == "group_kfold"
    assert payload["cv_params"] == {"n_splits": 3, "shuffle": False, "random_state": None}
    again = config_from_json(payload)
    assert again.cv == "group_kfold" and again.cv_params["n_splits"] == 3
    y = np.arange(12) % 2
    groups = np.repeat(np.arange(6), 2)
    a = splits(y, "classification", 5, 1, 0, groups=groups, cv=config.cv)
    b = splits(y, "classification", 5, 1, 0, groups=groups, cv=again.cv, cv_params=again.cv_params)
    assert all(np.array_equal(p[3], q[3]) for p, q in zip(a, b, strict=True)) and len(a) == 3


def test_a_class_that_is_not_registered_is_recorded_for_the_reader_and_refused_on_rerun():
    from fusekit.bench.manifest import ManifestError

    class Halves(GroupKFold):
        pass

    payload = json.loads(json.dumps(config_to_json(BenchConfig(cv=Halves(2)))))
    assert payload["cv"]["class"].endswith("Halves")
    with pytest.raises(ManifestError, match="never imports code"):
        config_from_json(payload)


def test_bad_protocols_say_what_is_wrong():
    y = np.arange(12) % 2
    with pytest.raises(ValueError, match="splits by groups: pass groups="):
        splits(y, "classification", 3, 1, 0, cv="group_kfold")
    with pytest.raises(ValueError, match="no randomness"):
        splits(y, "classification", 3, 2, 0, groups=np.arange(12), cv="leave_one_group_out")
    from fusekit.bench.splitters import check_cv

    with pytest.raises(ValueError, match="one of"):
        check_cv("loso", {})
    with pytest.raises(ValueError, match="not parameters of group_kfold"):
        check_cv("group_kfold", {"test_size": 0.2})


def test_groups_column_of_a_file(tmp_path):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "a__0": rng.normal(size=20),
            "b__0": rng.normal(size=20),
            "subject": np.repeat(["s1", "s2", "s3", "s4"], 5),
            "label": np.arange(20) % 2,
        }
    )
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    data = load_file(path, "label", groups="subject")
    assert list(data.X) == ["a", "b"] and list(data.groups[:6]) == ["s1"] * 5 + ["s2"]
    # the groups decide the splits: they are part of the checksum that keys resume
    assert data.fingerprint != from_arrays("d.csv", data.X, data.y, {}).fingerprint
    with pytest.raises(ValueError, match="groups column 'who'"):
        load_file(path, "label", groups="who")


def test_step_budget_gives_every_fold_the_same_number_of_updates():
    # 53 rows at batch 64: 1 step per epoch; 1333 rows: 21 steps per epoch
    assert epochs_for(150, 53, 64) == 150 and epochs_for(150, 1333, 64) == 8
    assert epochs_for(150, 1333, 16) == 2  # 84 steps per epoch
    assert epochs_for(1, 10, None) == 1
    rng = np.random.default_rng(0)
    X = {"a": rng.normal(size=(30, 2)), "b": rng.normal(size=(30, 2))}
    data = from_arrays("d", X, np.arange(30) % 2, {})
    units = plan(
        BenchConfig(datasets=(), folds=3, batch_size=8, budget_steps=10, references=False), [data]
    )
    # 20 training rows in batches of 8: 3 steps per epoch, 4 epochs reach 10 steps
    assert [u.params["max_epochs"] for u in units] == [4, 4, 4]


def test_a_grouped_bench_runs_end_to_end_with_its_protocol_recorded(tmp_path, toy, tiny):
    X, y = toy
    groups = np.repeat(np.arange(12), 5)
    result = run_bench(out_dir=tmp_path, data={"toy": (X, y, groups)}, quiet=True, **tiny)
    assert (result.results["status"] == "ok").all()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["config"]["cv"] is None  # the default: grouped because of the groups
    assert "grouped by the given groups" in (tmp_path / "report.html").read_text()
    for _, _, train, test in splits(y, "classification", 2, 1, 0, groups=groups):
        assert not set(groups[train]) & set(groups[test])
    tested = result.results.groupby("fold")["n_test"].first()
    # the same grouped folds as groups= beside the data (resumed: identical unit ids)
    again = run_bench(out_dir=tmp_path, data={"toy": (X, y)}, groups=groups, quiet=True, **tiny)
    assert again.n_run == 0 and again.n_skipped == len(result.results["unit_id"].unique())
    assert (again.results.groupby("fold")["n_test"].first() == tested).all()
