"""The four network plugin kinds: backbone, calibration, fusion, weighting.

A plugin class stores its hyperparameters in ``__init__`` (nothing else, as in scikit-learn) and
creates its layers in ``build``, once the modalities' shapes are known. So a user may pass a name,
a class, or an unbuilt instance (``fusion=TensorFusion(rank=4)``); ``fit`` builds a copy.

Pass order inside the network (:class:`fusekit.engine.network.FusionNetwork`)::

    batch --Weighting.perturb (training only)--> X_m --Backbone_m--> h_m  (absent rows zeroed)
          --Calibration--> h'_m --Weighting.reweight--> --Fusion(mask)--> z --head--> logits
          --Weighting.adjust_logits--> logits;   h'_m --unimodal head_m--> z_m (if asked for)

Loss for a batch (``FusionNetwork.loss``)::

    Weighting.task_loss(output, ctx) + Σ output.aux_losses
        + Σ_{c in calibration, fusion, weighting} c.loss_terms(output, ctx)

Training-loop hooks (``on_train_begin``, ``on_epoch_begin``, ``on_batch_begin``,
``on_grad_computed``, ``on_epoch_end``) are called on every component by one skorch callback;
``on_grad_computed`` runs between ``backward`` and the optimiser step (gradient modulation).
``partial_fit`` trains one epoch per call on that call's chunk, and calls ``on_train_begin`` on
the first call only; a component that needs every training row at once declares
``needs_all_training_rows = True`` and is refused there.

Mixed precision (the estimators' ``precision="bf16" | "16-mixed"``): the forward pass and the
loss run under ``torch.autocast``, so layer outputs are bfloat16 / float16. Components compute
exponentials, logarithms, log-sum-exp, ``lgamma`` / ``digamma``, entropies, variances and softmax
scores in float32 (operands cast with ``.float()``; matrix products that must stay float32 inside
:func:`fusekit.plugin.full_precision`), and return float32 losses; the network's criterion casts
the logits itself. ``on_grad_computed`` always sees true gradients: under ``"16-mixed"`` the
gradients are unscaled before the hooks, and a step with inf / NaN gradients is skipped.

Recommended training settings: a component may set ``recommended_params`` (a class attribute,
keys from :data:`RECOMMENDABLE_PARAMS`), e.g. ``{"lr": 1e-3}``. The estimator uses them for the
parameters the user left at ``"auto"`` (``lr``, ``optimizer``, ``lr_schedule``); where components
disagree, the fusion's value wins, then the weightings' (in order), the calibration's, the
backbones' (modality order). The fitted ``training_settings_`` says where each value came from.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, ClassVar

from torch import Tensor, nn

from fusekit.plugin.batch import ModalityBatch
from fusekit.plugin.context import LossContext, TrainingContext
from fusekit.plugin.output import FusionOutput
from fusekit.plugin.raw import InputEncoder
from fusekit.plugin.spec import BuildSpec, Shape

#: The estimator parameters a component may recommend (``Component.recommended_params``):
#: ``lr`` (a positive float), ``optimizer`` (a name such as ``"adamw"`` or a torch optimiser class),
#: ``lr_schedule`` (``None`` or a callable from training progress in [0, 1] to a factor on ``lr``,
#: e.g. :class:`fusekit.plugin.WarmupCosine`).
RECOMMENDABLE_PARAMS = ("lr", "optimizer", "lr_schedule")

#: The tasks a component may support (``Component.supported_tasks``).
TASKS = ("classification", "regression")

#: The training-loop hooks every component may implement, in the order a fit calls them.
TRAINING_HOOKS = (
    "on_train_begin",
    "on_epoch_begin",
    "on_batch_begin",
    "on_grad_computed",
    "on_epoch_end",
)


class Component(nn.Module):
    """Base of every network plugin: hyperparameters in ``__init__``, layers in ``build``."""

    kind: ClassVar[str] = ""
    #: What each ``__init__`` parameter may be, checked once by the engine when it resolves the
    #: component (:mod:`fusekit.plugin.constraints`: ``Interval``, ``StrOptions``, ``None``, a
    #: type ...); the error names the component by its registry entry. Checks that need the
    #: data (``dim % heads``, shapes) stay in ``build``.
    parameter_constraints: ClassVar[Mapping[str, list[Any]]] = {}
    #: Ask the network to build per-modality heads and fill ``FusionOutput.unimodal_logits``.
    needs_unimodal_heads: bool = False
    #: Training settings this component works best with, used where the user left the estimator
    #: parameter at ``"auto"``; keys from :data:`RECOMMENDABLE_PARAMS`. Say in the docstring where
    #: the values come from (a paper, a committed sweep).
    recommended_params: ClassVar[Mapping[str, Any]] = {}
    #: True when the component's training needs every training row at once: state per row of
    #: ``TrainingContext.data`` (a per-sample history, per-row weights, a held-out split drawn at
    #: ``on_train_begin``). ``partial_fit`` sees one chunk of rows per call, so it refuses such a
    #: component with a ``ValueError`` naming it; ``fit`` trains it as usual. Leave it False when
    #: the component works on whatever rows ``ctx.data`` holds (``partial_fit``: the chunk).
    needs_all_training_rows: ClassVar[bool] = False
    #: True when the component reads ``TrainingContext.data`` (the training rows in memory: the
    #: whole fit's, or ``partial_fit``'s chunk), e.g. prototypes computed over every row at each
    #: epoch. A streamed ``fit`` holds only a shuffling window in memory (``ctx.data`` is None),
    #: so it refuses such a component by name, as it refuses ``needs_all_training_rows`` ones.
    #: Row counts need no data: read ``TrainingContext.n_train_rows``.
    needs_training_data: ClassVar[bool] = False
    #: Why the component reads a tensor's value on the host every training batch (``.item()``,
    #: ``if t.any():``, a Python loop over a tensor), which on a GPU waits for the device; empty
    #: when it does not. ``check_runs_on_meta_device`` accepts a host sync only when this says why.
    #: Prefer tensor ops (``torch.where``, masked means) to declaring it.
    needs_host_values: ClassVar[str] = ""
    #: Whether the component trains correctly data-parallel (one model on several processes,
    #: each on a shard of every batch, gradients averaged: ``docs/scaling.md``). True when its
    #: only training state is parameters and buffers set the same way in every process, and every
    #: batch statistic that sets a coefficient goes through ``ctx.all_reduce``. False when it
    #: keeps state per training row (a per-sample history or weight: each process sees other
    #: rows) or otherwise cannot agree across processes; the estimator then refuses it under data
    #: parallelism with a ``ValueError`` naming it. Weightings default to False (they are the
    #: kind that keeps batch statistics): a weighting states it once it has been made safe. A
    #: component whose safety depends on a hyperparameter sets it on the instance in ``build``.
    data_parallel_safe: ClassVar[bool] = True
    #: The tasks the component works for, from :data:`TASKS`. The estimator refuses a component
    #: for another task with a ``ValueError`` naming it, before anything is built, and the
    #: contract checks run it on each task it declares (and check the refusal on the others).
    supported_tasks: ClassVar[tuple[str, ...]] = TASKS

    def __init__(self) -> None:
        super().__init__()

    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [
            name
            for name, parameter in signature.parameters.items()
            if name != "self"
            and parameter.kind not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL)
        ]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Hyperparameters, read back from the attributes ``__init__`` stored (sklearn style).

        ``deep`` is accepted for scikit-learn's ``clone``, which treats any object with
        ``get_params`` as an estimator; plugins hold no nested estimators, so it changes nothing.
        """
        return {name: getattr(self, name) for name in self._param_names()}

    def extra_repr(self) -> str:
        return ", ".join(f"{name}={value!r}" for name, value in self.get_params().items())

    # Loss and training-loop hooks; every one is optional.
    def loss_terms(self, output: FusionOutput, ctx: LossContext) -> dict[str, Tensor]:
        """Extra named scalar loss terms for this batch (may use ``ctx.target``)."""
        return {}

    def on_train_begin(self, ctx: TrainingContext) -> None:
        """Reset state at the start of ``fit`` and of the first ``partial_fit`` (later
        ``partial_fit`` calls continue the state; each call is one epoch, ``ctx.data`` its
        chunk)."""

    def on_epoch_begin(self, ctx: TrainingContext) -> None:
        """Called before each training epoch."""

    def on_batch_begin(self, ctx: TrainingContext) -> None:
        """Called before each training batch (``ctx.batch``, ``ctx.target`` are set)."""

    def on_grad_computed(self, ctx: TrainingContext) -> None:
        """Called after ``backward`` and before the optimiser step (gradients can be edited)."""

    def on_epoch_end(self, ctx: TrainingContext) -> None:
        """Called after each training epoch."""


