"""fusekit's plugin contract checks for weightings, on MWAM's defaults and on its other modes."""

import pytest

from fusekit.testing import checks_for, parametrize_with_checks

pytestmark = pytest.mark.filterwarnings("ignore:MWAM computes the frequency ratio:UserWarning")
NETWORK_CHECKS = (
    "check_absent_finite",
    "check_absent_invariance",
    "check_gradients_reach_encoders",
)


@parametrize_with_checks("weighting", ["mwam"])
def test_contract_default(plugin, check):
    check(plugin)


@pytest.mark.parametrize(
    "params",
    [
        {"apply": "both", "frm_source": "feature"},
        {"apply": "loss", "frm_mode": "energy", "reduce": "sum"},
    ],
)
@pytest.mark.parametrize(
    "check",
    [c for c in checks_for("weighting") if c.__name__ in NETWORK_CHECKS],
    ids=lambda c: c.__name__,
)
def test_contract_other_modes(check, params):
    check("weighting", "mwam", params)
