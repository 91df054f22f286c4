"""Gradient-Blending (G-Blending).

Wang, Tran, Feiszli, "What Makes Training Multi-modal Classification Networks Hard?", CVPR 2020,
arXiv:1905.12681. Reference code: MultiBench ``training_structures/gradient_blend.py``
(``gb_estimate``, ``calcweight``); BalanceMM ``GBlending_trainer.py``.

The loss blends the fused head and every unimodal head, k ∈ {fused, m_1, ..., m_M}:

    L = Σ_k w_k · L_k,    L_k = mean task loss of head k over the training part T

Every ``super_epoch`` epochs (starting at epoch 0) the weights are re-estimated. For each head k a
deep copy of the current network is trained for ``estimate_epochs`` epochs on T with L_k alone,
and its losses on T and on a held-out part V (``validation_fraction`` of the training rows, drawn
once at ``on_train_begin``) are measured before (N) and after (N + n):

    (Def. 1)  O_N = L^V_N − L^T_N,   ΔO = O_{N+n} − O_N,   ΔG = L^V_N − L^V_{N+n}
    (Eq. 6)   w_k = (1/Z) · |ΔG_k| / ΔO_k²,   Z = Σ_k |ΔG_k| / ΔO_k²

|·| as in both reference codes (``abs(G / O**2)``); ΔO² is floored at 1e-12. The held-out rows V
never enter the main loss (their per-sample weight is 0, found by ``batch.index``), so V stays
held out as the paper requires. Before the first estimate w is uniform. Missing modalities: L_m
averages over the rows where m is present; a modality absent from all of V gets w = 0.
"""

from __future__ import annotations

from numbers import Integral, Real

import torch
from torch import Tensor

from fusekit.plugin import (
    BuildSpec,
    FusionOutput,
    Interval,
    LossContext,
    ModalityBatch,
    NetworkView,
    TrainingContext,
    Weighting,
    hookimpl,
    present_mean,
)


def blending_weights(delta_generalisation: Tensor, delta_overfitting: Tensor) -> Tensor:
    """Eq. (6): ``(H,)`` ΔG and ΔO per head -> ``(H,)`` weights |ΔG| / ΔO², normalised."""
    raw = delta_generalisation.abs() / (delta_overfitting**2).clamp(min=1e-12)
    total = raw.sum()
    if not torch.isfinite(total) or total <= 0:
        return torch.full_like(raw, 1.0 / raw.numel())
    return raw / total


def generalisation_and_overfitting(
    before_train: Tensor, before_holdout: Tensor, after_train: Tensor, after_holdout: Tensor
) -> tuple[Tensor, Tensor]:
    """Def. 1: losses on T and V before (N) and after (N + n) training -> (ΔG, ΔO).

    O = L^V − L^T; ΔG = L^V_N − L^V_{N+n}; ΔO = O_{N+n} − O_N. Any matching shapes.
    """
    delta_generalisation = before_holdout - after_holdout
    delta_overfitting = (after_holdout - after_train) - (before_holdout - before_train)
    return delta_generalisation, delta_overfitting


def head_losses(network: NetworkView, batch: ModalityBatch, target: Tensor) -> Tensor:
    """``(H,)`` per-sample-mean losses of the fused head and each unimodal head (present rows)."""
    outputs = [network(batch.take(slice(i, i + 1024))) for i in range(0, len(batch), 1024)]
    fused = torch.cat([output.logits for output in outputs])
    losses = [network.criterion.per_sample(fused, target).mean()]
    for position, name in enumerate(network.names):
        logits = torch.cat([output.unimodal_logits[name] for output in outputs])
        present = batch.mask[:, position]
        losses.append(present_mean(network.criterion.per_sample(logits, target), present))
    return torch.stack(losses)


