"""Every fenced ``python`` block of README.md runs, in order, in one namespace (doctest-style)."""

import os
import re
from pathlib import Path

README = Path(__file__).parents[2] / "README.md"
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """``(first line number, code)`` of each fenced python block."""
    return [
        (text.count("\n", 0, match.start(1)) + 1, match.group(1)) for match in FENCE.finditer(text)
    ]


def test_fence_parser_finds_blocks_and_their_lines():
    text = "intro\n```python\nx = 1\n```\n\n```bash\nls\n```\n```python\ny = x + 1\n```\n"
    assert python_blocks(text) == [(3, "x = 1\n"), (10, "y = x + 1\n")]


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    blocks = python_blocks(README.read_text())
    assert blocks, "README.md has no ```python block"
    monkeypatch.chdir(tmp_path)  # files a block writes land in a temporary folder
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace = {"__name__": "__readme__"}
    for line, code in blocks:
        exec(compile(code, f"{README}:{line}", "exec"), namespace)  # noqa: S102
    assert os.getcwd() == str(tmp_path)
