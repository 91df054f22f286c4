"""fusekit: multimodal fusion as scikit-learn estimators, with pluggable methods."""

from fusekit.batch import ModalityBatch
from fusekit.components import Backbone, BuildSpec, Calibration, Component, Fusion, Weighting
from fusekit.data import Modalities
from fusekit.estimator import FusionClassifier, FusionRegressor
from fusekit.hookspecs import hookimpl
from fusekit.network import FusionNetwork
from fusekit.output import FusionOutput, LossContext, TrainingContext
from fusekit.persistence import load
from fusekit.registry import available, get_registry

__version__ = "0.1.0"

__all__ = [
    "Backbone",
    "BuildSpec",
    "Calibration",
    "Component",
    "Fusion",
    "FusionClassifier",
    "FusionNetwork",
    "FusionOutput",
    "FusionRegressor",
    "LossContext",
    "ModalityBatch",
    "Modalities",
    "TrainingContext",
    "Weighting",
    "available",
    "get_registry",
    "hookimpl",
    "load",
]
