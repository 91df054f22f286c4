"""``results.csv`` as data: resume reruns incomplete or duplicated units, a damaged file is an error
naming it (and is left as it was), formula-like names are neutralised on disk and round-trip,
``--out`` naming a file and failed units give exit codes."""

import csv

import pandas as pd
import pytest
import torch

from fusekit.bench import run_bench
from fusekit.bench.runner import COLUMNS
from fusekit.bench.store import ResultsFileError, ResultStore, escape_cell, unescape_cell
from fusekit.cli import main
from fusekit.datasets import make_multimodal_classification

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def toy():
    return make_multimodal_classification(
        n_samples=60, n_features=[4, 3], n_classes=3, names=["audio", "video"], random_state=0
    )


def _bench(out, data, **extra):
    settings = {
        "out_dir": out,
        "data": data,
        "datasets": (),
        "quiet": True,
        "backend": "serial",
        "fusion": ["concat"],
        "folds": 2,
        "max_epochs": 2,
        "batch_size": 32,
        "references": False,
        "missing": True,  # four rows per unit: clean, both removed, each one removed
    }
    return run_bench(**{**settings, **extra})


@pytest.fixture(scope="module")
def finished(tmp_path_factory, toy):
    """A finished two-unit bench: its directory and results.csv's text."""
    out = tmp_path_factory.mktemp("finished")
    _bench(out, {"toy": toy})
    return out, (out / "results.csv").read_text()


def _copy(finished, tmp_path):
    out, text = finished
    (tmp_path / "results.csv").write_text(text)
    return pd.read_csv(tmp_path / "results.csv")


def _unit_rows(frame):
    return frame.groupby("unit_id").size().to_dict()


def test_a_unit_with_a_deleted_row_is_rerun(finished, tmp_path, toy):
    frame = _copy(finished, tmp_path)
    first = frame["unit_id"].iloc[0]
    lost = frame.index[(frame["unit_id"] == first) & (frame["scenario"] == "missing")][0]
    frame.drop(index=lost).to_csv(tmp_path / "results.csv", index=False)
    resumed = _bench(tmp_path, {"toy": toy})
    assert (resumed.n_run, resumed.n_skipped) == (1, 1)
    final = pd.read_csv(tmp_path / "results.csv")
    assert _unit_rows(final) == _unit_rows(frame)  # four rows each again
    assert final["score"].tolist() == frame["score"].tolist()  # the same seeds, the same numbers


def test_a_unit_with_duplicated_rows_is_rerun_and_counted_once(finished, tmp_path, toy):
    frame = _copy(finished, tmp_path)
    first = frame["unit_id"].iloc[0]
    twice = pd.concat([frame, frame[frame["unit_id"] == first]])  # as two benches would append
    twice.to_csv(tmp_path / "results.csv", index=False)
    resumed = _bench(tmp_path, {"toy": toy})
    assert (resumed.n_run, resumed.n_skipped) == (1, 1)
    final = pd.read_csv(tmp_path / "results.csv")
    assert not final.duplicated(["unit_id", "scenario", "modality"]).any()
    assert _unit_rows(final) == _unit_rows(frame)
    assert len(resumed.results) == 8
    assert resumed.summary["n"].tolist() == [2]  # the leaderboard counts each fold once


def _garble_score(lines):
    lines[2] = lines[2].replace(lines[2].split(",")[14], "abc", 1)


def _extra_field(lines):
    lines[3] = lines[3] + ",surplus"


def _second_header(lines):
    lines.insert(3, lines[0])  # two files concatenated


def _short_row(lines):
    lines[2] = ",".join(lines[2].split(",")[:10])


def _unknown_status(lines):
    lines[4] = lines[4].replace(",ok,", ",okay,", 1)


def _no_unit_id(lines):
    lines[5] = lines[5][lines[5].index(",") :]


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (_garble_score, "line 3: column 'score' holds 'abc', expected a number"),
        (_extra_field, f"line 4: has {len(COLUMNS) + 1} fields, the header has {len(COLUMNS)}"),
        (_second_header, "line 4: column 'repeat' holds 'repeat', expected a number"),
        (_short_row, f"line 3: has 10 fields, the header has {len(COLUMNS)}"),
        (_unknown_status, "line 5: holds 'okay', expected a unit id and a status"),
        (_no_unit_id, "line 6: holds an empty unit_id"),
    ],
    ids=["garbled-number", "extra-field", "second-header", "short-row", "status", "no-unit-id"],
)
def test_a_damaged_results_file_is_an_error_naming_it_and_is_left_as_it_was(
    finished, tmp_path, toy, damage, problem
):
    _, text = finished
    lines = text.splitlines()
    damage(lines)
    path = tmp_path / "results.csv"
    path.write_text("\n".join(lines) + "\n")
    before = path.read_bytes()
    with pytest.raises(ResultsFileError) as error:
        _bench(tmp_path, {"toy": toy})
    message = str(error.value)
    assert str(path) in message and problem in message
    assert "--no-resume" in message and "fresh --out" in message
    assert path.read_bytes() == before  # nothing on disk lost


