"""Multimodal Learning with Alternating unimodal adaptation (MLA).

Zhang, Latham, Yao, "Multimodal Representation Learning by Alternating Unimodal Adaptation",
CVPR 2024, arXiv:2311.10707. Reference code: BalanceMM ``MLA_trainer.py`` (``GSPlugin``,
``MLATrainer.training_step``).

A head W ``(K, d)``, b shared by all modalities replaces the fusion plugin's output:
z_m = W a_m(h_m) + b ``(B, K)``, h_m pooled with ``as_vector`` and a_m an adapter to the shared
width d (identity when every modality already has width d; a ``Linear(D_m, d)`` otherwise,
d = ``shared_dim`` or the widest modality; our addition, the paper's encoders share one width).

Training (alternating unimodal adaptation): each optimiser step trains one modality m, in turn,
on L_m = mean_i CE(z_m,i, y_i) through the shared head; fusion plugin and its head get no gradient.
Gradient modification of the shared head against forgetting the previous modalities
(orthogonal-weight-modification style, as in the reference ``GSPlugin``), from the second step on:

    r = mean_i a_m(h_m,i)  ``(1, d)``  (this step's head inputs),   q = P rᵀ  ``(d, 1)``
    P ← P − q qᵀ / (α_t + r q),   P ← P / ‖P‖_F,   α_t = 0.1^(1 + batch / n_batches)
    ∇W ← ∇W + ∇W Pᵀ                                            (P ``(d, d)``, I at the start)

(batch: unimodal steps taken so far in this epoch; n_batches = ⌈training rows / batch size⌉,
the rows held out for validation not counted.)

Inference (test-time uncertainty-based fusion), per sample, over the present modalities:

    e_m = −Σ_k p_m,k log p_m,k,   p_m = softmax(z_m)                           ``(B,)``
    λ_m = exp(max_j e_j − e_m) / Σ_l exp(max_j e_j − e_l)                      ``(B,)``
    z = Σ_m λ_m z_m                                                             ``(B, K)``

(λ = softmax(−e) over the present modalities; the ``max`` only shifts the exponent.)

Choices: the paper cycles through all M modalities inside each batch (M optimiser steps per
batch); fusekit's loop takes one step per batch, so the cycle spans M consecutive batches (each
modality is trained on every M-th batch). The P update normalises by the Frobenius norm and adds
the modified gradient, as the reference code does (a pure projection ∇W P with the unnormalised
update drives P, hence the head's gradient, to zero over thousands of steps). Weights λ combine
logits, not probabilities. Missing modalities: the turn skips a modality absent from the whole
batch; L_m and r average over the rows where m is present; absent modalities get λ = 0 (a sample
with none present gets zero logits). The loss on validation batches is CE of the fused z.
Classification only. Data-parallel: the turn skips a modality absent from the *global* batch, r
averages over its present rows, and n_batches counts the steps of one process, so every process
trains the same modality and updates P alike.
"""

from __future__ import annotations

import math
from numbers import Integral

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from fusekit.plugin import (
    BuildSpec,
    FusionOutput,
    Interval,
    LossContext,
    TrainingContext,
    Weighting,
    all_reduce,
    as_vector,
    global_present_mean,
    hookimpl,
    present_softmax,
    vector_size,
)


def entropy_weights(logits: Tensor, mask: Tensor) -> Tensor:
    """λ ``(B, M)`` from per-modality logits ``(B, M, K)``: softmax of −entropy over present m."""
    log_probabilities = F.log_softmax(logits.float(), dim=-1)  # float32 (mixed precision)
    entropy = -(log_probabilities.exp() * log_probabilities).sum(dim=-1)  # (B, M)
    return present_softmax(-entropy, mask)


def update_projector(projector: Tensor, inputs_mean: Tensor, alpha: float) -> Tensor:
    """P ← (P − q qᵀ / (α + r q)) / ‖·‖_F with q = P rᵀ, for ``(d, d)`` P and ``(1, d)`` r."""
    q = projector @ inputs_mean.T  # (d, 1)
    updated = projector - (q @ q.T) / (alpha + inputs_mean @ q)  # (d, d)
    return updated / updated.norm(p="fro").clamp(min=1e-12)


