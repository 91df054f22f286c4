"""SCFAE's reconstruction loss, Eq. (5) with the sign corrected, and the contrastive ablation.

Eq. (5) as printed, L_recon = Σ_m Sim(V_i^(m), P_recon^(m) Z_i^(m)) with Sim the cosine
similarity, would *push reconstructions away* from the input when Φ = L_task + λ L_recon (6) is
minimised. We minimise the distance form instead (spec §4.5, A7):

    L_recon = (1/B) Σ_i Σ_m mask_{i,m} (1 − cos(V_i^(m), V̂_i^(m))),   0 <= L_recon <= 2M,
    cos(a, b) = <a, b> / max(‖a‖ ‖b‖, eps),

mean over the batch, sum over modalities; absent (sample, modality) pairs are skipped (there is
nothing to reconstruct). ``"mse"`` (Table 9) is (1/B) Σ_i Σ_m mask_{i,m} mean_j (V − V̂)_{ij}².
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

EPS = 1e-8


def cosine(a: Tensor, b: Tensor, eps: float = EPS) -> Tensor:
    """Row-wise cosine similarity ``(B, d), (B, d) -> (B,)`` with the spec's eps guard."""
    dot = (a * b).sum(dim=1)  # (B,)
    norms = a.norm(dim=1) * b.norm(dim=1)  # (B,)
    return dot / norms.clamp(min=eps)


def reconstruction_distance(target: Tensor, recon: Tensor, metric: str) -> Tensor:
    """Per-sample distance ``(B,)``: 1 − cos (``"cos"``) or mean squared error (``"mse"``)."""
    if metric == "cos":
        return 1.0 - cosine(target, recon)
    return (target - recon).pow(2).mean(dim=1)


def reconstruction_loss(
    targets: list[Tensor], recons: list[Tensor], present: Tensor, metric: str = "cos"
) -> Tensor:
    """L_recon over M modalities: ``targets``/``recons`` are ``(B, l_m)``, ``present`` ``(B, M)``.

    Absent rows are replaced by ones before the distance so that neither the value nor the
    gradient can become NaN (the cosine to a zero row is undefined), then masked out.
    """
    total = targets[0].new_zeros(())
    for position, (target, recon) in enumerate(zip(targets, recons, strict=True)):
        keep = present[:, position].unsqueeze(1)  # (B, 1) bool
        safe_target = torch.where(keep, target, torch.ones_like(target))  # (B, l_m)
        safe_recon = torch.where(keep, recon, torch.ones_like(recon))  # (B, l_m)
        distance = reconstruction_distance(safe_target, safe_recon, metric)  # (B,)
        total = total + (distance * present[:, position].to(distance.dtype)).sum()
    return total / max(int(present.shape[0]), 1)


def contrastive_loss(embeddings: list[Tensor], present: Tensor, temperature: float) -> Tensor:
    """Symmetric InfoNCE between each modality's own shared embedding and its cycle partner's.

    ``embeddings[i]`` ``(B, l*)`` in cycle order; the pair (i, (i+1) mod M) uses the samples where
    both are present; positives are the same sample. Used by the ``scfae_contrastive`` ablation
    (Table 8, "Contrastive Replacement"), not by SCFAE itself.
    """
    count = len(embeddings)
    total = embeddings[0].new_zeros(())
    pairs = [(0, 1)] if count == 2 else [(i, (i + 1) % count) for i in range(count)]
    for first, second in pairs:
        both = present[:, first] & present[:, second]  # (B,)
        count = both.sum().to(total.dtype)  # P, kept on the device (no `if P < 2:` host read)
        a = F.normalize(embeddings[first], dim=1)  # (B, l*)
        b = F.normalize(embeddings[second], dim=1)  # (B, l*)
        logits = a @ b.T / temperature  # (B, B); the P x P block of pairs both present counts
        pair = both.unsqueeze(1) & both.unsqueeze(0)  # (B, B)
        # other columns of a counted row drop out of its softmax (-inf); uncounted rows get
        # finite filler and weight 0
        filler = torch.where(both.unsqueeze(1), float("-inf"), 0.0).to(logits.dtype)
        labels = torch.arange(logits.shape[0], device=logits.device)
        rows = F.cross_entropy(torch.where(pair, logits, filler), labels, reduction="none")
        columns = F.cross_entropy(torch.where(pair, logits.T, filler), labels, reduction="none")
        weights = both.to(total.dtype)
        mean = ((rows + columns) * weights).sum() / count.clamp(min=1.0)
        total = total + torch.where(count >= 2, 0.5 * mean, 0.0)
    return total
