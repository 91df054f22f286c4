"""The presets' docstring quotes the learning-rate sweep's figures as its committed file has
them."""

from __future__ import annotations

import re
from pathlib import Path

import fusekit_scfae.presets as presets

SWEEP = Path(__file__).parents[1] / "benchmarks" / "lr_sweep.md"


def _row_means(label: str) -> list[float]:
    """The mean accuracy of each lr cell of the sweep table's row ``label``."""
    for line in SWEEP.read_text().splitlines():
        if line.startswith(f"| {label} |"):
            cells = line.strip("|").split("|")[1:-1]  # the lr cells, without the chosen lr
            return [float(cell.split("±")[0]) for cell in cells]
    raise AssertionError(f"no row {label!r} in {SWEEP}")


def test_the_undetached_mse_range_is_the_sweeps():
    text = " ".join(presets.__doc__.split())
    found = re.search(
        r"mean accuracy (\d\.\d\d)-(\d\.\d\d) over the swept lrs, against (\d\.\d\d)", text
    )
    assert found, "the docstring no longer quotes the sweep's range"
    low, high, detached = map(float, found.groups())
    undetached = _row_means("scfae_mse (no detach)")
    assert (low, high) == (round(min(undetached), 2), round(max(undetached), 2))
    assert detached == round(_row_means("scfae_mse")[3], 2)  # lr 0.003, the chosen lr
