"""The declared constraints are plain data turned into scikit-learn's at the first check: they
accept and refuse what scikit-learn's own constraints do (bools aside, which fusekit's
``Interval`` refuses), with scikit-learn's messages."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import pytest
from sklearn.utils import _param_validation as sk

from fusekit.plugin import Interval, Options, SequenceOf, StrOptions
from fusekit.plugin.constraints import InvalidParameterError, check_declared

VALUES = [-2, -1, 0, 0.5, 1, 1.0, 2, 3, np.int64(4), np.float32(0.25), np.nan, "a", "b", None, []]

PAIRS = [
    (Interval(Integral, 1, None, closed="left"), sk.Interval(Integral, 1, None, closed="left")),
    (Interval(Real, 0, 1, closed="neither"), sk.Interval(Real, 0, 1, closed="neither")),
    (Interval(Real, None, 2, closed="right"), sk.Interval(Real, None, 2, closed="right")),
    (
        Interval(sk.RealNotInt, 0, None, closed="left"),
        sk.Interval(sk.RealNotInt, 0, None, closed="left"),
    ),
    (StrOptions({"a"}), sk.StrOptions({"a"})),
    (Options(Real, {0.5, 2}), sk.Options(Real, {0.5, 2})),
]


@pytest.mark.parametrize(("declared", "oracle"), PAIRS, ids=lambda c: str(c))
def test_a_declaration_accepts_what_sklearns_constraint_accepts(declared, oracle):
    for value in VALUES:
        assert declared.is_satisfied_by(value) == oracle.is_satisfied_by(value), value
    assert str(declared) == str(oracle)


@pytest.mark.parametrize("flag", [True, False])
def test_interval_refuses_bools_which_sklearns_takes_as_numbers(flag):
    assert sk.Interval(Integral, 0, None, closed="left").is_satisfied_by(flag)
    assert not Interval(Integral, 0, None, closed="left").is_satisfied_by(flag)


def test_the_message_is_sklearns_for_the_same_constraints():
    declared = {"dropout": [Interval(Real, 0, 1, closed="left"), StrOptions({"auto"}), None]}
    oracle = {"dropout": [sk.Interval(Real, 0, 1, closed="left"), sk.StrOptions({"auto"}), None]}
    with pytest.raises(InvalidParameterError) as ours:
        check_declared(declared, {"dropout": 1.5}, "backbone demo")
    with pytest.raises(sk.InvalidParameterError) as theirs:
        sk.validate_parameter_constraints(oracle, {"dropout": 1.5}, "backbone demo")
    assert str(ours.value) == str(theirs.value)


def test_sklearns_own_constraints_and_no_validation_still_pass_through():
    check_declared({"n": [sk.Interval(Integral, 1, None, closed="left")]}, {"n": 3}, "x")
    check_declared({"anything": "no_validation"}, {"anything": object()}, "x")
    with pytest.raises(InvalidParameterError, match="'n' parameter of x"):
        check_declared({"n": [sk.Interval(Integral, 1, None, closed="left")]}, {"n": 0}, "x")


def test_a_nested_declaration_in_a_sequence_is_converted():
    pairs = SequenceOf(Interval(Integral, 1, None, closed="left"), length=2)
    assert pairs.is_satisfied_by((1, 2)) and not pairs.is_satisfied_by((1, True))


def test_a_declaration_sklearn_refuses_is_refused_at_the_first_check():
    """Plain data cannot check itself without scikit-learn: a bad declaration fails at the
    first check, with scikit-learn's error, not silently."""
    backwards = Interval(Integral, 5, 1, closed="left")
    with pytest.raises(ValueError, match="right can't be less than left"):
        check_declared({"n": [backwards]}, {"n": 3}, "x")


def test_the_declarations_are_plain_data():
    declared = Interval(Integral, 1, None, closed="left")
    assert (declared.type, declared.left, declared.right, declared.closed) == (
        Integral,
        1,
        None,
        "left",
    )
    assert repr(declared) == (
        "Interval(type=<class 'numbers.Integral'>, left=1, right=None, closed='left')"
    )
