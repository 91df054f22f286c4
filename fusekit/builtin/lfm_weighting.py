"""LFM: learning the modality gap, as BalanceBenchmark implements it.

Yang, Wan, Jiang, Xu, "Facilitating Multimodal Classification via Dynamically Learning Modality
Gap", NeurIPS 2024. This module follows GeWu-Lab/BalanceBenchmark
(``balancemm/trainer/LFM_trainer.py``: ``Alignment``, ``getAlpha_Learnable``, ``fit``,
``training_step``; ``configs/trainer_config.yaml``: defaults), which the task names; the paper's
text and its official code were not available to us, so the equations are labelled (L1)-(L5)
and written from BalanceBenchmark's code.

Per training batch, with z_m ``(B, K)`` the unimodal logits, p_m = softmax(z_m), y ``(B,)``,
z ``(B, K)`` the fused logits and P the pairs j < l of modalities:

    (L1)  A(p, q) = ½ [KL(r ‖ p) + KL(r ‖ q)],  r = ½ (p + q),  KL summed over classes and
          averaged over the batch ("batchmean")                                      (scalar)
    (L2)  L_align = (1/|P|) Σ_{(j,l) ∈ P} A(p_j, p_l)
    (L3)  L = 2 (α_0 CE(z, y) + α_1 L_align)
    (L4)  once per epoch e, on a quarter of a fixed batch, L_tot = α_0 CE + α_1 L_align:
          γ = mean[(∇²_θ L_tot · ∇_θ CE)_{θ_0}],  the Hessian-vector product's entries for the
          network's first parameter tensor θ_0
    (L5)  η ← η / 2 if e > 0 and e mod 20 = 0;  α_1 ← clip(α_1 − η γ, 0.05, 0.95);  α_0 = 1 − α_1

with α = (0.95, 0.05) and η = ``lr_alpha`` = 1e-4 at the start of the fit (the config's). (L4)
is a one-step hypergradient of the classification loss with respect to the alignment weight:
the paper's "learning-based integration" of the two losses. θ_0 is the network's first trainable
parameter, the first modality's encoder's first weight (as in the code's model). Were it the
head's weight, γ would be 0: a softmax's Hessian sums to zero over the classes.

Differences between paper, code and this module, and the pick:

* The paper aligns the modalities with an unsupervised *contrastive* loss on their
  representations; BalanceBenchmark aligns their *predictions* with (L1). The task asks for
  BalanceBenchmark's method, so this follows the code. (L1) is not the Jensen-Shannon divergence
  (which is ½[KL(p ‖ r) + KL(q ‖ r)]): ``F.kl_div(p.log(), r)`` is KL(r ‖ p). Kept as the code.
* (L4) runs in the code on the first quarter of the first validation batch, the same batch every
  epoch, before the epoch's training. Here it runs on the first quarter of each epoch's first
  training batch, inside that batch's loss (no held-out data needed, so it works in ``partial_fit``
  and streamed fits too); with the defaults α moves by at most η |γ| per epoch either way.
* The code reads ``modulation_starts``/``modulation_ends`` and ``alpha``/``method`` from the
  config but never uses them (the loss (L3) applies from the first to the last epoch); they are
  not parameters here.
* Unimodal logits: ``unimodal="split_head"`` splits the concat head as the code does
  (z_m = h_m W_mᵀ + b / M, with gradient); ``"heads"`` uses the network's unimodal heads (any
  fusion); ``"auto"`` splits when the fusion is ``concat`` with a linear head.
* Missing modalities (the code has none): a pair's (L1) is the mean over rows where both are
  present (sample weights applied); a pair with no such row adds 0. (L3)'s factor 2α_0 scales the
  training task loss only (validation losses stay the plain mean, comparable across methods).
* Data-parallel: each process computes γ on the first quarter of its own shard and γ is averaged
  over the processes (``all_reduce``), so α is the same everywhere. That average is not the one
  process's γ on the doubled batch (the product of two row means is not a row mean); α moves by
  at most η|γ| per epoch, and the data-parallel test's two fits agree within its 1e-6. α is a
  buffer (``alpha``), the step size a plain attribute.
* Classification only (softmax predictions); regression is refused at ``build``.
"""

from __future__ import annotations

from itertools import combinations
from numbers import Real

import torch
from torch import Tensor
from torch.nn import functional as F

from fusekit.plugin import (
    BuildSpec,
    FusionOutput,
    Interval,
    LossContext,
    StrOptions,
    TrainingContext,
    Weighting,
    all_reduce,
    concat_head_logits,
    hookimpl,
    splits_concat_head,
    vector_size,
)

_UNIMODAL = ("auto", "split_head", "heads")
_ALPHA_RANGE = (0.05, 0.95)


def alignment_per_row(z_p: Tensor, z_q: Tensor) -> Tensor:
    """(L1) per row, ``(B,)``: ½ [KL(r ‖ p) + KL(r ‖ q)] with r = ½ (p + q), in float32."""
    log_p, log_q = F.log_softmax(z_p.float(), dim=1), F.log_softmax(z_q.float(), dim=1)
    r = 0.5 * (log_p.exp() + log_q.exp())
    kl_p = F.kl_div(log_p, r, reduction="none").sum(dim=1)  # KL(r ‖ p)
    kl_q = F.kl_div(log_q, r, reduction="none").sum(dim=1)
    return 0.5 * (kl_p + kl_q)


def alpha_step(alpha_align: Tensor, hypergradient: Tensor, lr_alpha: float) -> Tensor:
    """(L5): α_1 − η γ clipped to [0.05, 0.95], as a ``(2,)`` tensor (α_0, α_1)."""
    updated = (alpha_align - lr_alpha * hypergradient).clamp(*_ALPHA_RANGE)
    return torch.stack([1 - updated, updated])


