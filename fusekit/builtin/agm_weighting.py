"""Adaptive Gradient Modulation (AGM).

Li, Li, Hu, Lei, Li, Zhou, "Boosting Multi-modal Model Performance with Adaptive Gradient
Modulation", ICCV 2023, arXiv:2308.07686. Reference code: lihong2303/AGM_ICCV2023
(``run/CREMAD_main.py`` for two modalities, ``run/URFunny_main.py`` for three; ``GradMod``,
``Modality_Audio``/``Modality_Visual`` in ``model/``).

Per training batch, with v(S) ``(B, K)`` the fused logits when only the modalities in S are
present (``network.fuse`` on the calibrated features with mask ∧ S, features outside S zeroed,
eval mode, no gradient; v(N) = the pass's own logits) and N the M modalities:

    (Shapley)  φ_m = Σ_{S ⊆ N∖{m}} |S|! (M − |S| − 1)! / M! · (v(S ∪ {m}) − v(S)),  v(∅) = 0
               the mono-modal response of modality m                               ``(B, K)``
    (score)    s_m = mean_i min(ℓ(φ_m,i, y_i), −log 1e-8)                           ``(M,)``
               (ℓ = cross-entropy, i.e. −log p(y_i) with p floored at 1e-8; MSE for regression)
    (ratio)    r_m = exp(M/(M−1) · (mean_j s_j − s_m))
    (target)   η_m = exp(M/(M−1) · (mean_j ŝ_j − ŝ_m)),   ŝ_m the running mean of s_m over the
               training iterations *before* this batch (0 at the start)
    (coeff)    k_m = exp(α · min(η_m − r_m, c_M)),   c_2 = 10, c_M = 7 for M ≥ 3
    (update)   ŝ_m ← ŝ_m · (t − 1)/t + s_m / t     (after k is computed; t = iterations so far)

For two modalities the ratio is the code's ``ratio_a = exp(s_v − s_a)``, ``optimal_ratio_a =
exp(ŝ_v − ŝ_a)``, ``coeff_a = exp(α·min(optimal_ratio_a − ratio_a, 10))``; for three,
``ratio_m = exp((mean − s_m)·3/2)`` with cap 7. A modality whose loss is *above* the mean (the
weaker one) has r_m < 1, so k_m > 1 when it also lags its own running average: the weak
modality's gradients are amplified, the strong one's damped. The cap c_M is the one of the
authors' script for that number of modalities: 10 in the capped two-modality script (CREMA-D;
the AVE, AV-MNIST and MOSEI scripts have no cap), 7 in the three-modality one (UR-Funny). M here
is the number of modalities present in the batch. BalanceMM's ``AGM_trainer.py`` writes the
exponent as (s_m − mean), the opposite direction; this module follows the authors' code.

Between backward and the optimiser step, in epochs ``start_epoch ≤ epoch ≤ end_epoch``, every
gradient of modality m's encoder with at least ``min_param_dim`` dimensions (weights, not
biases: "len(grad.size()) != 1" in the code) is multiplied by k_m. Fusion and head are never
modulated. The running means ŝ are updated on every training batch, in the window or not.

Default α = 1.0, the authors' ``utils/config.py`` default (fusekit used 0.1 before; on UCI
Multiple Features 0.1, 1.0 and 2.5 score alike: ``benchmarks/results/agm_alpha.md``).

Choices where the paper is silent, following the official code: v(∅) = 0 (its two- and
three-modality formulas never subtract the all-padded output), and the official gradient-norm
clipping of the head is left to the user (skorch's ``GradientNormClipping`` callback).
Per-branch modulation of the encoder gradients (BalanceMM) replaces the official backward hooks
on the mono-modal outputs, so it works with any fusion, not only late fusion.
Cost: 2^M − 2 extra ``fuse`` passes per batch (fusion and head only, no encoders).

Data-parallel (``docs/scaling.md``): s_m and the availability of m are taken over the global
batch (every process's rows), so k and ŝ agree across processes and equal one process's with the
whole batch.

Missing modalities: a sample's masked passes keep its absent modalities absent; s_m averages over
the rows where m is present; a modality absent from the whole batch gets k = 1, no update of ŝ_m,
and is left out of the means and of M in M/(M−1) and c_M (fewer than two available: all k = 1).
"""

