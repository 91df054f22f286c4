"""The MWAM missing-modality and VGMR reproduction reports, built from hand-made runs: the
cells are the means / population stds and movement ratios worked out by hand, each MWAM row's
movement is read against its own w = 1 control, and the files carry the provenance header and
raw records that tests/benchmarks/test_reproduce.py reads back."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import provenance  # noqa: E402
from repo_scripts import load_script  # noqa: E402


def _cells(lines: list[str], *first: str) -> list[str]:
    prefix = "| " + " | ".join(first) + " |"
    rows = [line for line in lines if line.startswith(prefix)]
    assert len(rows) == 1, f"expected one row starting {prefix}, got {rows}"
    return [c.strip() for c in rows[0].strip("|").split("|")][len(first) :]


def _mwam_run(full, without_a, without_b, moved=None, weights=None) -> dict[str, float]:
    run = {"full": full, "without_a": without_a, "without_b": without_b}
    run["mean_drop"] = ((full - without_a) + (full - without_b)) / 2
    if moved is not None:
        run |= {"moved_a": moved[0], "moved_b": moved[1]}
    if weights is not None:
        run |= {"w_a": weights[0], "w_b": weights[1]}
    return run


def test_missing_modality_tables_and_movement_against_each_rows_control():
    module = load_script("plugins/fusekit-mwam/benchmarks/missing_modality.py")
    args = argparse.Namespace(
        folds=2, epochs=3, seed=0, optimizers=["sgd"], weightings=list(module.WEIGHTINGS)
    )
    results = {
        (0, "sgd", "none"): _mwam_run(1.0, 0.5, 0.75, moved=(2.0, 4.0)),
        (1, "sgd", "none"): _mwam_run(0.5, 0.25, 0.5),
        (0, "sgd", "mwam"): _mwam_run(1.0, 1.0, 1.0, moved=(3.0, 2.0), weights=(1.5, 0.5)),
        (1, "sgd", "mwam"): _mwam_run(1.0, 1.0, 1.0),
        (0, "sgd", "mwam_both"): _mwam_run(1.0, 1.0, 1.0, moved=(2.0, 1.0), weights=(1.2, 0.8)),
        (1, "sgd", "mwam_both"): _mwam_run(1.0, 1.0, 1.0),
        (0, "sgd", "unimodal_aux"): _mwam_run(1.0, 1.0, 1.0, moved=(4.0, 4.0)),
        (1, "sgd", "unimodal_aux"): _mwam_run(1.0, 1.0, 1.0),
    }
    lines = module.tables("basic_motions", ["a", "b"], args, results)
    # full 1.0, 0.5: mean 0.75, population std 0.25; drops (0.375, 0.125): 0.25 ± 0.125
    assert _cells(lines, "sgd", "none") == [
        "0.750 ± 0.250",
        "0.375 ± 0.125",
        "0.625 ± 0.125",
        "0.250 ± 0.125",
    ]
    # mwam against none (3 / 2, 2 / 4); mwam_both against unimodal_aux (2 / 4, 1 / 4), not none
    assert _cells(lines, "sgd", "mwam", "none") == ["w̄ 1.50, moved ×1.50", "w̄ 0.50, moved ×0.50"]
    assert _cells(lines, "sgd", "mwam_both", "unimodal_aux") == [
        "w̄ 1.20, moved ×0.50",
        "w̄ 0.80, moved ×0.25",
    ]


def test_missing_modality_report_has_header_protocol_and_records():
    module = load_script("plugins/fusekit-mwam/benchmarks/missing_modality.py")
    args = argparse.Namespace(
        datasets=["basic_motions"],
        folds=5,
        epochs=20,
        seed=0,
        optimizers=["sgd"],
        weightings=["none"],
    )
    records = provenance.Records()
    config = {"dataset": "basic_motions", "fold": 0, "optimizer": "sgd", "weighting": "none"}
    records.add(config, full=1.0, without_a=0.25)
    text = module.report([["### basic_motions"]], {"basic_motions": 72.0}, args, records)
    assert "this file is written entirely by `missing_modality.py`" in text.lower()
    assert "stratified 5-fold CV, seed 0, 20 epochs" in text
    for key in ("commit: ", "command: python ", "versions: ", "machine: "):
        assert f"\n{key}" in text, key
    assert provenance.parse_records(text) == [
        "dataset=basic_motions fold=0 optimizer=sgd weighting=none full=1.000000 without_a=0.250000"
    ]


def test_vgmr_reproduction_report_has_header_table_and_records():
    module = load_script("plugins/fusekit-vgmr/benchmarks/reproduce.py")
    scores = {
        (dataset, model, sigma): [1.0, 0.5]
        for dataset in module.DATASETS
        for model in module.MODELS
        for sigma in module.SIGMAS
    }
    records = provenance.Records()
    records.add({"dataset": "basic_motions", "fold": 0, "model": "concat"}, acc_0=1.0)
    text = module.report(scores, 2, 12.0, records)
    assert "this file is written entirely by `reproduce.py`" in text.lower()
    assert text.startswith("# VGMR reproduction") and "2-fold stratified CV" in text
    for key in ("commit: ", "command: python ", "versions: ", "machine: "):
        assert f"\n{key}" in text, key
    assert "| basic_motions (gyroscope) | concat | 0.750 ± 0.250 |" in text
    assert provenance.parse_records(text) == [
        "dataset=basic_motions fold=0 model=concat acc_0=1.000000"
    ]
