"""The plugin contract as runnable checks, in the spirit of scikit-learn's ``check_estimator``.

>>> from fusekit.testing import check_fusion
>>> check_fusion("concat")            # raises ContractError naming the broken promise

In a plugin's test suite::

    from fusekit.testing import parametrize_with_checks

    @parametrize_with_checks("fusion", ["maxout"])
    def test_contract(plugin, check):
        check(plugin)

and of its declared parameters (a table of bad values, one per declared parameter)::

    from fusekit.testing import check_declared_parameters

    def test_declared_parameters():
        check_declared_parameters("fusion", "maxout", {"width": 0}, boundary={"width": 1})
"""

from fusekit.testing.checks import ContractError
from fusekit.testing.declared import (
    check_bad_value_refused,
    check_boundary_fits,
    check_declared_coverage,
    check_declared_parameters,
)
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
    "check_bad_value_refused",
    "check_boundary_fits",
    "check_calibration",
    "check_declared_coverage",
    "check_declared_parameters",
    "check_fusion",
    "check_weighting",
    "checks_for",
    "parametrize_with_checks",
]