from __future__ import annotations

import math
from itertools import combinations
from numbers import Integral, Real

import torch
from torch import Tensor

from fusekit.plugin import (
    BuildSpec,
    FusionOutput,
    Interval,
    LossContext,
    NetworkView,
    TrainingContext,
    Weighting,
    check_window,
    expand_mask,
    global_present_mean,
    hookimpl,
    in_window,
)

#: ``min(η − r, cap)`` in the exponent of k: 10 for two modalities (``run/CREMAD_main.py``),
#: 7 for three or more (``run/URFunny_main.py``).
MAX_GAP_TWO = 10.0
MAX_GAP_MANY = 7.0
#: Per-sample losses are capped at −log(1e-8), as the code caps the probability at 1e-8.
MAX_LOSS = -math.log(1e-8)


def shapley_responses(values: dict[frozenset[int], Tensor], n_modalities: int) -> Tensor:
    """Shapley values φ_m from coalition outputs: ``{S: (B, K)}`` for every non-empty S ->
    ``(M, B, K)``; v(∅) = 0."""
    full = values[frozenset(range(n_modalities))]
    responses = []
    for m in range(n_modalities):
        others = [j for j in range(n_modalities) if j != m]
        phi = torch.zeros_like(full)
        for size in range(n_modalities):
            weight = (
                math.factorial(size)
                * math.factorial(n_modalities - size - 1)
                / math.factorial(n_modalities)
            )
            for coalition in combinations(others, size):
                without = frozenset(coalition)
                with_m = values[without | {m}]
                phi = phi + weight * (with_m - (values[without] if without else 0.0))
        responses.append(phi)
    return torch.stack(responses)  # (M, B, K)


@torch.no_grad()
def coalition_logits(
    network: NetworkView,
    features: dict[str, Tensor],
    mask: Tensor,
    full: Tensor,
    steps: dict[str, Tensor] | None = None,
) -> dict[frozenset[int], Tensor]:
    """v(S) ``(B, K)`` for every non-empty coalition S of mask columns; v(N) = ``full``.

    The features of the modalities outside S are zeroed, so the fusion sees them as absent;
    ``steps`` (the pass's real-step masks) keep padded steps out of the sequences' pooling.
    """
    n = mask.shape[1]
    was_training = network.training
    network.eval()
    values = {frozenset(range(n)): full.detach()}
    for size in range(1, n):
        for coalition in combinations(range(n), size):
            keep = torch.zeros(n, dtype=torch.bool, device=mask.device)
            keep[list(coalition)] = True
            coalition_mask = mask & keep  # (B, M)
            zeroed = {  # fusion expects absent rows as zeros, as the network's own pass gives
                name: value * expand_mask(coalition_mask[:, position], value)
                for position, (name, value) in enumerate(features.items())
            }
            values[frozenset(coalition)] = network.fuse(zeroed, coalition_mask, steps=steps)
    network.train(was_training)
    return values


def max_gap(n_modalities: int) -> float:
    """The cap c_M on η − r: two-modality cap if M = 2, else the three-modality cap."""
    return MAX_GAP_TWO if n_modalities == 2 else MAX_GAP_MANY


