"""fusekit's plugin contract checks for the ``udml`` weighting, with both presets."""

import pytest

from fusekit.testing import parametrize_with_checks


@parametrize_with_checks("weighting", ["udml"])
def test_contract_paper(plugin, check):
    check(plugin)


# check_sklearn_compatible grid-searches over ["none", "udml"] with the same nested params, so the
# "none" candidate rejects weighting__preset; that failure is the check's, not the plugin's.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.FitFailedWarning")
@pytest.mark.filterwarnings("ignore:One or more of the test scores are non-finite")
@parametrize_with_checks("weighting", ["udml"], params={"preset": "official_code"})
def test_contract_official_code(plugin, check):
    check(plugin)
