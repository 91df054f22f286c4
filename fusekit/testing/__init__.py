"""The plugin contract as runnable checks, in the spirit of scikit-learn's ``check_estimator``.

>>> from fusekit.testing import check_fusion
>>> check_fusion("concat")            # raises ContractError naming the broken promise

In a plugin's test suite::

    from fusekit.testing import parametrize_with_checks

    @parametrize_with_checks("fusion", ["maxout"])
    def test_contract(plugin, check):
        check(plugin)
"""

from fusekit.testing.checks import ContractError
from fusekit.testing.suite import (
    check_backbone,
    check_calibration,
    check_fusion,
    check_weighting,
    checks_for,
    parametrize_with_checks,
)

__all__ = [
    "ContractError",
    "check_backbone",
    "check_calibration",
    "check_fusion",
    "check_weighting",
    "checks_for",
    "parametrize_with_checks",
]
