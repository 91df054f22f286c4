"""fusekit's plugin contract checks for the BTW weightings (both reference protocols)."""

from fusekit_btw import BTW

from fusekit.testing import parametrize_with_checks


class BTWHeads(BTW):
    """BTW with the cheap protocol by default (the checks build plugins from their defaults)."""

    def __init__(self, level: str = "bi", unimodal: str = "heads") -> None:
        super().__init__(level=level, unimodal=unimodal)


@parametrize_with_checks("weighting", ["btw", "btw_local", BTWHeads])
def test_weighting_contract(plugin, check):
    check(plugin)
