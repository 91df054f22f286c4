"""``manifest.json`` is data: a rerun never imports code named in it, never sends the data where
the file says, and a malformed file is refused before anything runs, naming the file and key."""

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fusekit.bench.api as bench_api
from fusekit.bench import BenchConfig
from fusekit.bench.api import rerun
from fusekit.bench.backends import execute
from fusekit.bench.data import load_file
from fusekit.bench.manifest import (
    MANIFEST,
    IgnoredRunSettings,
    ManifestError,
    read_manifest,
    write_manifest,
)
from fusekit.builtin.concat_fusion import ConcatFusion
from fusekit.cli import main
from fusekit.datasets import make_multimodal_classification

MARKER = "imported.marker"
#: A module that, if fusekit ever imported it, would leave a marker file and define a "fusion".
PLANTED = f"""
from pathlib import Path
Path(__file__).with_name({MARKER!r}).write_text("this module ran")
from fusekit.builtin.concat_fusion import ConcatFusion as Planted
"""
SETTINGS = {"max_epochs": 1, "folds": 2, "batch_size": 32, "references": False}


class Unregistered(ConcatFusion):
    """A fusion passed as a class and registered nowhere."""


@pytest.fixture
def run_dir(tmp_path):
    """A bench directory with a valid manifest of a tiny CSV run (no fit needed to write it)."""
    X, y = make_multimodal_classification(
        n_samples=24, n_features=[3, 2], n_classes=2, names=["a", "b"], random_state=0
    )
    frame = pd.DataFrame(
        np.hstack([X["a"], X["b"]]), columns=["a__0", "a__1", "a__2", "b__0", "b__1"]
    )
    frame["label"] = y
    csv = tmp_path / "toy.csv"
    frame.to_csv(csv, index=False)
    config = BenchConfig(datasets=(str(csv),), target="label", **SETTINGS)
    directory = tmp_path / "run"
    directory.mkdir()
    data = [load_file(csv, "label")]
    write_manifest(directory, config, data, {"backend": "serial", "n_jobs": 1, "scheduler": None})
    return directory


def _edit(run_dir: Path, change) -> Path:
    path = run_dir / MANIFEST
    payload = json.loads(path.read_text())
    change(payload)
    path.write_text(json.dumps(payload))
    return path


def _plant(run_dir: Path) -> None:
    (run_dir / "planted_fusion.py").write_text(PLANTED)
    _edit(run_dir, lambda m: m["config"].update(fusion=[{"class": "planted_fusion:Planted"}]))


def test_rerun_refuses_a_class_in_the_manifest_and_never_imports_it(run_dir, monkeypatch):
    _plant(run_dir)
    monkeypatch.syspath_prepend(str(run_dir))  # as under `python -m` run from that folder
    with pytest.raises(ManifestError, match=r"config\.fusion\[0\] records the class") as caught:
        rerun(run_dir, quiet=True)
    message = str(caught.value)
    assert str(run_dir / MANIFEST) in message and "planted_fusion:Planted" in message
    assert "--rerun DIR --fusion NAME" in message and "rerun(DIR, fusion=[...])" in message
    assert not (run_dir / MARKER).exists()
    assert "planted_fusion" not in sys.modules


