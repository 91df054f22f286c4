"""The fusion network: backbones, calibration, weighting, fusion and head in one module."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor, nn

from fusekit.engine import frozen_cache
from fusekit.engine.contract_guards import check_supported_tasks, loss_terms_of
from fusekit.plugin import (
    Backbone,
    BuildSpec,
    Calibration,
    Component,
    Fusion,
    FusionOutput,
    InputEncoder,
    LossContext,
    ModalityBatch,
    NetworkView,
    TaskCriterion,
    Weighting,
    as_vector,
    expand_mask,
    input_kind,
    vector_size,
)

if TYPE_CHECKING:
    from fusekit.engine.resolve import Origin


class FusionNetwork(nn.Module):
    """``X_m -> backbone_m -> calibration -> weightings.reweight -> fusion(mask) -> head``.

    The network owns the rule that absent modalities reach calibration and fusion as zero rows,
    with the ``(B, M)`` mask beside them; plugins never see the raw values of an absent modality.

    It holds a list of weightings (``weighting=["ogm_ge", "modality_dropout"]``), combined in list
    order w_1, ..., w_n:

    * ``perturb``, ``reweight``: chained, b <- w_n(... w_1(b)); ``output.modality_weights`` is what
      the last weighting that sets it wrote;
    * ``adjust_logits``: chained, each sees the logits the previous one returned;
    * ``task_loss``: the one weighting that overrides it (``qmf``, ``tmc``, ``gradient_blending``
      ...), else the mean task loss; two that override it are an error. The network hands its
      criterion (:class:`TaskCriterion`) to the context; sample weights ride on the batch
      (``LossContext.sample_weight`` reads them); every task loss averages with
      ``ctx.weighted_mean``;
    * ``loss_terms`` and the training hooks: every weighting's, in list order (after the
      backbones', the calibration's and the fusion's).
    """

    def __init__(
        self,
        input_shapes: Mapping[str, tuple[int, ...]],
        backbones: Mapping[str, Backbone],
        calibration: Calibration,
        fusion: Fusion,
        weighting: Weighting | Sequence[Weighting],
        n_outputs: int,
        task: Literal["classification", "regression"],
        encoders: Mapping[str, InputEncoder] | None = None,
        origins: Sequence[Origin] = (),
    ) -> None:
        """``encoders``: the fitted input encoders of the raw (text, categorical) modalities,
        whose ``input_shapes`` are then the encoded shapes; each goes to its backbone
        (``bind_input_encoder``) before ``build``."""
        super().__init__()
        self.names = tuple(input_shapes)
        self.task = task
        self.criterion = TaskCriterion(task)
        self.backbones = nn.ModuleDict(dict(backbones))
        encoders = dict(encoders or {})
        for name, shape in input_shapes.items():
            backbone = self.backbones[name]
            kind = encoders[name].kind if name in encoders else input_kind(tuple(shape))
            if kind not in backbone.input_kinds:
                raise ValueError(
                    f"modality {name!r} is a {kind} of shape {tuple(shape)}, "
                    f"but its backbone {type(backbone).__name__} accepts "
                    f"{' or '.join(backbone.input_kinds)} input. Choose another backbone for it, "
                    f"e.g. backbone={{{name!r}: 'mlp', ...}}."
                )
            if name in encoders:
                backbone.bind_input_encoder(encoders[name])
        feature_shapes = {
            name: tuple(self.backbones[name].build(tuple(shape)))
            for name, shape in input_shapes.items()
        }
        self.spec = BuildSpec(
            names=self.names,
            input_shapes={name: tuple(shape) for name, shape in input_shapes.items()},
            feature_shapes=feature_shapes,
            n_outputs=n_outputs,
            task=task,
        )
        weightings = [weighting] if isinstance(weighting, Weighting) else list(weighting)
        parts = [*self.backbones.values(), calibration, fusion, *weightings]
        check_supported_tasks(itertools.zip_longest(parts, tuple(origins)[: len(parts)]), task)
        self.calibration = calibration
        self.calibration.build(self.spec)
        self.weightings = nn.ModuleList(weightings)
        for part in self.weightings:
            part.build(self.spec)
        self._set_passes()
        self.fusion = fusion
        fused_width = fusion.build(self.spec)
        self.fused_width = int(fused_width)
        self.head = nn.Identity() if fusion.emits_logits else nn.Linear(fused_width, n_outputs)
        needs_heads = any(c.needs_unimodal_heads for c in self.components())
        self.unimodal_heads = (
            nn.ModuleDict(
                {
                    name: nn.Linear(vector_size(shape), n_outputs)
                    for name, shape in feature_shapes.items()
                }
            )
            if needs_heads
            else None
        )
        self.origins = tuple(origins)
        if self.origins and len(self.origins) != len(self.components()):
            raise ValueError(
                f"origins: {len(self.origins)} given for {len(self.components())} components"
            )

    def _set_passes(self) -> None:
        """Which weightings take part in each step of a pass (those that override the method).

        A default method changes nothing (identity), so skipping it keeps the numbers and saves
        the per-batch calls; the task loss has a single owner (see the class docstring).
        """
        parts = list(self.weightings)
        self._perturbers = [w for w in parts if _overrides(w, "perturb")]
        self._reweighters = [w for w in parts if _overrides(w, "reweight")]
        self._adjusters = [w for w in parts if _overrides(w, "adjust_logits")]
        owners = [w for w in parts if _overrides(w, "task_loss")]
        if len(owners) > 1:
            raise ValueError(
                "weighting: at most one weighting in the list may redefine the task loss, got "
                f"{[type(w).__name__ for w in owners]}. Keep one of them."
            )
        self._task_owner = owners[0] if owners else None

    @property
    def weighting(self) -> Weighting:
        """The weighting, when the network holds exactly one (see :attr:`weightings`)."""
        if len(self.weightings) != 1:
            raise AttributeError(
                f"this network holds {len(self.weightings)} weightings; use network.weightings"
            )
        return self.weightings[0]

    def train(self, mode: bool = True) -> FusionNetwork:
        """``nn.Module.train``, except that frozen backbones (``Backbone.frozen``) stay in eval
        mode: no dropout, no batch statistics, the same function in training as at predict."""
        super().train(mode)
        if mode:
            for name in frozen_cache.frozen_modalities(self):
                self.backbones[name].eval()
        return self

    def components(self) -> tuple[Component, ...]:
        """Every component, in pass order: backbones, calibration, fusion, weightings.

        Loss terms are summed and training hooks called in this order.
        """
        return (*self.backbones.values(), self.calibration, self.fusion, *self.weightings)

    def origin_of(self, component: Component) -> Origin | None:
        """Where ``component`` came from (recorded when it was resolved), or ``None``."""
        for part, origin in zip(self.components(), self.origins, strict=False):
            if part is component:
                return origin
        return None

    def label(self, component: Component) -> str:
        """``"weighting 'qmf' (QMFWeighting)"``: the kind, the registered name from the
        component's recorded origin (the class name when it has none) and the class."""
        origin = self.origin_of(component)
        cls = type(component).__name__
        name = cls if origin is None or origin.name is None else origin.name
        return f"{component.kind} {name!r} ({cls})"

    def _describe(self, component: Component) -> str:
        origin = self.origin_of(component)
        return "origin not recorded" if origin is None else origin.describe()

    @property
    def view(self) -> NetworkView:
        """The :class:`NetworkView` plugins receive in their contexts (one per network)."""
        view = self.__dict__.get("_view")
        if view is None or view._network is not self:  # a deep copy carries the original's view
            view = self.__dict__["_view"] = NetworkView(self)
        return view

    def has_forward_pre_hook(self, hook: Callable[..., object]) -> bool:
        """Whether ``hook`` runs before every forward pass (a plugin that registers once asks).

        torch offers no public query of a module's hooks, so the network reads its own table
        (as :meth:`copy` clears it); the plugin layer never touches torch's private state."""
        return hook in self._forward_pre_hooks.values()

    def copy(self, plain: bool = False) -> FusionNetwork:
        """A deep copy; ``plain``: no weighting, no forward hooks (see ``NetworkView.copy``)."""
        model = copy.deepcopy(self)
        if plain:
            model._forward_pre_hooks.clear()
            model.weightings = nn.ModuleList()
            model._set_passes()
            model.origins = model.origins[: len(model.components())]
        return model

    def decide(
        self, features: dict[str, Tensor], mask: Tensor, steps: dict[str, Tensor] | None = None
    ) -> Tensor:
        """Fusion and head only on ``features`` as given: ``(B, n_outputs)`` logits."""
        fused = self.fusion(features, mask, FusionOutput(mask=mask, steps=dict(steps or {})))
        return fused if self.fusion.emits_logits else self.head(fused)

    def modality_parameters(self, name: str) -> list[nn.Parameter]:
        """Parameters of modality ``name``'s encoder (for per-branch gradient modulation)."""
        return list(self.backbones[name].parameters())

    def encode(self, batch: ModalityBatch) -> dict[str, Tensor]:
        """Backbone outputs ``{m: (B, *feature_shape_m)}`` with absent rows zeroed."""
        features = {}
        remembered = self.__dict__.get("frozen_outputs")  # during fit: frozen_cache
        for position, name in enumerate(self.names):
            backbone = self.backbones[name]
            if remembered is None:
                encoded = backbone.encode(batch.features[name], batch.steps.get(name))
            else:
                encoded = remembered.encode(name, position, backbone, batch)
            if not batch.complete:
                encoded = encoded * expand_mask(batch.mask[:, position], encoded)
            features[name] = encoded
        return features

    def fuse(
        self,
        features: dict[str, Tensor],
        mask: Tensor,
        output: FusionOutput | None = None,
        steps: dict[str, Tensor] | None = None,
    ) -> Tensor:
        """Weighting, fusion and head on already-calibrated features: ``(B, n_outputs)`` logits.

        Public so that plugins can rerun the decision part with another mask (e.g. a modality
        removed), reusing the features of the full pass; pass the batch's padded-step masks as
        ``steps`` (``output.steps`` of the full pass) for sequence modalities. Called without
        ``output``, it zeroes the features of modalities that ``mask`` marks absent.
        """
        if output is None:  # an extra pass requested by a plugin: absent features become zeros
            output = FusionOutput(mask=mask, steps=dict(steps or {}))
            features = {
                name: h * expand_mask(mask[:, position], h)
                for position, (name, h) in enumerate(features.items())
            }
        if output.unimodal_logits is None and self.unimodal_heads is not None:
            output.unimodal_logits = self.unimodal(features, output.steps)
        for weighting in self._reweighters:
            features = weighting.reweight(features, mask, output)
        fused = self.fusion(features, mask, output)
        if fused.dim() != 2 or fused.shape[1] != self.fused_width:
            raise RuntimeError(
                f"fusion {type(self.fusion).__name__} ({self._describe(self.fusion)}) returned "
                f"shape {tuple(fused.shape)}, but its build() promised (B, {self.fused_width}). "
                "This is a bug in the plugin."
            )
        if self.fusion.emits_logits:
            output.logits = fused
        else:
            output.fused = fused
            output.logits = self.head(fused)
        for weighting in self._adjusters:
            output.logits = weighting.adjust_logits(output)
        return output.logits

    def _check_calibrated(self, features: dict[str, Tensor], calibrated: dict[str, Tensor]) -> None:
        if calibrated is features:
            return
        for name, h in features.items():
            got = calibrated.get(name)
            if got is None or got.shape != h.shape:
                raise RuntimeError(
                    f"calibration {type(self.calibration).__name__} "
                    f"({self._describe(self.calibration)}) returned "
                    f"{None if got is None else tuple(got.shape)} for modality {name!r}, which "
                    f"came in as {tuple(h.shape)}. Calibrations must keep shapes; this is a bug in "
                    "the plugin."
                )

    def unimodal(
        self, features: dict[str, Tensor], steps: dict[str, Tensor] | None = None
    ) -> dict[str, Tensor] | None:
        """Per-modality logits ``{m: (B, n_outputs)}`` when unimodal heads were requested."""
        if self.unimodal_heads is None:
            return None
        steps = steps or {}
        return {m: self.unimodal_heads[m](as_vector(h, steps.get(m))) for m, h in features.items()}

    def forward(self, batch: ModalityBatch) -> FusionOutput:
        if self.training:
            for weighting in self._perturbers:
                batch = weighting.perturb(batch)
        output = FusionOutput(mask=batch.mask, steps=batch.steps, batch=batch)
        output.features = self.encode(batch)
        output.calibrated = self.calibration(output.features, batch.mask, output)
        self._check_calibrated(output.features, output.calibrated)
        output.unimodal_logits = self.unimodal(output.calibrated, batch.steps)
        output.logits = self.fuse(output.calibrated, batch.mask, output)
        return output

    def loss(
        self, output: FusionOutput, target: Tensor, batch: ModalityBatch, training: bool
    ) -> Tensor:
        """Task loss (as the weighting defines it) plus every auxiliary loss term."""
        ctx = LossContext(
            network=self.view,
            batch=batch,
            target=target,
            training=training,
            criterion=self.criterion,
        )
        total = self.task_loss(output, ctx)
        for value in output.aux_losses.values():
            total = total + value
        for component, origin in itertools.zip_longest(self.components(), self.origins):
            for value in loss_terms_of(component, origin, output, ctx).values():
                total = total + value
        return total

    def task_loss(self, output: FusionOutput, ctx: LossContext) -> Tensor:
        """The main loss as the weightings define it (by default the mean task loss, weighted by
        the batch's sample weights when there are any: ``ctx.mean_loss``)."""
        if self._task_owner is None:
            return ctx.mean_loss(output.logits)
        return self._task_owner.task_loss(output, ctx)

    @torch.inference_mode()
    def predict_logits(
        self,
        batch: ModalityBatch,
        batch_size: int,
        transform: Callable[[ModalityBatch], ModalityBatch] | None = None,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """Fused logits for every row of ``batch``, in chunks, without gradients.

        With ``device``, each chunk of ``batch_size`` rows is moved there just before its forward
        pass, so ``batch`` may stay on the CPU however large it is. ``transform`` (e.g.
        standardisation) is applied to each chunk on that device before the forward pass.
        """
        chunks = []
        for start in range(0, len(batch), batch_size):
            chunk = batch.take(slice(start, start + batch_size))
            if device is not None:
                chunk = chunk.to(device)
            chunks.append(self(chunk if transform is None else transform(chunk)).logits)
        return torch.cat(chunks)


def _overrides(component: Component, method: str) -> bool:
    return getattr(type(component), method) is not getattr(Weighting, method)
