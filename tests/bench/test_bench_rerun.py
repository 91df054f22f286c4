"""manifest.json and ``fusekit bench --rerun``: a run repeated from its record gives its scores."""

import json

import numpy as np
import pandas as pd
import pytest

from fusekit.bench import Sweep, run_bench
from fusekit.bench.manifest import MANIFEST
from fusekit.cli import main


@pytest.fixture
def csv_data(tmp_path, toy):
    X, y = toy
    frame = pd.DataFrame(
        np.hstack([X["audio"], X["video"]]),
        columns=[f"audio__{i}" for i in range(4)] + [f"video__{i}" for i in range(3)],
    )
    frame["label"] = y
    path = tmp_path / "toy.csv"
    frame.to_csv(path, index=False)
    return path


def test_rerun_reproduces_results_csv_scores_exactly(tmp_path, csv_data, tiny):
    first = tmp_path / "first"
    result = run_bench(
        out_dir=first,
        quiet=True,
        backend="serial",
        **{
            **tiny,
            "datasets": [str(csv_data)],
            "target": "label",
            "fusion": ["concat", "late"],
            "references": True,
            "sweeps": [Sweep("gaussian", levels=(0.0, 1.0))],
            "missing": True,
        },
    )
    manifest = json.loads((first / MANIFEST).read_text())
    assert manifest["environment"]["fusekit"]
    assert {"torch", "scikit-learn", "numpy"} <= set(manifest["environment"]["libraries"])
    assert manifest["config"]["fusion"] == ["concat", "late"]
    assert manifest["seeds"]["folds"] == 2 and manifest["data"][0]["checksum"]
    assert manifest["environment"]["plugins"]  # the plugin distributions with their versions
    assert manifest["command"] and manifest["run"]["backend"] == "serial"
    assert main(["bench", "--rerun", str(first), "--backend", "serial", "--quiet"]) == 0
    keys = ["unit_id", "scenario", "corruption", "modality", "level"]
    before = pd.read_csv(first / "results.csv").sort_values(keys, ignore_index=True)
    after = pd.read_csv(first / "rerun" / "results.csv").sort_values(keys, ignore_index=True)
    assert len(before) == len(result.results) and len(after) == len(before)
    pd.testing.assert_frame_equal(before[keys], after[keys])
    np.testing.assert_array_equal(before["score"].to_numpy(), after["score"].to_numpy())


def test_rerun_of_in_memory_data_says_why_not(tmp_path, toy, tiny, capsys):
    run_bench(out_dir=tmp_path, data={"toy": toy}, quiet=True, backend="serial", **tiny)
    assert main(["bench", "--rerun", str(tmp_path), "--quiet"]) == 2
    assert "in-memory data ['toy']" in capsys.readouterr().err


def test_in_memory_data_alone_does_not_add_the_default_data_set(tmp_path, toy):
    result = run_bench(
        out_dir=tmp_path,
        data={"toy": toy},
        quiet=True,
        backend="serial",
        max_epochs=1,
        folds=2,
        references=False,
    )
    assert set(result.results["dataset"]) == {"toy"}


def test_partial_nan_cell_names_the_files_line(tmp_path, csv_data):
    from fusekit.bench.data import load_file

    frame = pd.read_csv(csv_data)
    frame.loc[41, "video__1"] = np.nan  # data row 41: line 43 of the file (header is line 1)
    frame.to_csv(csv_data, index=False)
    with pytest.raises(
        ValueError, match=r"modality 'video' has NaN in part of 1 rows \(lines \[43\]"
    ):
        load_file(csv_data, "label")
    assert pd.read_csv(csv_data, skiprows=range(1, 42), nrows=1)["video__1"].isna().all()
