"""fusekit: multimodal fusion as scikit-learn estimators, with pluggable methods."""

from fusekit.data import Modalities
from fusekit.devices import DeviceUnavailableWarning
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

__version__ = "0.1.0"

__all__ = [
    "Backbone",
    "BuildSpec",
    "Calibration",
    "Component",
    "DeviceUnavailableWarning",
    "Fusion",
    "FusionClassifier",
    "FusionNetwork",
    "FusionOutput",
    "FusionRegressor",
    "LossContext",
    "ModalityBatch",
    "Modalities",
    "ModelFileError",
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