class Backbone(Component):
    """Per-modality encoder: ``(B, *input_shape) -> (B, *output_shape)``.

    Vector inputs are ``(d,)``, sequences ``(T, d)``, images ``(C, H, W)``. Output shapes are
    ``(D,)`` or ``(T', D)``: fusions that need vectors pool sequences
    (``fusekit.plugin.as_vector``).
    """

    kind = "backbone"
    #: Input kinds this backbone accepts: ``"vector"`` (d,), ``"sequence"`` (T, d), ``"image"``
    #: (C, H, W), and the raw kinds ``"text"`` and ``"categorical"`` (:mod:`fusekit.plugin.raw`),
    #: which need :meth:`input_encoder`. The network rejects other inputs with a clear error
    #: before ``build``.
    input_kinds: ClassVar[tuple[str, ...]] = ("vector", "sequence", "image")
    #: True when the backbone encodes a sequence of any length ``T`` with the layers it built for
    #: the fitted one (recurrent, convolutional, attention or per-step layers; nothing sized by
    #: ``T``). Then predict accepts sequences longer than the fitted ``T``; otherwise they are
    #: refused with an error naming the modality (shorter ones are padded for every backbone).
    accepts_any_length: ClassVar[bool] = False
    #: True when the backbone is a fixed function during training: none of its parameters trains
    #: (``requires_grad`` False) and the network keeps it in eval mode (no dropout; BatchNorm
    #: uses its running statistics). ``fit`` then encodes each training row once and reuses the
    #: outputs every epoch. Set it on a class that is always frozen (a pretrained encoder used
    #: as a feature extractor), or leave it to the estimator's ``frozen_backbones=``, which sets
    #: it on the instance and turns ``requires_grad`` off.
    frozen: bool = False

    def input_encoder(self) -> InputEncoder | None:
        """A new, unfitted encoder of this backbone's raw kind, or ``None`` (float inputs only).

        Called before the network is built, on an unbuilt backbone (load nothing heavy here
        beyond the tokenizer); fusekit fits it on the training rows and keeps it with the model.
        """
        return None

    def bind_input_encoder(self, encoder: InputEncoder) -> None:
        """Receive the fitted encoder of this backbone's modality, before :meth:`build`.

        The default keeps it as ``self.input_encoder_`` (read it in ``build``: cardinalities,
        vocabulary size, padding id).
        """
        self.input_encoder_ = encoder

    def build(self, input_shape: Shape) -> Shape:
        """Create the layers for one modality; return the output shape without the batch axis."""
        raise NotImplementedError

    def encode(self, x: Tensor, steps: Tensor | None) -> Tensor:
        """Encode ``x`` given ``steps`` ``(B, T)`` (True = real step) for padded sequences.

        ``steps`` is ``None`` when every step is real. The default ignores it (padded steps are
        zeros); sequence models override this to mask attention or pooling. A backbone that
        outputs a sequence must keep ``T`` so the step mask stays valid for fusion.
        """
        return self(x)

    def forward(self, x: Tensor) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError


