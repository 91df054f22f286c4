"""UDML's equations as plain functions on tensors (no state, no modules).

"Unbiased Dynamic Multimodal Learning" (UDML), Sec. 3; spec ``specs/seed-002-udml.md``.
M modalities, B samples, C outputs. ``mask`` is the ``(B, M)`` bool presence mask.

- (13) ``dependency_ratios``: α^m = M · d^m / Σ_k d^k, so Σ_m α^m = M.
- (7)  ``unbiased_weights``: w_i^m ∝ 1 / ((u_i^m)^p · α^m), normalised over the modalities present
  for sample i (absent: 0); p = 1 in the paper, 2 in the official code (inverse variance).
- (3)  ``scale_features``: z̃_i^m = |P_i| · w_i^m · z_i^m, with |P_i| the number of modalities
  present for sample i (M when all are); ``residual=True`` gives the code's (1 + |P_i|·w_i^m)·z_i^m.
- (10) ``estimator_loss``: mean over present samples of (σ̂_i^m − σ_i^m)², summed over modalities.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fusekit.plugin import expand_mask

#: Floor on the uncertainty inside Eq. 7 so that 1/u stays finite (spec §10.10).
MIN_UNCERTAINTY = 1e-6


def dependency_ratios(scores: Tensor) -> Tensor:
    """Eq. 13: ``(M,)`` dependency scores d -> α = M · d / Σ d, which sums to M."""
    n_modalities = scores.shape[-1]
    return n_modalities * scores / scores.sum(dim=-1, keepdim=True)


def unbiased_weights(uncertainty: Tensor, dependency: Tensor, mask: Tensor, power: float) -> Tensor:
    """Eq. 7 normalised: ``(B, M)`` uncertainty u, ``(M,)`` α, ``(B, M)`` mask -> ``(B, M)`` w.

    w_i^m = mask_i^m / (u_i^m^p · α^m) / Σ_k mask_i^k / (u_i^k^p · α^k). A sample with no modality
    present gets all-zero weights (not NaN).
    """
    inverse = 1.0 / (uncertainty.clamp(min=MIN_UNCERTAINTY) ** power * dependency)  # (B, M)
    inverse = inverse * mask.to(inverse.dtype)
    return inverse / inverse.sum(dim=1, keepdim=True).clamp(min=torch.finfo(inverse.dtype).tiny)


def scale_features(
    embeddings: dict[str, Tensor], weights: Tensor, mask: Tensor, residual: bool
) -> dict[str, Tensor]:
    """Eq. 3: z̃^m = |P_i| · w^m · z^m (or (1 + |P_i| · w^m) · z^m), absent rows zero.

    ``embeddings`` ``{m: (B, *shape_m)}`` in mask-column order, ``weights`` and ``mask`` ``(B, M)``.
    """
    present = mask.to(weights.dtype)  # (B, M)
    factors = present.sum(dim=1, keepdim=True) * weights  # (B, M): |P_i| · w_i^m
    if residual:
        factors = (1.0 + factors) * present
    return {
        name: z * expand_mask(factors[:, position], z)
        for position, (name, z) in enumerate(embeddings.items())
    }


def estimator_loss(predicted: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Eq. 10: Σ_m mean_{i: m present} (σ̂_i^m − σ_i^m)², from ``(B, M)`` tensors to a scalar."""
    present = mask.to(predicted.dtype)  # (B, M)
    squared = (predicted - target) ** 2 * present  # (B, M)
    return (squared.sum(dim=0) / present.sum(dim=0).clamp(min=1.0)).sum()


def gaussian_kl(mean: Tensor, std: Tensor, prior_variance: Tensor) -> Tensor:
    """KL(N(μ, std²) ‖ N(0, v·I)) summed over features: ``(B, *shape)`` ×2, ``(B,)`` -> ``(B,)``.

    The official code's regulariser (not in the paper), the noise label as the prior variance v.
    """
    variance = expand_mask(prior_variance, mean)  # (B, 1, ...)
    terms = 0.5 * (
        (std**2 + mean**2) / variance - 1.0 - 2.0 * torch.log(std.clamp(min=1e-12)) + variance.log()
    )
    return terms.flatten(start_dim=1).sum(dim=1)
