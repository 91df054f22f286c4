"""fusekit: multimodal fusion as scikit-learn estimators, with pluggable methods.

The public names are imported on first use (PEP 562): ``import fusekit`` and the command line
stay cheap, ``from fusekit import FusionClassifier`` imports what that class needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fusekit.data import Modalities
    from fusekit.devices import DeviceUnavailableWarning
    from fusekit.engine.frozen_cache import FrozenCacheWarning
    from fusekit.engine.network import FusionNetwork
    from fusekit.engine.registry import available, get_registry
    from fusekit.estimator import FusionClassifier, FusionRegressor
    from fusekit.persistence import ModelFileError, SignatureError
    from fusekit.plugin import (
        Backbone,
        BuildSpec,
        Calibration,
        Component,
        Fusion,
        FusionOutput,
        LossContext,
        ModalityBatch,
        TrainingContext,
        Weighting,
        hookimpl,
    )
    from fusekit.saving import UntrustedTypesError, load, save
    from fusekit.sequences import ChannelsFirstWarning
    from fusekit.streaming import ChunkSource, DaskSource, ParquetSource

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_SOURCES: dict[str, str] = {
    "Modalities": "fusekit.data",
    "DeviceUnavailableWarning": "fusekit.devices",
    "FrozenCacheWarning": "fusekit.engine.frozen_cache",
    "ChannelsFirstWarning": "fusekit.sequences",
    "FusionNetwork": "fusekit.engine.network",
    "available": "fusekit.engine.registry",
    "get_registry": "fusekit.engine.registry",
    "FusionClassifier": "fusekit.estimator",
    "FusionRegressor": "fusekit.estimator",
    "ModelFileError": "fusekit.persistence",
    "SignatureError": "fusekit.persistence",
    **dict.fromkeys(
        (
            "Backbone",
            "BuildSpec",
            "Calibration",
            "Component",
            "Fusion",
            "FusionOutput",
            "LossContext",
            "ModalityBatch",
            "TrainingContext",
            "Weighting",
            "hookimpl",
        ),
        "fusekit.plugin",
    ),
    **dict.fromkeys(("ChunkSource", "DaskSource", "ParquetSource"), "fusekit.streaming"),
    "UntrustedTypesError": "fusekit.saving",
    "load": "fusekit.saving",
    "save": "fusekit.saving",
}

__all__ = [
    "Backbone",
    "BuildSpec",
    "Calibration",
    "ChannelsFirstWarning",
    "ChunkSource",
    "Component",
    "DaskSource",
    "DeviceUnavailableWarning",
    "FrozenCacheWarning",
    "Fusion",
    "FusionClassifier",
    "FusionNetwork",
    "FusionOutput",
    "FusionRegressor",
    "LossContext",
    "ModalityBatch",
    "Modalities",
    "ModelFileError",
    "ParquetSource",
    "SignatureError",
    "TrainingContext",
    "UntrustedTypesError",
    "Weighting",
    "available",
    "get_registry",
    "hookimpl",
    "load",
    "save",
]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use, then keep the name here."""
    if name not in _SOURCES:
        raise AttributeError(f"module 'fusekit' has no attribute {name!r}")
    value = getattr(importlib.import_module(_SOURCES[name]), name)  # safe: fixed in-package table
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
