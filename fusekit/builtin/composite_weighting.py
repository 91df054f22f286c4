"""Several weightings applied together, in a defined order.

``FusionClassifier(weighting="compose", weighting__steps=["modality_dropout", "ogm_ge"])``; a step
is a registered name, a class or an unbuilt instance (``OGMGEWeighting(alpha=0.3)``) for its own
parameters. Order of application, steps s_1, ..., s_n in list order:

* ``perturb``, ``reweight``: chained, b ← s_n(... s_1(b)); ``output.modality_weights`` is what the
  last step that sets it wrote.
* ``adjust_logits``: chained; each step sees the logits the previous one returned.
* ``task_loss``: the single step that overrides it (e.g. ``qmf``, ``tmc``,
  ``gradient_blending``), or the default mean task loss; two such steps are an error.
* ``loss_terms``: all of them, keys prefixed ``"<position>_<name>/"``.
* training hooks (``on_train_begin`` ... ``on_grad_computed`` ... ``on_epoch_end``): each step,
  in order.

Unimodal heads are built when any step asks for them (decided in ``build``, which the network
runs before it reads ``needs_unimodal_heads``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from fusekit.plugin import (
    BuildSpec,
    FusionOutput,
    LossContext,
    ModalityBatch,
    TrainingContext,
    Weighting,
    hookimpl,
)


class CompositeWeighting(Weighting):
    """Apply several weighting schemes together, in list order."""

    def __init__(self, steps: Sequence[Any] = ()) -> None:
        super().__init__()
        self.steps = steps

    def build(self, spec: BuildSpec) -> None:
        from fusekit.engine.resolve import instantiate  # late: resolve imports the registry

        if isinstance(self.steps, (str, bytes)) or not isinstance(self.steps, Sequence):
            raise ValueError(f"compose: steps must be a list of weightings, got {self.steps!r}")
        # no steps composes nothing: plain joint training, like weighting="none"
        self.parts = nn.ModuleList([instantiate("weighting", step, {}) for step in self.steps])
        for part in self.parts:
            part.build(spec)
        self.needs_unimodal_heads = any(part.needs_unimodal_heads for part in self.parts)
        self.labels = [f"{i}_{type(p).__name__}" for i, p in enumerate(self.parts)]
        owners = [p for p in self.parts if type(p).task_loss is not Weighting.task_loss]
        if len(owners) > 1:
            raise ValueError(
                "compose: steps may redefine the task loss only once, got "
                f"{[type(p).__name__ for p in owners]}"
            )
        self.task_owner = owners[0] if owners else None

    def perturb(self, batch: ModalityBatch) -> ModalityBatch:
        for part in self.parts:
            batch = part.perturb(batch)
        return batch

    def reweight(
        self, features: dict[str, Tensor], mask: Tensor, output: FusionOutput
    ) -> dict[str, Tensor]:
        for part in self.parts:
            features = part.reweight(features, mask, output)
        return features

    def adjust_logits(self, output: FusionOutput) -> Tensor:
        for part in self.parts:
            output.logits = part.adjust_logits(output)
        return output.logits

    def task_loss(self, output: FusionOutput, ctx: LossContext) -> Tensor:
        if self.task_owner is not None:
            return self.task_owner.task_loss(output, ctx)
        return super().task_loss(output, ctx)

    def loss_terms(self, output: FusionOutput, ctx: LossContext) -> dict[str, Tensor]:
        terms = {}
        for label, part in zip(self.labels, self.parts, strict=True):
            terms.update({f"{label}/{k}": v for k, v in part.loss_terms(output, ctx).items()})
        return terms

    def on_train_begin(self, ctx: TrainingContext) -> None:
        for part in self.parts:
            part.on_train_begin(ctx)

    def on_epoch_begin(self, ctx: TrainingContext) -> None:
        for part in self.parts:
            part.on_epoch_begin(ctx)

    def on_batch_begin(self, ctx: TrainingContext) -> None:
        for part in self.parts:
            part.on_batch_begin(ctx)

    def on_grad_computed(self, ctx: TrainingContext) -> None:
        for part in self.parts:
            part.on_grad_computed(ctx)

    def on_epoch_end(self, ctx: TrainingContext) -> None:
        for part in self.parts:
            part.on_epoch_end(ctx)


@hookimpl
def fusekit_weightings() -> dict[str, type]:
    return {"compose": CompositeWeighting}
