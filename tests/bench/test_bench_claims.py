"""Paired differences and claim verdicts of the reproduction scripts (fusekit.bench.claims)."""

import numpy as np
import pytest
from scipy import stats

from fusekit.bench.claims import (
    claim_cells,
    claim_verdict,
    machine_line,
    mean_std,
    paired_difference,
    write_report,
)


def test_interval_is_scipys_one_sample_t_interval():
    diffs = np.array([0.012, -0.004, 0.020, 0.007, 0.015])
    mean, std, low, high = paired_difference(diffs)
    reference = stats.ttest_1samp(diffs, 0.0).confidence_interval(0.95)
    assert mean == pytest.approx(0.01) and std == pytest.approx(np.std(diffs, ddof=1))
    assert (low, high) == pytest.approx((reference.low, reference.high), rel=1e-12)


@pytest.mark.parametrize(
    ("low", "high", "sign", "expected"),
    [
        (0.002, 0.03, 1, "holds"),
        (-0.03, -0.002, 1, "does not hold"),  # the other side of 0
        (-0.005, 0.008, 1, "does not hold"),  # within ±0.01: no effect worth the name
        (-0.02, 0.03, 1, "inconclusive"),
        (-0.03, -0.002, -1, "holds"),  # the claim is d < 0
        (0.002, 0.03, -1, "does not hold"),
        (0.002, 0.009, 1, "does not hold"),  # above 0 but negligible: the margin comes first
        (-0.009, -0.002, -1, "does not hold"),
        (0.002, 0.011, 1, "holds"),  # reaches beyond the margin
    ],
)
def test_verdicts(low, high, sign, expected):
    assert claim_verdict(low, high, sign) == expected


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="n >= 2"):
        paired_difference(np.array([0.1]))
    with pytest.raises(ValueError, match="sign must be"):
        claim_verdict(0.0, 1.0, sign=0)


def test_claim_cells_format_the_row_of_a_report():
    """mean ± std | 95 % interval | seeds with d > 0 | verdict, from scipy's t interval."""
    diffs = np.array([0.02, 0.03, 0.025, 0.04])
    interval = stats.t.interval(0.95, 3, loc=diffs.mean(), scale=stats.sem(diffs))
    expected = (
        f"+0.029 ± {np.std(diffs, ddof=1):.3f} | [{interval[0]:+.3f}, {interval[1]:+.3f}] | "
        "4/4 | holds"
    )
    assert claim_cells(diffs) == expected
    assert claim_cells(-diffs, sign=-1).endswith("| 0/4 | holds")


def test_report_helpers(tmp_path, capsys):
    assert mean_std([0.5, 0.7]) == f"0.600 ± {np.std([0.5, 0.7], ddof=1):.3f}"  # sample std 0.141
    assert mean_std([0.5, 0.7]) == "0.600 ± 0.141"
    line = machine_line()
    assert line.startswith("machine: ") and "cores, torch " in line and "python " in line
    write_report("# r\n", tmp_path / "r.md")
    assert (tmp_path / "r.md").read_text() == "# r\n" and capsys.readouterr().out == "# r\n\n"
    write_report("# s\n", None)
    assert not (tmp_path / "s.md").exists()
