"""Estimator parameters are checked by type and range (``_parameter_constraints``) before any
input is read; nested plugin widths refuse non-integers. scikit-learn's own
``check_param_validation`` runs on both estimators."""

import re

import numpy as np
import pytest
import torch
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import check_param_validation
from skorch.callbacks import Callback, EpochScoring

from fusekit import FusionClassifier, FusionRegressor
from reliability.raising import raises_exactly

N = 20
RNG = np.random.default_rng(0)
X = {"a": RNG.normal(size=(N, 3)), "b": RNG.normal(size=(N, 2))}
Y = np.arange(N) % 2


def _fit(**params):
    return FusionClassifier(**{"max_epochs": 1, "random_state": 0, **params}).fit(X, Y)


@pytest.mark.parametrize("estimator", [FusionClassifier(), FusionRegressor()])
def test_sklearn_check_param_validation(estimator):
    check_param_validation(type(estimator).__name__, estimator)


@pytest.mark.parametrize(
    ("param", "value", "got"),
    [
        ("early_stopping", "False", "'False'"),
        ("standardize", "yes", "'yes'"),
        ("warm_start", 1, "1"),
        ("shuffle", "no", "'no'"),
        ("max_epochs", 2.5, "2.5"),
        ("max_epochs", True, "True"),
        ("batch_size", 0, "0"),
        ("n_iter_no_change", 1.0, "1.0"),
        ("validation_fraction", 1.5, "1.5"),
        ("tol", -1e-3, "-0.001"),
        ("lr", True, "True"),
        ("lr", float("nan"), "nan"),
        ("optimizer", int, "<class 'int'>"),
        ("callbacks", "print_log", "'print_log'"),
        ("train_split", 0.2, "0.2"),
        ("class_weight", "balance", "'balance'"),
        ("verbose", -1, "-1"),
        ("device", 0, "0"),
    ],
)
def test_parameter_of_wrong_type_or_range_is_named(param, value, got):
    with raises_exactly(
        InvalidParameterError,
        rf"The '{param}' parameter of FusionClassifier must be .* Got {re.escape(got)} instead",
    ):
        _fit(**{param: value})


def test_parameters_are_checked_before_the_input():
    with raises_exactly(InvalidParameterError, "'max_epochs' parameter"):
        FusionClassifier(max_epochs=0).fit({"a.b": np.ones((3, 1))}, [0, 1, 0])


@pytest.mark.parametrize("entry", [1, "print_log", ("scoring", 3)])
def test_callbacks_entries_must_be_skorch_callbacks(entry):
    with raises_exactly(InvalidParameterError, r"callbacks\[1\] is "):
        _fit(callbacks=[EpochScoring("accuracy"), entry])


class Counter(Callback):
    epochs = 0

    def on_epoch_end(self, net, **kwargs):
        type(self).epochs += 1


def test_named_callbacks_and_classes_are_accepted():
    Counter.epochs = 0
    model = _fit(callbacks=[("counted", Counter()), Counter], max_epochs=2)
    assert "counted" in dict(model.net_.callbacks_) and Counter.epochs == 4


@pytest.mark.parametrize("weight", [-1.0, float("nan"), float("inf"), True, "2"])
def test_class_weight_values_are_finite_and_non_negative(weight):
    with raises_exactly(InvalidParameterError, r"class 0 has weight"):
        _fit(class_weight={0: weight, 1: 1.0})


def test_valid_values_of_other_types_are_accepted():
    model = _fit(
        max_epochs=np.int64(2),
        batch_size=np.int32(8),
        early_stopping=np.bool_(False),
        optimizer="Adam",
        lr=1,
        device=torch.device("cpu"),
        class_weight={0: np.float32(2.0), 1: 1},
    )
    assert model.n_iter_ == 2 and model.optimizer_ is torch.optim.Adam


def test_optimizer_class_is_accepted():
    assert _fit(optimizer=torch.optim.SGD).optimizer_ is torch.optim.SGD


@pytest.mark.parametrize("value", [8.7, True, "8"])
def test_backbone_width_must_be_an_integer(value):
    with raises_exactly(
        InvalidParameterError,
        rf"The 'hidden' parameter of backbone of 'a' mlp must be an int in the range \[1, inf\)\. "
        rf"Got {re.escape(repr(value))} instead",
    ):
        _fit(backbone__hidden=value)


def test_backbone_depth_must_be_an_integer():
    with raises_exactly(
        InvalidParameterError, r"The 'depth' parameter of backbone of 'a' mlp must be an int"
    ):
        _fit(backbone__depth=1.5)


def test_backbone_width_accepts_numpy_integers():
    model = _fit(backbone__hidden=np.int64(8))
    assert model.module_.backbones["a"].layers[0].out_features == 8