def modulation_coefficients(
    scores: Tensor, running: Tensor, available: Tensor, alpha: float
) -> Tensor:
    """k_m = exp(α · min(η_m − r_m, c_M)) from ``(M,)`` batch scores s and running means ŝ.

    ``running`` must hold ŝ from before this batch; absent modalities get k = 1.
    """
    # tensor ops throughout (no `int(available.sum())`): the count stays on the device
    n = available.sum().to(scores.dtype)
    scale = n / (n - 1).clamp(min=1)
    batch_mean = torch.where(available, scores, 0).sum() / n.clamp(min=1)
    running_mean = torch.where(available, running, 0).sum() / n.clamp(min=1)
    ratio = torch.exp(scale * (batch_mean - scores))  # r_m
    target = torch.exp(scale * (running_mean - running))  # η_m
    gap = torch.where(n == 2, MAX_GAP_TWO, MAX_GAP_MANY).to(scores.dtype)  # c_M
    coefficients = torch.exp(alpha * torch.minimum(target - ratio, gap))
    return torch.where(available & (n >= 2), coefficients, torch.ones_like(coefficients))


class AGMWeighting(Weighting):
    """AGM: Shapley mono-modal responses from masked passes drive per-encoder gradient scales."""

    #: The scores s_m are means over the global batch (``global_present_mean``), so k and ŝ are
    #: the same in every process; the modulation edits the averaged gradients.
    data_parallel_safe = True
    parameter_constraints = {
        "alpha": [Interval(Real, 0, None, closed="left")],
        "start_epoch": [Interval(Integral, 0, None, closed="left")],
        "end_epoch": [
            Interval(Integral, 0, None, closed="left"),
            None,
        ],  # >= start_epoch: checked in build
        "min_param_dim": [Interval(Integral, 0, None, closed="left")],
    }

    def __init__(
        self,
        alpha: float = 1.0,
        start_epoch: int = 0,
        end_epoch: int | None = None,
        min_param_dim: int = 2,
    ) -> None:
        super().__init__()
        self.alpha = alpha
        self.start_epoch = start_epoch
        self.end_epoch = end_epoch
        self.min_param_dim = min_param_dim

    def build(self, spec: BuildSpec) -> None:
        check_window("agm", self.start_epoch, self.end_epoch)
        self.names = spec.names
        self.register_buffer("running_scores", torch.zeros(len(spec.names)))  # ŝ (M,)
        self.register_buffer("score_counts", torch.zeros(len(spec.names)))  # t per modality
        self.coefficients: Tensor | None = None  # (M,) k of the last training batch

    def on_train_begin(self, ctx: TrainingContext) -> None:
        self.running_scores.zero_()
        self.score_counts.zero_()
        self.coefficients = None

    def loss_terms(self, output: FusionOutput, ctx: LossContext) -> dict[str, Tensor]:
        if not ctx.training:
            return {}
        mask = output.mask  # (B, M)
        values = coalition_logits(ctx.network, output.calibrated, mask, output.logits, output.steps)
        with torch.no_grad():
            responses = shapley_responses(values, len(self.names))  # (M, B, K)
            losses = torch.stack(
                [
                    ctx.per_sample_loss(responses[p]).clamp(max=MAX_LOSS)
                    for p in range(len(self.names))
                ],
                dim=1,
            )  # (B, M)
            # s_m and availability over the global batch: the same k in every process
            scores, available = global_present_mean(losses, mask)  # (M,), (M,)
            self.coefficients = modulation_coefficients(
                scores, self.running_scores, available, float(self.alpha)
            )
            counts = self.score_counts + available.to(scores.dtype)
            updated = self.running_scores * (counts - 1) / counts.clamp(min=1)
            updated = updated + scores / counts.clamp(min=1)
            self.running_scores.copy_(torch.where(available, updated, self.running_scores))
            self.score_counts.copy_(counts)
        output.diagnostics["agm_responses"] = responses
        return {}

    @torch.no_grad()
    def on_grad_computed(self, ctx: TrainingContext) -> None:
        if self.coefficients is None:
            return
        if in_window(ctx.epoch, self.start_epoch, self.end_epoch):
            for position, name in enumerate(self.names):
                for parameter in ctx.network.modality_parameters(name):
                    if parameter.grad is not None and parameter.dim() >= int(self.min_param_dim):
                        parameter.grad.mul_(self.coefficients[position])
        self.coefficients = None


@hookimpl
def fusekit_weightings() -> dict[str, type]:
    return {"agm": AGMWeighting}
