"""VGMR's auxiliary losses: L = L_task + λ_v L_value + λ_r L_reg (paper §3.8, Eq. L and Δ).

The paper gives the removal contribution

    (Δ)  Δ_m = ℓ(f({X̃_o}_{o ≠ m}), y) − ℓ(f({X̃_o}_{o ∈ M}), y)

and says g_m and Avg(p_m) are "aligned" with Δ_m and that L_reg keeps the value scores from
collapsing to constants. It gives neither form nor λ_v, λ_r; ours (spec §6 A1–A4):

- Δ_m per sample, ℓ = the network's per-sample task loss, computed without gradient (a target).
  "Removing" m reruns weighting + fusion + head (``network.fuse``) on the full pass's refined
  features with m's mask column cleared and its features zeroed: VGMR is not rerun, as Eq. Δ
  literally reuses X̃_o.
- target t_m = σ(Δ_m / τ) ("signed", the default) or tanh(|Δ_m| / 2τ) ("abs").
- L_value = mean over present (sample, modality) pairs of (g_m − t_m)² + (Avg_c p_m − t_m)².
  Samples where m is absent (Δ_m = 0 by construction) are left out.
- L_reg = Σ_m [relu(γ − std_b g_m) + relu(γ − std_b Avg_c p_m) + (mean G_m − 0.5)²] over the
  samples where m is present (std terms need two of them; mean G over real steps).
- λ_v = 0.1, λ_r = 0.01; both terms are added on training batches only.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fusekit.plugin import FusionOutput, LossContext
from fusekit_vgmr.signals import RefinerSignals

VALUE_TARGETS = ("signed", "abs")


@torch.no_grad()
def removal_contributions(output: FusionOutput, ctx: LossContext, names: tuple[str, ...]) -> Tensor:
    """Δ ``(B, M)``: per-sample loss increase when modality m is removed (Eq. Δ), detached.

    Zero where m was already absent (the removal pass equals the full pass there).
    """
    mask = output.mask  # (B, M), after any training-time perturbation
    full_loss = ctx.per_sample_loss(output.logits)  # (B,)
    contributions = torch.zeros(mask.shape, dtype=full_loss.dtype, device=full_loss.device)
    for position, m in enumerate(names):  # (every modality: the final mask zeroes absent rows)
        reduced_mask = mask.clone()
        reduced_mask[:, position] = False  # (B, M) with m removed for every sample
        features = dict(output.calibrated)
        features[m] = torch.zeros_like(features[m])
        removed = FusionOutput(
            mask=reduced_mask, steps=output.steps, unimodal_logits=output.unimodal_logits
        )  # weightings that combine unimodal logits see the same ones, masked by reduced_mask
        logits = ctx.network.fuse(features, reduced_mask, removed)  # (B, K)
        contributions[:, position] = ctx.per_sample_loss(logits) - full_loss  # Δ_m (B,)
    return contributions * mask.to(contributions.dtype)


def value_targets(contributions: Tensor, temperature: float, mode: str) -> Tensor:
    """Map Δ ``(B, M)`` into (0, 1): σ(Δ/τ) ("signed") or tanh(|Δ|/2τ) ("abs")."""
    if mode == "signed":
        return torch.sigmoid(contributions / temperature)
    if mode == "abs":
        return torch.tanh(contributions.abs() / (2 * temperature))
    raise ValueError(f"vgmr: value_target must be one of {list(VALUE_TARGETS)}, got {mode!r}.")


def _global_and_channel(signals: RefinerSignals, names: tuple[str, ...]) -> list[Tensor]:
    """The value signals to align, each ``(B, M)``: g_m and Avg_c(p_m), whichever exist."""
    stacked = []
    if signals.global_value:
        stacked.append(torch.stack([signals.global_value[m] for m in names], dim=1))
    if signals.channel_value:
        stacked.append(torch.stack([signals.channel_value[m].mean(dim=1) for m in names], dim=1))
    return stacked


def value_loss(signals: RefinerSignals, targets: Tensor, names: tuple[str, ...]) -> Tensor:
    """L_value: squared error of g_m and Avg(p_m) against the targets, present pairs only."""
    present = signals.mask.to(targets.dtype)  # (B, M)
    count = present.sum().clamp(min=1.0)
    total = targets.new_zeros(())
    for value in _global_and_channel(signals, names):  # (B, M) in (0, 1)
        total = total + (((value - targets) ** 2) * present).sum() / count
    return total


def _spread(values: Tensor, rows: Tensor, count: Tensor) -> Tensor:
    """Population standard deviation of ``values`` ``(B,)`` over ``rows`` (``count`` of them,
    clamped to 1), with a floor inside the root (finite gradient at 0)."""
    weights = rows.to(values.dtype)
    mean = (values * weights).sum() / count.clamp(min=1.0)
    variance = (((values - mean) ** 2) * weights).sum() / count.clamp(min=1.0)
    return (variance + 1e-8).sqrt()


def regularisation_loss(signals: RefinerSignals, names: tuple[str, ...], floor: float) -> Tensor:
    """L_reg: anti-collapse hinge on the batch spread of g and Avg(p), plus gate centring.

    Over each modality's present rows, as masked sums (no boolean indexing, no ``if rows.any()``):
    the hinge needs two present rows, the centring one; the conditions stay tensors."""
    stacked = _global_and_channel(signals, names)
    total = signals.mask.new_zeros((), dtype=torch.float32)
    for position, m in enumerate(names):
        rows = signals.mask[:, position]  # (B,) bool
        count = rows.sum().to(torch.float32)
        for value in stacked:
            hinge = torch.relu(floor - _spread(value[:, position], rows, count))
            total = total + torch.where(count >= 2, hinge, 0.0)
        gate = signals.gate[m]  # (B, T_m, d_m)
        real = rows.view(-1, *([1] * (gate.dim() - 1))).to(gate.dtype)  # (B, 1, 1)
        steps = signals.steps.get(m)
        if steps is not None:
            real = real * steps.unsqueeze(-1).to(gate.dtype)  # (B, T_m, 1)
        cells = real.expand(*gate.shape[:-1], 1).sum() * gate.shape[-1]
        mean_gate = (gate * real).sum() / cells.clamp(min=1.0)
        total = total + torch.where(count >= 1, (mean_gate - 0.5) ** 2, 0.0)
    return total