def batches_per_epoch(ctx: TrainingContext) -> int:
    """n_batches of α_t: ⌈training rows / batch size⌉ (rows held out for validation excluded).

    1 when the loop or the row count is unknown (hooks called outside training) and when one
    batch holds every row (``batch_size <= 0``). A streamed fit gives the count without the rows.
    """
    rows = ctx.n_train_rows
    if rows is None or ctx.loop is None or ctx.batch_size <= 0:
        return 1
    # data-parallel: each step takes batch_size rows in each of the processes
    return max(1, math.ceil(rows // ctx.world_size / ctx.batch_size))


class MLAWeighting(Weighting):
    """MLA: alternating unimodal training through a shared head, entropy-weighted fusion."""

    supported_tasks = ("classification",)
    parameter_constraints = {"shared_dim": [Interval(Integral, 1, None, closed="left"), None]}

    needs_host_values = (
        "each step trains one modality, the next one present in the batch: which head's loss and "
        "which encoder's projector update the step builds is a Python choice"
    )
    #: Data-parallel: the turn and r from the global batch; P and the turn agree across processes.
    data_parallel_safe = True

    def __init__(self, shared_dim: int | None = None) -> None:
        super().__init__()
        self.shared_dim = shared_dim

    def build(self, spec: BuildSpec) -> None:
        if spec.task != "classification":
            raise ValueError(f"mla: needs a classification task (entropy fusion), got {spec.task}")
        widths = [vector_size(spec.feature_shapes[m]) for m in spec.names]
        width = int(self.shared_dim or max(widths))
        self.names = spec.names
        self.adapters = nn.ModuleList(
            [nn.Identity() if w == width else nn.Linear(w, width) for w in widths]
        )
        self.shared_head = nn.Linear(width, spec.n_outputs)
        self.register_buffer("projector", torch.eye(width))  # P (d, d)
        self.turn = 0  # mask column of the modality the next training step trains
        self.steps_done = 0  # unimodal steps taken in this fit
        self.current: int | None = None  # modality trained by the current batch
        self.inputs_mean: Tensor | None = None  # r (1, d) of the current batch
        self.batch_in_epoch = 0
        self.batches_per_epoch = 1

    def on_train_begin(self, ctx: TrainingContext) -> None:
        self.projector.copy_(torch.eye(self.projector.shape[0], device=self.projector.device))
        self.turn, self.steps_done, self.current, self.inputs_mean = 0, 0, None, None
        self.batch_in_epoch, self.batches_per_epoch = 0, 1

    def on_epoch_begin(self, ctx: TrainingContext) -> None:
        """Restart the batch counter of α_t and count this epoch's batches."""
        self.batch_in_epoch = 0
        self.batches_per_epoch = batches_per_epoch(ctx)

    def shared_inputs(self, features: dict[str, Tensor], steps: dict[str, Tensor]) -> list[Tensor]:
        """a_m(as_vector(h_m)) for every modality: M x ``(B, d)``."""
        return [
            adapter(as_vector(features[m], steps.get(m)))
            for adapter, m in zip(self.adapters, self.names, strict=True)
        ]

    def reweight(
        self, features: dict[str, Tensor], mask: Tensor, output: FusionOutput
    ) -> dict[str, Tensor]:
        inputs = self.shared_inputs(features, output.steps)
        output.diagnostics["mla_inputs"] = inputs
        output.diagnostics["mla_logits"] = torch.stack(
            [self.shared_head(x) for x in inputs], dim=1
        )  # (B, M, K)
        return features

    def adjust_logits(self, output: FusionOutput) -> Tensor:
        logits = output.diagnostics.get("mla_logits")
        if logits is None:
            return output.logits
        weights = entropy_weights(logits, output.mask)  # (B, M)
        output.modality_weights = weights
        return (weights.unsqueeze(-1) * logits).sum(dim=1)  # (B, K)

    def next_present(self, mask: Tensor) -> int | None:
        """The first modality from ``turn`` on (cyclically) present in some row of the batch
        (of the global batch, under data parallelism)."""
        available = all_reduce(mask.any(dim=0).to(torch.float32), "max") > 0
        for offset in range(len(self.names)):
            position = (self.turn + offset) % len(self.names)
            if available[position]:
                return position
        return None

    def task_loss(self, output: FusionOutput, ctx: LossContext) -> Tensor:
        if not ctx.training:
            return ctx.weighted_mean(ctx.per_sample_loss(output.logits))
        position = self.next_present(output.mask)
        if position is None:  # nothing present in the batch: no step
            return output.logits.sum() * 0.0
        present = output.mask[:, position]
        logits = output.diagnostics["mla_logits"][:, position]  # (B, K)
        inputs = output.diagnostics["mla_inputs"][position].detach()  # (B, d)
        self.current = position
        # r over the global batch's present rows: the same P update in every process
        rows = present[:, None].expand_as(inputs)
        self.inputs_mean = global_present_mean(inputs, rows)[0].unsqueeze(0)  # (1, d)
        return ctx.weighted_mean(ctx.per_sample_loss(logits), present)

    @torch.no_grad()
    def on_grad_computed(self, ctx: TrainingContext) -> None:
        if self.current is None:
            return
        gradient = self.shared_head.weight.grad  # (K, d)
        if self.steps_done > 0 and gradient is not None:
            alpha = 0.1 ** (1 + self.batch_in_epoch / self.batches_per_epoch)
            self.projector.copy_(update_projector(self.projector, self.inputs_mean, alpha))
            gradient.add_(gradient @ self.projector.T)
        self.steps_done += 1
        self.batch_in_epoch += 1
        self.turn = (self.current + 1) % len(self.names)
        self.current, self.inputs_mean = None, None


@hookimpl
def fusekit_weightings() -> dict[str, type]:
    return {"mla": MLAWeighting}