class Calibration(Component):
    """Pre-fusion refinement of each modality using the others as context; shapes unchanged."""

    kind = "calibration"

    def build(self, spec: BuildSpec) -> None:
        """Create the layers; ``spec.feature_shapes`` are the shapes in and out."""

    def forward(
        self, features: dict[str, Tensor], mask: Tensor, output: FusionOutput
    ) -> dict[str, Tensor]:
        raise NotImplementedError


class Fusion(Component):
    """Combines ``{m: h_m}`` and the ``(B, M)`` mask into one representation, or into logits.

    ``build`` returns the width of the fused vector, or ``n_outputs`` with ``emits_logits``.
    ``features`` iterates in ``BuildSpec.names`` order, the order of the columns of ``mask``, a
    ``(B, M)`` bool tensor (True = present). Absent rows arrive as zeros, but zero is neutral only
    for sums: a fusion must give every sample an output that does not depend on the values at its
    absent positions (ignore them: masked means, ``-inf`` scores before a softmax, attention key
    masks; or put the operation's neutral element there: 1 for products, ``-inf`` for maxima), and
    must stay finite when all of a sample's modalities are absent.
    """

    kind = "fusion"
    #: True when ``forward`` returns logits ``(B, n_outputs)`` directly (no shared head).
    emits_logits: ClassVar[bool] = False
    #: True when ``forward`` returns ``[mask_m · as_vector(h_m)]`` concatenated in mask-column order
    #: (then the ``(B, M)`` mask when an ``indicators`` attribute is true), so that a linear head
    #: splits into per-modality column blocks (OGM-GE's unimodal logits).
    concatenates: ClassVar[bool] = False

    def build(self, spec: BuildSpec) -> int:
        raise NotImplementedError

    def forward(self, features: dict[str, Tensor], mask: Tensor, output: FusionOutput) -> Tensor:
        raise NotImplementedError


