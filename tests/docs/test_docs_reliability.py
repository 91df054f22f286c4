"""docs/reliability.md: every table row names a test, and each named test exists in one of the
files its section's heading lists."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
DOC = ROOT / "docs" / "reliability.md"
HEADING = re.compile(r"^## (.+?) \((.+)\)$")
NAME = re.compile(r"`(test_\w+)`")


def _sections():
    """``(title, files, rows)`` per section; rows are the table's body lines."""
    sections = []
    for line in DOC.read_text().splitlines():
        heading = HEADING.match(line)
        if heading:
            files = re.findall(r"`([^`]+\.py)`", heading.group(2))
            sections.append((heading.group(1), files, []))
        elif sections and line.startswith("| ") and not line.startswith("| case "):
            sections[-1][2].append(line)
    return sections


def _defined_tests(files):
    names = set()
    for file in files:
        assert (ROOT / file).is_file(), f"{file} (named in docs/reliability.md) does not exist"
        tree = ast.parse((ROOT / file).read_text())
        names |= {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    return names


SECTIONS = _sections()


def test_the_document_has_sections_with_rows():
    assert len(SECTIONS) >= 5 and all(files and rows for _, files, rows in SECTIONS)


@pytest.mark.parametrize(("title", "files", "rows"), SECTIONS, ids=[s[0] for s in SECTIONS])
def test_every_row_names_tests_that_exist(title, files, rows):
    defined = _defined_tests(files)
    for row in rows:
        named = NAME.findall(row.rsplit("|", 2)[-2])  # the last cell
        assert named, f"{title}: the row names no test: {row[:80]}"
        missing = [name for name in named if name not in defined]
        assert not missing, f"{title}: {missing} are not defined in {files}"
