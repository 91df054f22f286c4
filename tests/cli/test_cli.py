"""The ``fusekit`` command behaves in a shell pipeline."""

import subprocess
import sys
from pathlib import Path

import pytest

FUSEKIT = str(Path(sys.executable).with_name("fusekit"))


@pytest.mark.parametrize(
    "command",
    [[FUSEKIT, "plugins"], [sys.executable, "-m", "fusekit", "datasets"]],
    ids=["fusekit plugins", "python -m fusekit datasets"],
)
def test_a_reader_that_closes_early_gets_no_traceback(command):
    """``fusekit plugins | head``: the pipe closes before fusekit writes (it is still importing
    torch), so every write and the final flush meet a closed pipe."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process.stdout.close()
    stderr = process.stderr.read()
    process.wait(timeout=120)
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
    assert process.returncode == 1


def test_plugins_prints_the_whole_table_to_a_reader_that_stays():
    result = subprocess.run([FUSEKIT, "plugins"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split() == [
        "kind",
        "name",
        "distribution",
        "version",
        "description",
    ]
