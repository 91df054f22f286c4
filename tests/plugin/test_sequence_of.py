"""``SequenceOf``: a declared constraint on each item of a list or tuple (scikit-learn has none)."""

from __future__ import annotations

from numbers import Real

import numpy as np
import pytest

from fusekit.plugin.constraints import (
    Interval,
    InvalidParameterError,
    SequenceOf,
    StrOptions,
    check_declared,
)

NON_NEGATIVE = SequenceOf(Interval(Real, 0, None, closed="left"))


@pytest.mark.parametrize("value", [[0], (0, 1.5, 10), [np.float32(1.0)], ()])
def test_lists_and_tuples_of_valid_items_are_accepted(value):
    assert NON_NEGATIVE.is_satisfied_by(value)


@pytest.mark.parametrize(
    "value",
    [
        [0, -1],  # one item out of its range
        [True, 2],  # a bool is no number here (fusekit's Interval)
        "012",  # a string is no sequence of numbers
        3.0,  # a scalar
        {0: 1},  # a mapping
        {0, 1},  # a set has no order
    ],
)
def test_anything_else_is_refused(value):
    assert not NON_NEGATIVE.is_satisfied_by(value)


def test_length_and_item_constraints_given_as_strings():
    pair = SequenceOf(StrOptions({"a", "b"}), length=2)
    assert pair.is_satisfied_by(["a", "b"]) and not pair.is_satisfied_by(["a"])
    assert SequenceOf("boolean").is_satisfied_by([True, False])


def test_the_error_names_the_parameter_the_owner_and_the_item_constraint():
    with pytest.raises(InvalidParameterError) as raised:
        check_declared({"levels": [NON_NEGATIVE]}, {"levels": [1, -2]}, "weighting demo")
    assert str(raised.value) == (
        "The 'levels' parameter of weighting demo must be a list or tuple of items, each "
        "a float in the range [0.0, inf). Got [1, -2] instead."
    )