class LFMWeighting(Weighting):
    """LFM: weigh classification against aligning unimodal predictions, the weight learned."""

    supported_tasks = ("classification",)

    #: Data-parallel: the hypergradient γ is averaged over the processes before α moves.
    data_parallel_safe = True

    parameter_constraints = {
        "lr_alpha": [Interval(Real, 0, None, closed="left")],
        "unimodal": [StrOptions(set(_UNIMODAL))],
    }

    def __init__(self, lr_alpha: float = 1e-4, unimodal: str = "auto") -> None:
        super().__init__()
        self.lr_alpha = lr_alpha
        self.unimodal = unimodal
        self.needs_unimodal_heads = unimodal != "split_head"

    def build(self, spec: BuildSpec) -> None:
        if spec.task != "classification":
            raise ValueError(f"lfm: needs a classification task (softmax), got {spec.task}")
        self.names = spec.names
        self.widths = [vector_size(spec.feature_shapes[m]) for m in spec.names]
        self.register_buffer("alpha", torch.tensor([0.95, 0.05]), persistent=False)  # (α_0, α_1)
        self.step_size = float(self.lr_alpha)  # η of (L5)
        self._split = self.unimodal == "split_head"
        self._update_pending = False

    def on_train_begin(self, ctx: TrainingContext) -> None:
        splittable = splits_concat_head(ctx.network)
        if self.unimodal == "split_head" and not splittable:
            raise ValueError(
                "lfm: unimodal='split_head' needs fusion='concat' (a linear head over the "
                f"concatenated features), got {type(ctx.network.fusion).__name__}. "
                "Use unimodal='heads'."
            )
        self._split = self.unimodal == "split_head" or (self.unimodal == "auto" and splittable)
        self.alpha.copy_(torch.tensor([0.95, 0.05]))
        self.step_size = float(self.lr_alpha)

    def on_epoch_begin(self, ctx: TrainingContext) -> None:
        if ctx.epoch > 0 and ctx.epoch % 20 == 0:
            self.step_size /= 2  # (L5)
        self._update_pending = True

    def _unimodal_logits(self, output: FusionOutput, network: object) -> list[Tensor]:
        if self._split and output.fused is not None:
            z = concat_head_logits(network, output.fused, self.widths)  # (B, M, K)
            return [z[:, position] for position in range(len(self.names))]
        if output.unimodal_logits is None:
            raise RuntimeError("lfm: unimodal='heads' but the network built no unimodal heads")
        return [output.unimodal_logits[m] for m in self.names]

    def _alignment(self, logits: list[Tensor], mask: Tensor, ctx: LossContext) -> Tensor:
        """(L2) over the rows where each pair is present."""
        pairs = list(combinations(range(len(logits)), 2))
        terms = [
            ctx.weighted_mean(alignment_per_row(logits[j], logits[l]), mask[:, j] & mask[:, l])
            for j, l in pairs
        ]
        return torch.stack(terms).mean()

    def task_loss(self, output: FusionOutput, ctx: LossContext) -> Tensor:
        loss = ctx.mean_loss(output.logits)
        if not ctx.training:
            return loss
        return 2 * self.alpha[0] * loss  # (L3), first half

    def loss_terms(self, output: FusionOutput, ctx: LossContext) -> dict[str, Tensor]:
        if not ctx.training:
            return {}
        logits = self._unimodal_logits(output, ctx.network)
        alignment = self._alignment(logits, output.mask, ctx)
        if self._update_pending:
            self._update_pending = False
            self._learn_alpha(output, ctx, logits)
        output.diagnostics["lfm_alpha"] = self.alpha.detach().clone()
        return {"lfm_alignment": 2 * self.alpha[1] * alignment}  # (L3), second half

    def _learn_alpha(self, output: FusionOutput, ctx: LossContext, logits: list[Tensor]) -> None:
        """(L4)-(L5) on the first quarter of this batch's rows (at least one)."""
        rows = max(1, output.logits.shape[0] // 4)
        target = ctx.target[:rows]
        classification = ctx.network.criterion.mean(output.logits[:rows], target)
        mask = output.mask[:rows]
        pairs = list(combinations(range(len(logits)), 2))
        alignment = torch.stack(
            [
                (alignment_per_row(logits[j][:rows], logits[l][:rows]) * (mask[:, j] & mask[:, l]))
                .sum()
                .div((mask[:, j] & mask[:, l]).sum().clamp(min=1))
                for j, l in pairs
            ]
        ).mean()
        alpha = self.alpha.detach()
        total = alpha[0] * classification + alpha[1] * alignment
        parameters = [p for p in ctx.network.parameters() if p.requires_grad]
        theta = torch.autograd.grad(total, parameters, create_graph=True, allow_unused=True)
        cls = torch.autograd.grad(classification, parameters, retain_graph=True, allow_unused=True)
        used = [
            (p, g, c)
            for p, g, c in zip(parameters, theta, cls, strict=True)
            if g is not None and c is not None and g.requires_grad
        ]
        if not used:
            return
        hvp = torch.autograd.grad(
            [g for _, g, _ in used],
            [p for p, _, _ in used],
            grad_outputs=[c for _, _, c in used],
            retain_graph=True,
            allow_unused=True,
        )
        first = hvp[0] if parameters[0] is used[0][0] and hvp[0] is not None else None
        gamma = first.mean() if first is not None else alpha.new_zeros(())
        gamma = all_reduce(gamma.detach().float(), "mean")
        self.alpha.copy_(alpha_step(alpha[1], gamma, self.step_size))
        output.diagnostics["lfm_hypergradient"] = gamma


@hookimpl
def fusekit_weightings() -> dict[str, type]:
    return {"lfm": LFMWeighting}
