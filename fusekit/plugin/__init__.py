"""Everything a plugin needs: ``from fusekit.plugin import ...``.

This package is the whole contract between fusekit and its methods (built-in or third-party). It
imports only torch, numpy and pluggy (for :data:`hookimpl`); scikit-learn's parameter
validation waits for the first check of declared constraints. It never imports the rest of
fusekit, so what a plugin may rely on is exactly what ``__all__`` lists:

- the base classes of the four network kinds, and the table of kinds (:mod:`.kinds`);
- what components are handed: :class:`BuildSpec`, :class:`ModalityBatch`, :class:`FusionOutput`,
  :class:`LossContext`, :class:`TrainingContext` (with their narrow view of the network);
- :data:`hookimpl` and the hook specifications (:mod:`.hookspecs`);
- raw inputs (text, categories): :class:`InputEncoder` and its plain-data state (:mod:`.raw`);
- helpers methods share: pooling (:func:`as_vector`), mask-aware operations (:mod:`.masks`),
  unimodal-head losses, epoch windows, parameter checks, shared layers;
- :func:`all_reduce` (also ``ctx.all_reduce``): batch statistics agreed across the processes of a
  data-parallel fit;
- declared parameter constraints (``parameter_constraints`` with :class:`Interval`,
  :class:`StrOptions`, :class:`Options`: :mod:`.constraints`).

The names the engine reads (the kinds table ``KINDS``, ``BASES``, ``COMPONENT_KINDS``,
``check_kind``, ``RECOMMENDABLE_PARAMS``, ``TRAINING_HOOKS``, ``RAW_KINDS``, ``ENCODED_KINDS``,
``rows_of``) are not in ``__all__``: no method needs them. They stay
importable here and from their modules (:mod:`.kinds`, :mod:`.base`, :mod:`.raw`, :mod:`.batch`).
"""

from fusekit.plugin.base import (
    RECOMMENDABLE_PARAMS as RECOMMENDABLE_PARAMS,  # engine-facing: not in __all__
)
from fusekit.plugin.base import (
    TASKS,
    Backbone,
    Calibration,
    Component,
    Fusion,
    Weighting,
)
from fusekit.plugin.base import (
    TRAINING_HOOKS as TRAINING_HOOKS,  # engine-facing: not in __all__
)
from fusekit.plugin.batch import ModalityBatch, TrainingData
from fusekit.plugin.batch import rows_of as rows_of  # engine-facing: not in __all__
from fusekit.plugin.constraints import Interval, Options, SequenceOf, StrOptions
from fusekit.plugin.context import LossContext, TrainingContext
from fusekit.plugin.criterion import TaskCriterion
from fusekit.plugin.hookspecs import hookimpl
from fusekit.plugin.kinds import BASES as BASES  # engine-facing: not in __all__
from fusekit.plugin.kinds import COMPONENT_KINDS as COMPONENT_KINDS
from fusekit.plugin.kinds import KINDS as KINDS
from fusekit.plugin.kinds import Kind as Kind
from fusekit.plugin.kinds import check_kind as check_kind
from fusekit.plugin.layers import ACTIVATIONS, ModalityProjection, sinusoidal_positions
from fusekit.plugin.masks import (
    expand_mask,
    masked_mean,
    present_mean,
    present_softmax,
    scale_features,
    zero_absent,
)
from fusekit.plugin.nn import as_vector, seeded_generator, vector_size
from fusekit.plugin.output import FusionOutput
from fusekit.plugin.parallel import all_reduce, broadcast, global_present_mean, world_size
from fusekit.plugin.precision import at_least_float32, full_precision
from fusekit.plugin.raw import ENCODED_KINDS as ENCODED_KINDS  # engine-facing: not in __all__
from fusekit.plugin.raw import RAW_KINDS as RAW_KINDS
from fusekit.plugin.raw import (
    RESERVED_CODE,
    EncodedInput,
    EncoderState,
    InputEncoder,
    InputFileError,
)
from fusekit.plugin.schedule import WarmupCosine, WarmupMultiStep, check_window, in_window
from fusekit.plugin.spec import INPUT_KINDS, BuildSpec, Shape, input_kind
from fusekit.plugin.split_head import concat_head_logits, split_concat_head, splits_concat_head
from fusekit.plugin.unimodal import require_unimodal_logits, unimodal_losses
from fusekit.plugin.validation import (
    check_choice,
    check_fraction,
    check_int,
    check_non_negative,
    check_scalar,
)
from fusekit.plugin.views import NetworkView, TrainingLoop

__all__ = [
    "Interval",
    "Options",
    "SequenceOf",
    "StrOptions",
    "ACTIVATIONS",
    "INPUT_KINDS",
    "Backbone",
    "EncodedInput",
    "EncoderState",
    "InputEncoder",
    "InputFileError",
    "RESERVED_CODE",
    "BuildSpec",
    "Calibration",
    "Component",
    "Fusion",
    "FusionOutput",
    "LossContext",
    "ModalityBatch",
    "ModalityProjection",
    "NetworkView",
    "Shape",
    "TASKS",
    "TaskCriterion",
    "TrainingContext",
    "TrainingData",
    "TrainingLoop",
    "WarmupCosine",
    "WarmupMultiStep",
    "Weighting",
    "all_reduce",
    "as_vector",
    "at_least_float32",
    "broadcast",
    "check_choice",
    "check_fraction",
    "check_int",
    "check_non_negative",
    "check_scalar",
    "check_window",
    "concat_head_logits",
    "expand_mask",
    "full_precision",
    "global_present_mean",
    "hookimpl",
    "in_window",
    "input_kind",
    "masked_mean",
    "present_mean",
    "present_softmax",
    "require_unimodal_logits",
    "scale_features",
    "seeded_generator",
    "sinusoidal_positions",
    "split_concat_head",
    "splits_concat_head",
    "unimodal_losses",
    "vector_size",
    "world_size",
    "zero_absent",
]
