"""A configuration that raises is recorded with its error; the others complete; resume."""

import pandas as pd
import pytest

from fusekit.bench import run_bench
from fusekit.builtin.concat_fusion import ConcatFusion


class ExplodingFusion(ConcatFusion):
    """Fails at build time, like a broken plugin would."""

    def build(self, spec):
        raise RuntimeError("boom: this fusion is broken")


def test_failing_configuration_is_recorded_and_the_others_complete(tmp_path, toy, tiny):
    result = run_bench(
        out_dir=tmp_path,
        data={"toy": toy},
        quiet=True,
        backend="serial",
        fusion=["concat", ExplodingFusion, "late"],
        **tiny,
    )
    frame = pd.read_csv(tmp_path / "results.csv", keep_default_na=False)
    broken = frame[frame["fusion"] == "ExplodingFusion"]
    assert len(broken) == 2 and (broken["status"] == "error").all()
    assert broken["error"].str.contains("RuntimeError: boom: this fusion is broken").all()
    healthy = frame[frame["fusion"] != "ExplodingFusion"]
    assert set(healthy["fusion"]) == {"concat", "late"}  # the one after the failure ran too
    assert (healthy["status"] == "ok").all() and len(healthy) == 4
    assert "boom" in result.report.read_text() and "boom" in result.leaderboard
    assert set(result.summary.dropna(subset=["mean"])["fusion"]) == {"concat", "late"}


def test_resume_skips_finished_units_and_reruns_the_rest(tmp_path, toy, tiny):
    settings = {
        "out_dir": tmp_path,
        "data": {"toy": toy},
        "quiet": True,
        "backend": "serial",
        "fusion": ["concat", ExplodingFusion, "late"],
        **tiny,
    }
    first = run_bench(**settings)
    assert first.n_run == 6
    again = run_bench(**settings)
    assert again.n_run == 2  # only the failed units are retried
    assert again.n_skipped == 4
    # an interrupted run: keep the first unit's rows only
    frame = pd.read_csv(tmp_path / "results.csv", keep_default_na=False)
    frame[frame["unit_id"] == frame["unit_id"].iloc[0]].to_csv(
        tmp_path / "results.csv", index=False
    )
    resumed = run_bench(**settings)
    assert resumed.n_run == 5 and resumed.n_skipped == 1
    final = pd.read_csv(tmp_path / "results.csv")
    assert final["unit_id"].is_unique  # one clean row per unit: nothing duplicated
    clean_first = first.results[first.results["status"] == "ok"]["score"].to_numpy()
    clean_final = final[final["status"] == "ok"]["score"].to_numpy()
    assert (clean_first == clean_final).all()  # same seeds, same numbers
    fresh = run_bench(**{**settings, "resume": False})
    assert fresh.n_run == 6


def test_interrupted_run_keeps_finished_units_and_resume_completes_it(
    tmp_path, toy, tiny, monkeypatch
):
    import fusekit.bench.backends as backends

    real_run_unit = backends.run_unit
    calls = []

    def dies_on_third_unit(unit, X, y):
        calls.append(unit.unit_id)
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C (or a killed job) in the middle of the run
        return real_run_unit(unit, X, y)

    settings = {
        "out_dir": tmp_path,
        "data": {"toy": toy},
        "quiet": True,
        "backend": "serial",
        "fusion": ["concat", "late", "mean"],
        **tiny,
    }
    monkeypatch.setattr(backends, "run_unit", dies_on_third_unit)
    with pytest.raises(KeyboardInterrupt, match="2 of 6 units are finished and saved"):
        run_bench(**settings)  # a BenchInterrupted, which is a KeyboardInterrupt
    saved = pd.read_csv(tmp_path / "results.csv")
    assert list(saved["unit_id"]) == calls[:2]  # the two finished units are on disk
    monkeypatch.setattr(backends, "run_unit", real_run_unit)
    resumed = run_bench(**settings)
    assert resumed.n_skipped == 2 and resumed.n_run == 4
    assert len(pd.read_csv(tmp_path / "results.csv")) == 6
