"""Every script in ``examples/`` runs in quick mode (``--quick``) and exits 0, so none can rot."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

#: Run by their own tests, which check what they write (test_text_and_categories_example.py).
OWN_TEST = {"text_and_categories.py"}
EXAMPLES = sorted(
    p
    for p in (Path(__file__).parents[2] / "examples").glob("*.py")
    if not p.name.startswith("_") and p.name not in OWN_TEST
)


def test_examples_folder_has_the_promised_scripts():
    names = {path.stem for path in EXAMPLES}
    promised = {
        "tabular_mfeat",
        "sensor_sequences",
        "missing_modalities",
        "writing_a_plugin",
        "robustness_sweep",
    }
    assert promised <= names, f"missing examples: {sorted(promised - names)}"


@pytest.mark.parametrize("script", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_example_runs_in_quick_mode(script, tmp_path):
    environment = {
        **os.environ,
        "FUSEKIT_EXAMPLES_QUICK": "1",
        "OMP_NUM_THREADS": "1",  # one core per test, as the rest of the suite
        "MKL_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
        "TMPDIR": str(tmp_path),  # figures written to a temporary folder land here
    }
    result = subprocess.run(
        [sys.executable, str(script), "--quick"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, (
        f"{script.name} --quick exited with {result.returncode}\n"
        f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
    )
    assert result.stdout.strip(), f"{script.name} printed nothing"
    figures = list(tmp_path.rglob("*.png"))
    if script.stem == "robustness_sweep":  # its plot goes to a new temporary folder
        assert figures, "robustness_sweep.py wrote no PNG"
    for figure in figures:
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{figure} is not a PNG"
