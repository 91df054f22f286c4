"""``fusekit.plugin.check_scalar`` behaves like ``sklearn.utils.check_scalar`` (the plugin layer
cannot import scikit-learn, so it reimplements it): same return value, same exception type, same
message, over a grid of values, types and bounds."""

import numbers

import pytest
from sklearn.utils import check_scalar as sklearn_check_scalar

from fusekit.plugin import check_scalar

VALUES = [0, 1, 5, 2.5, -1.0, True, "3", None, 10]
TYPES = [int, float, numbers.Integral, numbers.Real, (int, float), (numbers.Real, str)]
BOUNDS = [(None, None), (1, None), (None, 5), (1, 5), (5, 5)]
BOUNDARIES = ["both", "left", "right", "neither", "sideways"]


def _outcome(function, *args, **kwargs):
    try:
        return ("returned", function(*args, **kwargs))
    except (TypeError, ValueError) as error:
        return (type(error).__name__, str(error))


@pytest.mark.parametrize("include_boundaries", BOUNDARIES)
@pytest.mark.parametrize("bounds", BOUNDS)
@pytest.mark.parametrize("target_type", TYPES, ids=str)
def test_same_result_and_message_as_sklearn(target_type, bounds, include_boundaries):
    min_val, max_val = bounds
    for value in VALUES:
        kwargs = {"min_val": min_val, "max_val": max_val, "include_boundaries": include_boundaries}
        ours = _outcome(check_scalar, value, "alpha", target_type, **kwargs)
        theirs = _outcome(sklearn_check_scalar, value, "alpha", target_type, **kwargs)
        assert ours == theirs, (value, kwargs)