def test_bytes_that_are_not_utf8_are_an_error_naming_the_file(finished, tmp_path, toy):
    _copy(finished, tmp_path)
    path = tmp_path / "results.csv"
    path.write_bytes(path.read_bytes() + b"\xff\xfe,\x00\n")
    with pytest.raises(ResultsFileError, match="is not UTF-8 text") as error:
        _bench(tmp_path, {"toy": toy})
    assert str(path) in str(error.value)


def test_a_damaged_results_file_is_exit_code_2_on_the_command_line(tmp_path, capsys):
    path = tmp_path / "results.csv"
    path.write_text(",".join(COLUMNS) + "\n" + ",".join(["x"] * len(COLUMNS)) + "\n")
    code = main(["bench", "--dataset", "mfeat:views=fou,kar", "--out", str(tmp_path), "--quiet"])
    assert code == 2
    assert f"{path}: line 2: column 'repeat' holds 'x'" in capsys.readouterr().err


def test_no_resume_starts_a_damaged_results_file_afresh(finished, tmp_path, toy):
    path = tmp_path / "results.csv"
    path.write_text("unit_id,score\n\xff garbage,,,\n")
    result = _bench(tmp_path, {"toy": toy}, resume=False)
    assert result.n_run == 2 and len(pd.read_csv(path)) == 8


def test_a_torn_last_line_is_dropped_and_its_unit_rerun(finished, tmp_path, toy):
    _, text = finished
    path = tmp_path / "results.csv"
    path.write_text(text[: len(text) - 40])  # an append cut short by a crash
    resumed = _bench(tmp_path, {"toy": toy})
    assert (resumed.n_run, resumed.n_skipped) == (1, 1)
    original, final = pd.read_csv(pd.io.common.StringIO(text)), pd.read_csv(path)
    assert _unit_rows(final) == _unit_rows(original)
    assert final["score"].tolist() == original["score"].tolist()


@pytest.mark.parametrize(
    "name", ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd", "'=quoted"]
)
def test_formula_like_text_is_quoted_and_round_trips(name):
    assert escape_cell(name) == "'" + name
    assert unescape_cell(escape_cell(name)) == name
    assert escape_cell("concat") == "concat" and escape_cell(-0.5) == -0.5


def test_formula_like_names_are_neutralised_on_disk_and_read_back(tmp_path):
    X, y = make_multimodal_classification(
        n_samples=60, n_features=[4, 3], n_classes=3, names=["@a", "-b"], random_state=0
    )
    result = _bench(tmp_path, {"=1+2": (X, y)}, metric="neg_log_loss")
    with open(tmp_path / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    dangerous = ("=", "+", "-", "@", "\t", "\r")
    text_cells = [row[c] for row in rows for c in ("dataset", "modality", "unit_id", "fusion")]
    assert not [cell for cell in text_cells if cell.startswith(dangerous)]
    assert {row["dataset"] for row in rows} == {"'=1+2"}
    assert {row["modality"] for row in rows} == {"", "'@a+-b", "'@a", "'-b"}
    scores = [float(row["score"]) for row in rows]  # negative numbers stay plain numbers
    assert all(score < 0 for score in scores) and not any(r["score"].startswith("'") for r in rows)
    read = ResultStore(tmp_path).read()
    assert set(read["dataset"]) == {"=1+2"} and set(result.results["dataset"]) == {"=1+2"}
    assert set(read["modality"].dropna()) == {"@a+-b", "@a", "-b"}
    again = _bench(tmp_path, {"=1+2": (X, y)}, metric="neg_log_loss")
    assert (again.n_run, again.n_skipped) == (0, 2)  # the unescaped rows are the finished units


def test_out_naming_a_file_is_exit_code_2_and_leaves_the_file(tmp_path, capsys):
    target = tmp_path / "report.txt"
    target.write_text("keep me")
    code = main(["bench", "--dataset", "mfeat", "--out", str(target), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert f"{str(target)!r} is a file, not a directory" in err and "Traceback" not in err
    assert target.read_text() == "keep me"
    with pytest.raises(NotADirectoryError, match="is a file, not a directory"):
        run_bench(out_dir=target / "sub", datasets=("mfeat",), quiet=True)


def test_a_bench_whose_every_unit_failed_exits_1_and_still_writes_the_leaderboard(tmp_path, capsys):
    data = tmp_path / "tiny.csv"
    X, y = make_multimodal_classification(
        n_samples=30, n_features=[2, 2], n_classes=2, names=["a", "b"], random_state=0
    )
    frame = pd.DataFrame({**{f"a__{i}": X["a"][:, i] for i in range(2)}, "b__0": X["b"][:, 0]})
    frame.assign(y=y).to_csv(data, index=False)
    out = tmp_path / "out"
    args = ["bench", "--data", str(data), "--target", "y", "--fusion", "concat"]
    args += ["--no-references", "--folds", "2", "--max-epochs", "1", "--param", "lr=-1"]
    code = main([*args, "--out", str(out), "--quiet"])
    assert code == 1
    assert "2 of 2 unit(s) failed" in capsys.readouterr().err
    assert (out / "leaderboard.md").is_file()
    assert (pd.read_csv(out / "results.csv")["status"] == "error").all()
