"""Balanced multimodal learning against greedy learning ("greedy").

Wu, Jastrzębski, Cho, Geras, "Characterizing and Overcoming the Greedy Nature of Learning in
Multi-modal Deep Neural Networks", ICML 2022, arXiv:2202.05306. Official code:
nyukat/greedy_multimodal_learning (``src/callbacks.py``: ``Bias_Mitigation_Strong``;
``src/balanced_mmtm.py``: ``MMTM_mitigate``; ``src/model.py``: ``MMTM_MVCNN``; ``train.py``:
``blend_loss``; ``configs/training_guided.gin``: defaults). Also read: GeWu-Lab/BalanceBenchmark
(``balancemm/trainer/Greedy_trainer.py``, ``BaseClassifierGreedyModel`` and ``MMTM`` in
``balancemm/models/avclassify_model.py``, ``configs/trainer_config.yaml``). Only the paper's
abstract was available to us, so the equations are labelled (G1)-(G5), written from the official
code and the paper's definitions as the code implements them, not with the paper's numbers.

The paper's network has two branches φ_0, φ_1 (one per modality) joined by MMTM layers; φ_m's
prediction ŷ_m uses m directly and the other modality through its MMTM "bypass" parameters.
Per modality m, with θ_m the parameters of m's own branch and θ'_m those of the bypass into it:

    (G1)  u(m_i | m_j) = (A(ŷ) − A(ŷ without m_i)) / A(ŷ)       conditional utilisation rate
          (A = accuracy over the rows; scalar per ordered pair)
    (G2)  μ(θ; t) = Σ_{τ ≤ t} ‖∇_θ L(τ)‖² / ‖θ(τ)‖²              learning speed (scalar); the code
          sums both norms over the parameter group, one ratio per group and step
    (G3)  s(m_j | m_i; t) = log10(μ(θ'_i; t) / μ(θ_i; t))        conditional learning speed
    (G4)  d_speed(t) = s(m_1 | m_0; t) − s(m_0 | m_1; t)          (the code's ``BDR_0 − BDR_1``)
    (G5)  if |d_speed| > α at a regular step: the next Q steps are re-balancing steps for the
          slower modality c (c = 0 if d_speed > 0 else 1); then a regular step checks again.

Shapes here: features h_m ``(B, *shape_m)``, their running mean h̄_m ``(*shape_m)``, logits
``(B, K)``, targets ``(B,)``; μ, u and the re-balancing counts are ``(M,)``.

In a re-balancing step the official code replaces the MMTM excitation into branch c by its running
average (a constant, no gradient), so ŷ_c is learnt from modality c alone.

fusekit's networks have no branch-to-branch bypass: encoder m produces h_m and the modalities meet
only in the fusion. The mapping, and every choice:

* (G1): ``ŷ without m_i`` is a fusion-and-head pass (``network.fuse``) over the calibrated
  features with m_i's mask bit cleared (its features zeroed), in eval mode, without gradient, as
  AGM's coalitions; A(ŷ) is the same pass with the full mask. u(m|rest) ``(M,)`` is measured on
  every training batch (classification only, ``utilization=True``; M + 1 extra fuse passes) over
  the rows where m and another modality are present, recorded in ``utilization_rates`` and
  ``output.diagnostics["greedy_utilization"]``; NaN where undefined (no such rows, or A(ŷ) = 0).
  As in the paper it is a measurement only: it does not steer training (the abstract's reason
  for (G3): u "cannot be computed efficiently during training").
* (G2)/(G3): θ_m is modality m's encoder (``network.modality_parameters(m)``). The only path by
  which m_j's information reaches the fused prediction next to m_i is m_j's encoder, so θ'_i is
  read as θ_j and s(m_j | m_i) = log10(μ_j / μ_i). Then (G4) is d = 2·log10(μ_1 / μ_0): positive
  when modality 1 learns faster, and c = 0 is the slower modality, as in the code's direction.
  M > 2: d = 2·log10(μ_max / μ_min) over the modalities seen so far, c = the slowest.
* (G5), re-balancing step: every other modality's features are replaced (on their present rows)
  by their running mean over training batches, a detached constant, so only the slower
  modality's encoder (with the fusion, head and other components) is updated and the fused
  prediction must come from it, the analogue of the code's running-average excitation. The
  running mean is the code's cumulative mean of batch means, over training passes only (the code
  also updates it in evaluation passes) and over present rows.
* Data-parallel: μ reads the averaged gradients, and the presence of a modality and the running
  feature means are the global batch's, so every process re-balances the same steps alike (the
  utilisation rates, a measurement only, are each process's own).
* Timing follows ``Bias_Mitigation_Strong.on_backward_end``: the check runs after backward of a
  regular step (``on_grad_computed``), μ accumulates only at regular steps (and in warm-up), so
  the Q re-balancing steps are the Q batches after the trigger. ``warmup_epochs=1`` is the code's
  ``starting_epoch=2`` with its one-based epochs; α = 0.01 and Q = 5 are ``training_guided.gin``'s
  ``epsilon`` and ``curation_windowsize``.
* The code's loss is Σ_m CE(ŷ_m) over the branch heads (``blend_loss``); here it is the fused
  model's own task loss (BalanceBenchmark does the same with its concat head).
* Missing modalities: μ_m accumulates only in batches where m is present in some row (an absent
  modality's zero gradient is not evidence of slow learning); a modality never seen yet, or with
  μ = 0, is left out of (G4); fewer than two left: no re-balancing. Absent rows stay zero in a
  re-balancing step and are left out of the running means. A zero weight norm counts as no step.
* No modulation in evaluation or prediction, nor in extra passes other components make: only the
  first training pass over the batch announced by ``on_batch_begin`` is modulated.

Differences between the two codes: BalanceBenchmark uses α = 0.001 and no warm-up (its
``modulation_starts``/``modulation_ends`` choose between two identical calls, so they have no
effect), takes the loss on the fused concat output where the official code sums the two branch
heads' losses and predicts their mean, and resets its running averages at the start of every MMTM
forward (so, as stored, the first update reads a missing key); the official code updates the
second modality's running average from the first modality's excitation (``vis_out`` twice) and
sizes it by the first one's width. Both read ``parameter.grad`` of every parameter (an unused one
would fail); here parameters without a gradient are skipped. Here each modality keeps its own
mean. Not implemented: the official ``Bias_Mitigation_Random`` ablation (a random choice among
regular and the two re-balancing modes at every step).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
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
    expand_mask,
    global_present_mean,
    hookimpl,
)


def speed_increment(parameters: Iterable[torch.nn.Parameter]) -> float:
    """One step of (G2): Σ ‖∇θ‖² / Σ ‖θ‖² over the group (0 without gradients or weights)."""
    grad_norm = weight_norm = 0.0
    for parameter in parameters:
        if parameter.grad is None:
            continue
        grad_norm += float((parameter.grad.detach() ** 2).sum())
        weight_norm += float((parameter.detach() ** 2).sum())
    return grad_norm / weight_norm if weight_norm > 0 else 0.0


def speed_imbalance(speeds: Tensor) -> tuple[float, int | None]:
    """(G3)/(G4) from accumulated μ ``(M,)``: (d, index of the slower modality c).

    d = s(m_max | m_min) − s(m_min | m_max) = 2·log10(μ_max / μ_min) >= 0 over the modalities
    with μ > 0 (c = the one of lowest μ); ``(0.0, None)`` when fewer than two have.
    """
    seen = [(float(mu), position) for position, mu in enumerate(speeds.tolist()) if mu > 0]
    if len(seen) < 2:
        return 0.0, None
    slow, fast = min(seen), max(seen)
    return 2.0 * math.log10(fast[0] / slow[0]), slow[1]


@torch.no_grad()
def conditional_utilization_rates(
    network: NetworkView,
    features: dict[str, Tensor],
    mask: Tensor,
    target: Tensor,
    steps: dict[str, Tensor] | None = None,
) -> Tensor:
    """(G1) u(m | rest) ``(M,)`` from fuse passes with m removed; NaN where undefined."""
    with network.evaluating():
        full = network.fuse(features, mask, steps=steps).argmax(dim=1) == target  # (B,)
        rates = []
        for position in range(mask.shape[1]):
            without = mask.clone()
            without[:, position] = False
            rows = mask[:, position] & without.any(dim=1)  # (B,) m and another present
            removed = network.fuse(features, without, steps=steps).argmax(dim=1) == target
            accuracy = full[rows].float().mean() if rows.any() else torch.tensor(0.0)
            if accuracy > 0:
                rates.append(((accuracy - removed[rows].float().mean()) / accuracy).item())
            else:
                rates.append(math.nan)
    return torch.tensor(rates)


class GreedyWeighting(Weighting):
    """Greedy: re-balancing steps that train only the slower-learning modality's encoder."""

    needs_host_values = (
        "the state machine of Wu et al. decides on the host, every batch, whether and which "
        "modality the next steps re-balance, from the conditional learning speeds (gradient and "
        "weight norms read as floats)"
    )
    #: Data-parallel: μ from the averaged gradients, presence and running means from the global
    #: batch.
    data_parallel_safe = True

    parameter_constraints = {
        "alpha": [Interval(Real, 0, None, closed="left")],  # finite (Interval refuses inf)
        "window": [Interval(Integral, 1, None, closed="left")],
        "warmup_epochs": [Interval(Integral, 0, None, closed="left")],
        "utilization": ["boolean"],
    }

    def __init__(
        self,
        alpha: float = 0.01,
        window: int = 5,
        warmup_epochs: int = 1,
        utilization: bool = True,
    ) -> None:
        super().__init__()
        self.alpha = alpha
        self.window = window
        self.warmup_epochs = warmup_epochs
        self.utilization = utilization

    def build(self, spec: BuildSpec) -> None:
        self.names = spec.names
        self._classification = spec.task == "classification"
        # μ (G2): bookkeeping on the CPU in float64, as the code's Python floats
        self.speeds = torch.zeros(len(spec.names), dtype=torch.float64)
        self.register_buffer("mean_counts", torch.zeros(len(spec.names)))
        for position, name in enumerate(spec.names):
            self.register_buffer(f"feature_mean_{position}", torch.zeros(spec.feature_shapes[name]))
        self._reset()

    def _reset(self) -> None:
        self.slower: int | None = None  # c while re-balancing, else None
        self.rebalanced_steps = 0  # re-balancing steps done in the current window
        self.rebalanced_counts = [0] * len(self.names)  # re-balancing steps per modality, fit
        self.imbalance = 0.0  # d of the last check (G4)
        self.utilization_rates: Tensor | None = None  # (M,) u of the last training batch (G1)
        self._pending = False

    def feature_mean(self, position: int) -> Tensor:
        """Running mean of modality ``position``'s features over training batches."""
        return getattr(self, f"feature_mean_{position}")

    def on_train_begin(self, ctx: TrainingContext) -> None:
        self.speeds.zero_()
        self.mean_counts.zero_()
        for position in range(len(self.names)):
            self.feature_mean(position).zero_()
        self._reset()

    def on_batch_begin(self, ctx: TrainingContext) -> None:
        self._pending = True

    @torch.no_grad()
    def _update_means(self, features: dict[str, Tensor], mask: Tensor) -> None:
        for position, h in enumerate(features.values()):
            flat = h.detach().reshape(h.shape[0], -1)  # (B, F)
            # the mean over the present rows of the global batch (data-parallel: all processes')
            batch_mean, seen = global_present_mean(flat, mask[:, position, None].expand_as(flat))
            if not bool(seen[0]):
                continue
            step = self.mean_counts[position]
            batch_mean = batch_mean.view(h.shape[1:])
            mean = self.feature_mean(position)
            mean.copy_((batch_mean.to(mean.dtype) + mean * step) / (step + 1))
            self.mean_counts[position] += 1

    def reweight(
        self, features: dict[str, Tensor], mask: Tensor, output: FusionOutput
    ) -> dict[str, Tensor]:
        if not (self.training and self._pending):
            return features
        self._pending = False
        slower = self.slower
        self._update_means(features, mask)
        if slower is None:
            return features
        output.diagnostics["greedy_rebalancing"] = self.names[slower]
        replaced = {}
        for position, (name, h) in enumerate(features.items()):
            if position == slower:
                replaced[name] = h
                continue
            constant = self.feature_mean(position).to(h.dtype).expand_as(h)
            replaced[name] = constant * expand_mask(mask[:, position].to(h.dtype), h)
        return replaced

    def loss_terms(self, output: FusionOutput, ctx: LossContext) -> dict[str, Tensor]:
        if ctx.training and self.utilization and self._classification:
            rates = conditional_utilization_rates(
                ctx.network, output.calibrated, output.mask, ctx.target, output.steps
            )
            self.utilization_rates = rates
            output.diagnostics["greedy_utilization"] = rates
        return {}

    @torch.no_grad()
    def on_grad_computed(self, ctx: TrainingContext) -> None:
        if self.slower is not None:  # a re-balancing step: μ is not accumulated (G5)
            self.rebalanced_steps += 1
            self.rebalanced_counts[self.slower] += 1
            if self.rebalanced_steps >= int(self.window):
                self.slower = None
            return
        present = None  # (M,): modalities present in the (global) batch
        if ctx.batch is not None:
            present = ctx.all_reduce(ctx.batch.mask.any(dim=0).to(torch.float32), "max") > 0
        for position, name in enumerate(self.names):
            if present is None or bool(present[position]):
                self.speeds[position] += speed_increment(ctx.network.modality_parameters(name))
        self.imbalance, slower = speed_imbalance(self.speeds)
        unlocked = ctx.epoch >= int(self.warmup_epochs)
        if unlocked and slower is not None and self.imbalance > float(self.alpha):
            self.slower, self.rebalanced_steps = slower, 0


@hookimpl
def fusekit_weightings() -> dict[str, type]:
    return {"greedy": GreedyWeighting}