class Weighting(Component):
    """A training strategy over modalities; every method has a do-nothing default.

    It can (a) re-weight representations per sample (``reweight``), (b) add loss terms on unimodal
    logits (``task_loss``, ``loss_terms``, with ``needs_unimodal_heads``), (c) edit gradients
    (``on_grad_computed``), (d) perturb or drop modalities in training (``perturb``), (e) keep state
    across epochs (the hooks), (f) run extra forward passes with modalities masked
    (``ctx.network(ctx.batch.without(m))``). It is a module, so its own parameters are trained.
    """

    kind = "weighting"
    data_parallel_safe: ClassVar[bool] = False
    #: True when ``perturb`` only changes the presence mask (``batch.with_mask``: modalities
    #: dropped, present rows' features unchanged). Frozen backbones' outputs are reused across
    #: epochs only when every perturbing weighting says so; a perturbation of the values
    #: (noise, corruption) makes the network run frozen backbones on every batch.
    perturbs_mask_only: ClassVar[bool] = False

    def build(self, spec: BuildSpec) -> None:
        """Create any layers or buffers (e.g. per-modality uncertainty heads)."""

    def perturb(self, batch: ModalityBatch) -> ModalityBatch:
        """Training-time change of the inputs (drop or corrupt modalities); identity by default."""
        return batch

    def reweight(
        self, features: dict[str, Tensor], mask: Tensor, output: FusionOutput
    ) -> dict[str, Tensor]:
        """Per-sample re-weighting of the calibrated features; set ``output.modality_weights``."""
        return features

    def adjust_logits(self, output: FusionOutput) -> Tensor:
        """Replace or combine the fused logits (e.g. confidence-weighted late fusion)."""
        return output.logits

    def task_loss(self, output: FusionOutput, ctx: LossContext) -> Tensor:
        """The main loss; the mean per-sample task loss of the fused logits by default."""
        return ctx.mean_loss(output.logits)
