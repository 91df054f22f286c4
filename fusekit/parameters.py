"""The estimators' parameter constraints, one declarative table each, as scikit-learn writes them.

``fit`` checks the table first (``BaseEstimator._validate_params``), before any input is read, so a
wrong type or range is an :class:`~sklearn.utils._param_validation.InvalidParameterError` (a
``ValueError`` and a ``TypeError``) naming the parameter, what it must be and what came, e.g.
``The 'early_stopping' parameter of FusionClassifier must be an instance of 'bool' or an instance
of 'numpy.bool'. Got 'False' instead.`` What a table cannot say (the entries of ``callbacks``, the
values of a ``class_weight`` dict) is checked by :func:`check_callbacks` and
:func:`check_class_weight`, with the same exception type.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from numbers import Integral, Real
from typing import Any

import torch
from sklearn.utils._param_validation import (
    Interval,
    InvalidParameterError,
    Options,
    StrOptions,
)
from skorch.callbacks import Callback

from fusekit.engine.precision import PRECISIONS
from fusekit.engine.settings import AUTO, OPTIMIZER_NAMES
from fusekit.plugin import Component


class IntegerInterval(Interval):
    """``Interval(Integral, ...)`` that refuses booleans (``True`` is an ``int`` to Python)."""

    def __init__(self, left: int | None, right: int | None, *, closed: str) -> None:
        super().__init__(Integral, left, right, closed=closed)

    def is_satisfied_by(self, val: Any) -> bool:
        return not isinstance(val, bool) and super().is_satisfied_by(val)


class RealInterval(Interval):
    """``Interval(Real, ...)`` that refuses booleans."""

    def __init__(self, left: float | None, right: float | None, *, closed: str) -> None:
        super().__init__(Real, left, right, closed=closed)

    def is_satisfied_by(self, val: Any) -> bool:
        return not isinstance(val, bool) and super().is_satisfied_by(val)


class CaseInsensitiveStrOptions(StrOptions):
    """``StrOptions`` compared in lower case (``optimizer="Adam"`` is ``"adam"``)."""

    def is_satisfied_by(self, val: Any) -> bool:
        return isinstance(val, str) and val.lower() in self.options


class SubclassOf(Options):
    """A class deriving from ``base`` (the class itself, not an instance)."""

    def __init__(self, base: type) -> None:
        super().__init__(type, {base})
        self.base = base

    def is_satisfied_by(self, val: Any) -> bool:
        return isinstance(val, type) and issubclass(val, self.base)

    def __str__(self) -> str:
        return f"a subclass of {self.base.__module__}.{self.base.__qualname__}"


POSITIVE_INTEGER = IntegerInterval(1, None, closed="left")
#: A component: a registered name, a class or an unbuilt instance.
COMPONENT = [str, type, Component]

ESTIMATOR_CONSTRAINTS: dict[str, list[Any]] = {
    "backbone": [*COMPONENT, Mapping],  # or {modality: component}
    "calibration": COMPONENT,
    "fusion": COMPONENT,
    "weighting": [*COMPONENT, list, tuple],  # or a list of components, applied in order
    "modalities": [Mapping, None],
    # or {modality: layout}, whose keys and values fusekit.sequences.check_layout checks at fit
    "layout": [StrOptions({"channels_last", "channels_first"}), Mapping, None],
    "frozen_backbones": [list, tuple],  # modality names, checked against X at fit
    "standardize": ["boolean", Mapping],  # or {modality: bool}: raw_inputs.standardized
    "max_epochs": [POSITIVE_INTEGER],
    "batch_size": [POSITIVE_INTEGER],
    "shuffle": ["boolean"],
    "lr": [RealInterval(0, None, closed="neither"), StrOptions({AUTO})],
    "optimizer": [
        CaseInsensitiveStrOptions({AUTO, *OPTIMIZER_NAMES}),
        SubclassOf(torch.optim.Optimizer),
    ],
    "lr_schedule": [StrOptions({AUTO}), None, callable],
    "train_split": [None, callable],  # skorch: train_split(dataset, y) -> (train, valid)
    "callbacks": [list, tuple, None],  # entries: check_callbacks
    "early_stopping": ["boolean"],
    "validation_fraction": [RealInterval(0, 1, closed="neither")],
    "n_iter_no_change": [POSITIVE_INTEGER],
    "tol": [RealInterval(0, None, closed="left")],
    "warm_start": ["boolean"],
    "predict_batch_size": [POSITIVE_INTEGER],
    "random_state": ["random_state"],
    "device": [str, torch.device],  # or "auto"; checked at fit by fusekit.devices.fit_device
    # torch's CPU threads during fit/predict (fusekit.threads): None (one), -1 (all), -2, ... or k
    "n_jobs": [
        None,
        IntegerInterval(1, None, closed="left"),
        IntegerInterval(None, -1, closed="right"),
    ],
    "precision": [StrOptions(set(PRECISIONS))],
    "compile": ["boolean"],  # options: compile__* (fusekit.engine.compilation.check_options)
    "distributed": ["boolean", StrOptions({"auto"})],  # fusekit.engine.distributed.setup
    "verbose": ["verbose"],
}
CLASSIFIER_CONSTRAINTS: dict[str, list[Any]] = {
    **ESTIMATOR_CONSTRAINTS,
    "class_weight": [Mapping, StrOptions({"balanced"}), None],  # values: check_class_weight
}


def _is_callback(entry: Any) -> bool:
    return isinstance(entry, Callback) or (isinstance(entry, type) and issubclass(entry, Callback))


def check_callbacks(owner: str, callbacks: Any) -> None:
    """Each entry of ``callbacks`` is a skorch ``Callback`` (instance or class) or a
    ``(name, callback)`` pair, else an ``InvalidParameterError`` naming the entry."""
    for position, entry in enumerate(callbacks or ()):
        if isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str):
            if _is_callback(entry[1]):
                continue
        elif _is_callback(entry):
            continue
        raise InvalidParameterError(
            f"The 'callbacks' parameter of {owner} must be a list of skorch callbacks "
            f"(skorch.callbacks.Callback instances or classes, or (name, callback) pairs), but "
            f"callbacks[{position}] is {type(entry).__name__} {entry!r}."
        )


def check_class_weight(owner: str, class_weight: Any) -> None:
    """The values of a ``class_weight`` dict are finite numbers ``>= 0``, else an
    ``InvalidParameterError`` naming the class."""
    if not isinstance(class_weight, Mapping):
        return
    for label, weight in class_weight.items():
        valid = (
            isinstance(weight, numbers.Real)
            and not isinstance(weight, bool)
            and math.isfinite(weight)
            and weight >= 0
        )
        if not valid:
            raise InvalidParameterError(
                f"The 'class_weight' parameter of {owner} must map each class to a finite "
                f"number >= 0, but class {label!r} has weight {weight!r}."
            )
