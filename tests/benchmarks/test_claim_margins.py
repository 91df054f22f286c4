"""The claims reports judge each claim with a margin from the paper's own effect size (half its
gain) and state the power: checked against the papers' tables, typed in here from the specs, and
against statsmodels' power computation."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import provenance  # noqa: E402
from repo_scripts import load_script  # noqa: E402

statsmodels_power = pytest.importorskip("statsmodels.stats.power")


def _row(text: str, *cells: str) -> list[str]:
    rows = [line for line in text.splitlines() if all(f"| {c} |" in line for c in cells)]
    assert len(rows) == 1, f"expected one row with {cells}, got {rows}"
    return [c.strip() for c in rows[0].strip("|").split("|")]


def test_udml_gains_are_the_smaller_of_the_papers_two_data_sets():
    """UDML − QMF, Table 3 (accuracy %): MVSA-Single and CREMA-D."""
    table3 = load_script("plugins/fusekit-udml/benchmarks/table3_seeds.py")
    udml = {"clean": (80.79, 70.02), "salt 5": (78.26, 68.32), "salt 10": (64.52, 64.48)}
    udml |= {"gaussian 5": (77.87, 67.53), "gaussian 10": (63.62, 62.96)}
    qmf = {"clean": (78.07, 66.92), "salt 5": (73.90, 59.56), "salt 10": (60.41, 55.45)}
    qmf |= {"gaussian 5": (73.85, 58.03), "gaussian 10": (61.28, 54.21)}
    for condition, gain in table3.PAPER_GAIN.items():
        paper_level = min(condition[1], 10)  # ε 20 and 40 borrow ε = 10's gain
        key = "clean" if condition[0] == "clean" else f"{condition[0]} {paper_level}"
        expected = min(u - q for u, q in zip(udml[key], qmf[key], strict=True)) / 100
        assert gain == pytest.approx(expected, abs=5e-4), condition


def test_btw_report_judges_mae_with_half_the_papers_gain():
    """Baseline MAE 0.5, btw_local better by 0.009 ± 0.0005 on 5 seeds: its interval is above 0
    and beyond half the paper's −2.9 % (0.0071), so it holds; the old fixed ±0.01 said "does not
    hold". Its detectable effect is statsmodels' at the measured spread."""
    btw_seeds = load_script("plugins/fusekit-btw/benchmarks/btw_seeds.py")
    name = "synthetic"
    gain_local = np.array([0.0085, 0.009, 0.0095, 0.0088, 0.0092])
    scores = {
        (name, "none"): [0.5] * 5,
        (name, "btw_local"): list(0.5 - gain_local),
        (name, "btw"): [0.5, 0.51, 0.49, 0.5, 0.5],
    }
    args = type("Args", (), {"seeds": 5, "epochs": 1})()
    text = btw_seeds.report(scores, {name: ("MAE", False)}, args, 0.0, provenance.Records())
    cells = _row(text, name, "btw_local (MAE)")
    margin, detectable, needed, verdict = cells[6:10]
    assert float(margin) == pytest.approx(0.5 * 0.5 * (0.735 - 0.714) / 0.735, abs=1e-4)
    assert verdict == "holds"
    sd = gain_local.std(ddof=1)
    expected = statsmodels_power.TTestPower().solve_power(nobs=5, alpha=0.05, power=0.8) * sd
    assert float(detectable) == pytest.approx(expected, abs=6e-4)
    assert int(needed) == 2  # the paper's gain is many times this spread


def test_udml_report_row_carries_margin_and_power():
    """One condition where udml beats qmf by 0.03 ± ~0.01 on 10 seeds: margin half of the
    paper's 0.023 at Gaussian ε = 10, the interval above it: holds."""
    table3 = load_script("plugins/fusekit-udml/benchmarks/table3_seeds.py")
    rng = np.random.default_rng(0)
    scores = {}
    for weighting in table3.WEIGHTINGS:
        for condition in table3.CONDITIONS:
            scores[(weighting, table3.name(condition))] = list(0.9 + rng.normal(0, 1e-3, 10))
    gain = 0.03 + rng.normal(0, 0.01, 10)
    scores[("qmf", "gaussian ε=10")] = list(np.array(scores[("udml", "gaussian ε=10")]) - gain)
    text = table3.report(scores, 10, 1, 0.0, provenance.Records())
    cells = _row(text, "gaussian ε=10", "qmf")
    assert cells[5:7] == ["0.023", "0.0115"]
    diffs = np.array(scores[("udml", "gaussian ε=10")]) - scores[("qmf", "gaussian ε=10")]
    expected = statsmodels_power.TTestPower().solve_power(nobs=10, alpha=0.05, power=0.8)
    assert float(cells[7]) == pytest.approx(expected * diffs.std(ddof=1), abs=6e-4)
    assert cells[9] == "holds"
