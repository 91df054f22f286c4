"""fusekit's plugin contract checks for the fusion kind, on SCFAE (the presets share its code and
are fitted in ``test_scfae_estimator.py``; running every check on each would triple the time)."""

from fusekit.testing import parametrize_with_checks


@parametrize_with_checks("fusion", ["scfae"])
def test_contract(plugin, check):
    check(plugin)
