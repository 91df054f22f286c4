"""docs/plugins.md lists every contract check the suite runs, and says how many there are."""

import re
from pathlib import Path

from fusekit.testing import checks_for

DOC = (Path(__file__).parents[2] / "docs" / "plugins.md").read_text()


def test_the_check_table_is_the_suite():
    suite = {c.__name__ for kind in ("fusion", "backbone", "calibration", "weighting")
             for c in checks_for(kind)}  # fmt: skip
    listed = set(re.findall(r"^\| `(check_\w+)` \|", DOC, flags=re.MULTILINE))
    assert listed == suite
    assert f"runs these {len(suite)} checks" in DOC
