"""Training settings left at ``"auto"``: resolved from the components' recommendations.

An estimator's ``lr``, ``optimizer`` and ``lr_schedule`` default to ``"auto"`` (so ``get_params``
and ``clone`` see the user's choice, not a resolved value). At fit time each ``"auto"`` takes the
value of the first component that recommends it (``Component.recommended_params``), in the order
fusion, weightings (list order), calibration, backbones (modality order); else the fallback in
:data:`FALLBACKS` (Adam at lr 0.01, constant lr: fusekit's defaults before recommendations).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from skorch.callbacks import LRScheduler

from fusekit.engine.network import FusionNetwork
from fusekit.plugin import RECOMMENDABLE_PARAMS, Component

AUTO = "auto"
#: The value of an ``"auto"`` setting that no component recommends.
FALLBACKS: dict[str, Any] = {"lr": 0.01, "optimizer": "adam", "lr_schedule": None}
assert set(FALLBACKS) == set(RECOMMENDABLE_PARAMS)
#: The optimisers the estimator accepts by name (any ``torch.optim.Optimizer`` class too).
OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
}
OPTIMIZER_NAMES = tuple(OPTIMIZERS)


@dataclass(frozen=True)
class Setting:
    """A resolved training setting and where it came from: ``"user"``, ``"default"`` or the
    recommending component (``"fusion scfae"``)."""

    value: Any
    source: str


def _components(network: FusionNetwork) -> list[tuple[str, Component]]:
    """``(label, component)`` in precedence order: fusion, weightings, calibration, backbones.

    The label is the component's recorded origin (``"fusion scfae"``), else its class name."""

    def label(component: Component) -> str:
        origin = network.origin_of(component)
        return (
            origin.label if origin is not None else f"{component.kind} {type(component).__name__}"
        )

    ranked = [network.fusion, *network.weightings, network.calibration]
    return [(label(c), c) for c in (*ranked, *network.backbones.values())]


def check_setting(name: str, value: Any, source: str) -> None:
    """ValueError unless ``value`` is a valid ``lr`` / ``optimizer`` / ``lr_schedule``."""
    where = f"{name}={value!r} (from {source})"
    if name == "lr" and (
        isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0
    ):
        raise ValueError(f"lr must be a positive number or 'auto'; got {where}.")
    if name == "optimizer" and not (
        (isinstance(value, str) and value.lower() in OPTIMIZER_NAMES)
        or (isinstance(value, type) and issubclass(value, torch.optim.Optimizer))
    ):
        raise ValueError(
            f"optimizer={value!r} is unknown (from {source}); use 'auto', one of "
            f"{list(OPTIMIZER_NAMES)} or a torch.optim.Optimizer class."
        )
    if name == "lr_schedule" and value is not None and not callable(value):
        raise ValueError(
            f"lr_schedule must be 'auto', None or a callable from training progress in [0, 1] to "
            f"a factor on lr (e.g. fusekit.plugin.WarmupCosine()); got {where}."
        )


def resolve_training_settings(
    requested: Mapping[str, Any], network: FusionNetwork
) -> dict[str, Setting]:
    """``{name: Setting}`` for every name in ``RECOMMENDABLE_PARAMS``.

    ``requested`` holds the estimator's values; ``"auto"`` ones are filled from the components.
    """
    components = _components(network)
    for source, component in components:
        unknown = sorted(set(component.recommended_params) - set(RECOMMENDABLE_PARAMS))
        if unknown:
            raise ValueError(
                f"{source} recommends {unknown}, which are not recommendable; a component may "
                f"recommend {list(RECOMMENDABLE_PARAMS)}."
            )
    settings = {}
    for name in RECOMMENDABLE_PARAMS:
        value = requested[name]
        if isinstance(value, str) and value == AUTO:
            recommended = [(s, c) for s, c in components if name in c.recommended_params]
            if recommended:
                source, component = recommended[0]
                setting = Setting(component.recommended_params[name], source)
            else:
                setting = Setting(FALLBACKS[name], "default")
        else:
            setting = Setting(value, "user")
        check_setting(name, setting.value, setting.source)
        settings[name] = setting
    return settings


class ProgressLRScheduler(LRScheduler):
    """skorch's ``LRScheduler`` with a ``LambdaLR`` stepped after every training batch:
    lr at step ``k`` = ``lr x schedule(k / T)``, ``T = max_epochs x batches per epoch``.

    Each training batch's lr is in ``net.history[:, "batches", :, "event_lr"]``.
    """

    def __init__(self, schedule: Callable[[float], float]) -> None:
        super().__init__(policy=torch.optim.lr_scheduler.LambdaLR, step_every="batch")
        self.schedule = schedule

    @property
    def kwargs(self) -> dict[str, Any]:
        return {"lr_lambda": self.lr_lambda_}

    def on_train_begin(self, net: Any, X: Any = None, y: Any = None, **kwargs: Any) -> None:
        train = X if net.train_split is None else net.get_split_datasets(X, y)[0]
        total = max(1, int(net.max_epochs) * len(net.get_iterator(train, training=True)))
        self.total_steps_ = total
        self.lr_lambda_ = _StepFactor(self.schedule, total)
        super().on_train_begin(net, X=X, y=y, **kwargs)


@dataclass(frozen=True)
class _StepFactor:
    """``LambdaLR``'s ``lr_lambda``: step ``k`` -> ``schedule(min(k, total) / total)`` (a class,
    not a lambda, so a fitted estimator pickles)."""

    schedule: Callable[[float], float]
    total: int

    def __call__(self, step: int) -> float:
        return float(self.schedule(min(step, self.total) / self.total))