class GradientBlendingWeighting(Weighting):
    """G-Blending: fused and unimodal losses weighted by generalisation / overfitting²."""

    #: The held-out split and its side training run on one process's view; the blending weights
    #: would be estimated differently in each process.
    data_parallel_safe = False

    needs_unimodal_heads = True
    needs_all_training_rows = True  # V is held out of all training rows, once

    parameter_constraints = {
        "super_epoch": [Interval(Integral, 1, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "estimate_epochs": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self, super_epoch: int = 5, validation_fraction: float = 0.1, estimate_epochs: int = 3
    ) -> None:
        super().__init__()
        self.super_epoch = super_epoch
        self.validation_fraction = validation_fraction
        self.estimate_epochs = estimate_epochs

    def build(self, spec: BuildSpec) -> None:
        self.names = spec.names
        heads = len(spec.names) + 1
        self.register_buffer("blend_weights", torch.full((heads,), 1.0 / heads))  # (M + 1,)
        # (N,) bool, True = held-out row: a buffer so that it follows the network's .to(); not
        # saved (training state, sized by the training rows)
        self.register_buffer("holdout", None, persistent=False)

    def on_train_begin(self, ctx: TrainingContext) -> None:
        if ctx.data is None or ctx.data.target is None:
            raise RuntimeError("gradient_blending: needs the training rows (ctx.data)")
        n = len(ctx.data)
        n_holdout = round(float(self.validation_fraction) * n)
        if n_holdout < 1 or n - n_holdout < 1:
            raise ValueError(
                f"gradient_blending: validation_fraction={self.validation_fraction} of {n} rows "
                f"leaves {n_holdout} held-out and {n - n_holdout} training rows; both must be >= 1"
            )
        order = torch.randperm(n, generator=torch.Generator().manual_seed(_draw_seed()))
        self.holdout = torch.zeros(n, dtype=torch.bool, device=ctx.data.inputs.mask.device)
        self.holdout[order[:n_holdout]] = True
        self.blend_weights.fill_(1.0 / self.blend_weights.numel())

    def on_epoch_begin(self, ctx: TrainingContext) -> None:
        if ctx.epoch % int(self.super_epoch) == 0:
            self.blend_weights.copy_(self.estimate(ctx))

    def estimate(self, ctx: TrainingContext) -> Tensor:
        """``(M + 1,)`` weights from ``estimate_epochs`` of training copies of the network."""
        inputs, target = ctx.data.inputs, ctx.data.target
        train_rows, holdout_rows = (~self.holdout).nonzero()[:, 0], self.holdout.nonzero()[:, 0]
        train, holdout = inputs.take(train_rows), inputs.take(holdout_rows)
        train_target, holdout_target = target[train_rows], target[holdout_rows]
        generator = torch.Generator().manual_seed(_draw_seed())
        batch_size = ctx.batch_size if ctx.batch_size > 0 else len(train)
        delta_g, delta_o = [], []
        for head in range(len(self.names) + 1):
            model = ctx.network.copy()
            with torch.no_grad():
                model.eval()
                before_train = head_losses(model, train, train_target)[head]
                before_holdout = head_losses(model, holdout, holdout_target)[head]
            optimiser = ctx.loop.optimizer_class(model.parameters(), lr=ctx.loop.lr)
            model.train()
            for _ in range(int(self.estimate_epochs)):
                order = torch.randperm(len(train), generator=generator).to(train_target.device)
                for start in range(0, len(train), batch_size):
                    rows = order[start : start + batch_size]
                    output = model(train.take(rows))
                    loss = _head_loss(model, output, train_target[rows], head)
                    optimiser.zero_grad()
                    loss.backward()
                    optimiser.step()
            with torch.no_grad():
                model.eval()
                after_train = head_losses(model, train, train_target)[head]
                after_holdout = head_losses(model, holdout, holdout_target)[head]
            gain, overfit = generalisation_and_overfitting(
                before_train, before_holdout, after_train, after_holdout
            )
            delta_g.append(gain)
            delta_o.append(overfit)
        weights = blending_weights(torch.stack(delta_g), torch.stack(delta_o))
        absent = ~holdout.mask.any(dim=0)  # modalities never present in V
        weights[1:][absent] = 0.0
        return weights / weights.sum().clamp(min=1e-12)

    def task_loss(self, output: FusionOutput, ctx: LossContext) -> Tensor:
        keep = torch.ones_like(output.mask[:, 0])  # (B,) rows that count
        if ctx.training and self.holdout is not None and ctx.batch.index is not None:
            keep = ~self.holdout[ctx.batch.index]
        fused = ctx.weighted_mean(ctx.per_sample_loss(output.logits), keep)
        total = self.blend_weights[0] * fused
        for position, name in enumerate(self.names):
            losses = ctx.per_sample_loss(output.unimodal_logits[name])
            present = keep & output.mask[:, position]
            total = total + self.blend_weights[position + 1] * ctx.weighted_mean(losses, present)
        return total


def _head_loss(network: NetworkView, output: FusionOutput, target: Tensor, head: int) -> Tensor:
    if head == 0:
        return network.criterion.per_sample(output.logits, target).mean()
    name = network.names[head - 1]
    losses = network.criterion.per_sample(output.unimodal_logits[name], target)
    return present_mean(losses, output.mask[:, head - 1])


def _draw_seed() -> int:
    """A seed from torch's global generator (seeded by the estimator's ``random_state``)."""
    return int(torch.randint(0, 2**31 - 1, (1,)).item())


@hookimpl
def fusekit_weightings() -> dict[str, type]:
    return {"gradient_blending": GradientBlendingWeighting}