def test_python_m_rerun_beside_a_planted_module_refuses_and_runs_nothing(run_dir):
    _plant(run_dir)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    completed = subprocess.run(
        [sys.executable, "-m", "fusekit", "bench", "--rerun", ".", "--quiet"],
        cwd=run_dir,  # `python -m` puts the working folder first on sys.path
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 2, completed.stderr
    assert "records the class 'planted_fusion:Planted'" in completed.stderr
    assert not (run_dir / MARKER).exists()
    assert not (run_dir / "rerun" / "results.csv").exists()


def test_a_recorded_class_can_be_given_back_in_python(run_dir, monkeypatch, tmp_path):
    _plant(run_dir)
    seen = []
    monkeypatch.setattr(bench_api, "execute", _serial_recording(seen))
    result = rerun(run_dir, tmp_path / "again", backend="serial", quiet=True, fusion=[Unregistered])
    assert set(result.results["fusion"]) == {"Unregistered"}
    assert not (run_dir / MARKER).exists()


def test_a_recorded_class_can_be_replaced_by_a_plugin_name_on_the_command_line(
    run_dir, monkeypatch, tmp_path
):
    _plant(run_dir)
    monkeypatch.setattr(bench_api, "execute", _serial_recording([]))
    out = tmp_path / "again"
    argv = ["bench", "--rerun", str(run_dir), "--fusion", "late", "--out", str(out), "--quiet"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IgnoredRunSettings)
        assert main([*argv, "--backend", "serial"]) == 0
    assert set(pd.read_csv(out / "results.csv")["fusion"]) == {"late"}
    assert not (run_dir / MARKER).exists()


def test_manifest_records_registered_classes_by_name_and_others_as_inert_records(tmp_path):
    config = BenchConfig(datasets=(), fusion=[ConcatFusion, Unregistered, "late"])
    path = write_manifest(
        tmp_path, config, [], {"backend": "serial", "n_jobs": 1, "scheduler": None}
    )
    recorded = json.loads(path.read_text())["config"]["fusion"]
    assert recorded[0] == "concat" and recorded[2] == "late"
    assert recorded[1] == {"class": f"{__name__}:Unregistered"}


def _serial_recording(seen: list):
    """``execute`` that records where it was asked to run, then runs serially in-process."""

    def fake(todo, arrays, on_result, **backend):
        seen.append(backend)
        return execute(todo, arrays, on_result, backend="serial", n_jobs=1, scheduler=None)

    return fake


def test_recorded_scheduler_and_backend_are_ignored_and_named(run_dir, monkeypatch, tmp_path):
    remote = "tcp://203.0.113.9:8786"
    _edit(run_dir, lambda m: m["run"].update(backend="dask", n_jobs=8, scheduler=remote))
    seen = []
    monkeypatch.setattr(bench_api, "execute", _serial_recording(seen))
    with pytest.warns(IgnoredRunSettings, match=r"not the recorded .*tcp://203\.0\.113\.9") as w:
        assert (
            main(["bench", "--rerun", str(run_dir), "--out", str(tmp_path / "o"), "--quiet"]) == 0
        )
    assert seen == [{"backend": "processes", "n_jobs": 1, "scheduler": None}]
    assert "--scheduler" in str(w[0].message) and str(run_dir / MANIFEST) in str(w[0].message)


def test_where_a_rerun_runs_comes_from_its_flags(run_dir, monkeypatch, tmp_path):
    _edit(run_dir, lambda m: m["run"].update(backend="dask", scheduler="tcp://203.0.113.9:8786"))
    seen = []
    monkeypatch.setattr(bench_api, "execute", _serial_recording(seen))
    mine = "tcp://127.0.0.1:8786"
    argv = ["bench", "--rerun", str(run_dir), "--out", str(tmp_path / "o"), "--quiet"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IgnoredRunSettings)
        assert main([*argv, "--backend", "dask", "--n-jobs", "2", "--scheduler", mine]) == 0
    assert seen == [{"backend": "dask", "n_jobs": 2, "scheduler": mine}]


def test_rerun_with_the_recorded_settings_given_warns_nothing(run_dir, monkeypatch, tmp_path):
    monkeypatch.setattr(bench_api, "execute", _serial_recording([]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", IgnoredRunSettings)
        rerun(run_dir, tmp_path / "o", backend="serial", quiet=True)


def _set(path: list, value):
    def change(payload):
        target = payload
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


MALFORMED = [
    (_set(["config", "folds"], "3"), r"config\.folds must be an integer, got the string '3'"),
    (_set(["run", "n_jobs"], True), r"run\.n_jobs must be an integer, got the boolean True"),
    (
        _set(
            ["config", "sweeps"], [{"corruption": "gaussian", "modalities": None, "levels": "hi"}]
        ),
        r"config\.sweeps\[0\]\.levels must be a list \(each item a number\) or null, got the "
        r"string 'hi'",
    ),
    (lambda m: m.pop("config"), r"has no key 'config'"),
    (lambda m: m["config"].pop("seed"), r"config has no key 'seed'"),
    (lambda m: m["config"].update(fold=3), r"config has unknown keys \['fold'\]"),
    (_set(["config", "fusion"], [3]), r"config\.fusion\[0\] must be a string or an object"),
    (_set(["data"], {"name": "x"}), r"data must be a list .*, got an object"),
    (_set(["config", "folds"], 1), r"config: folds must be an integer >= 2, got 1"),
]


@pytest.mark.parametrize(("change", "expected"), MALFORMED)
def test_malformed_manifest_is_refused_naming_file_key_expected_and_got(
    run_dir, monkeypatch, change, expected
):
    path = _edit(run_dir, change)
    ran = []
    monkeypatch.setattr(bench_api, "run_bench", lambda *a, **k: ran.append(1))
    with pytest.raises(ManifestError, match=expected) as caught:
        rerun(run_dir, quiet=True)
    assert str(path) in str(caught.value)
    assert not ran


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"environment": {', r"is not valid JSON: Expecting property name .* line 1, column 18"),
        ('{"config": NaN}', r"is not valid JSON: NaN is not a JSON number"),
        ("[1, 2]", r"the file must be an object with keys \['command', 'config'"),
    ],
)
def test_manifest_that_is_not_a_json_object_names_the_file(run_dir, text, expected):
    (run_dir / MANIFEST).write_text(text)
    with pytest.raises(ManifestError, match=expected) as caught:
        read_manifest(run_dir)
    assert str(run_dir / MANIFEST) in str(caught.value)


def test_oversized_manifest_is_refused_before_it_is_read(run_dir, monkeypatch):
    import fusekit.bench.manifest as manifest

    monkeypatch.setattr(manifest, "MAX_MANIFEST_BYTES", 64)
    with pytest.raises(ManifestError, match=r"manifest\.json is \d+ bytes; .* at most 64 bytes"):
        read_manifest(run_dir)


def test_cli_reports_a_malformed_manifest_with_exit_code_2(run_dir, capsys):
    _edit(run_dir, _set(["config", "folds"], "3"))
    assert main(["bench", "--rerun", str(run_dir), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "config.folds must be an integer" in err and str(run_dir / MANIFEST) in err
    assert not (run_dir / "rerun").exists()
