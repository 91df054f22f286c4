"""The Frequency Ratio Metric (FRM) of one modality for one batch.

Lu et al., "Plug, Play, and Fortify: A Low-Cost Module for Robust Multimodal Image Understanding
Models", ICLR 2026 (arXiv 2602.22644). The paper body was not available; the formula is read from
the official code (spec seed-003 §3.2) and generalised to sequences and vectors (spec §4).
With L, H the low and mirrored-high band coefficients of the block DCT (:mod:`fusekit_mwam.dct`):

    official:  FRM = reduce_b  Σ_{blocks, channels, i, j} | L / (H + ε) |          (code, §3.2)
    energy:    FRM = reduce_b Σ L²  /  ( reduce_b Σ H² + ε )                        (spec §4, §9.2)

``reduce_b`` runs over the present samples of the batch: ``"sum"`` (official; FRM grows with the
batch) or ``"mean"`` (invariant to duplicating samples; recommended with missing modalities).
The ε is added to the *signed* high coefficient, as in the code, so ``official`` is heavy-tailed;
``energy`` cannot blow up and is scale-invariant up to ε. Padded sequence steps: blocks that
contain a padded step are left out, and ``"mean"`` divides by the number of samples' worth of
real blocks (our choice; the code has no padding).
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

from fusekit_mwam.dct import block_dct_image, block_dct_sequence, block_dct_vector, block_steps

MODES = ("official", "energy")
REDUCTIONS = ("sum", "mean")
UNORDERED_WARNING = (
    "MWAM computes the frequency ratio of a vector modality along its feature axis; unordered "
    "tabular columns carry no frequency meaning (the FRM then depends on column order). Use MWAM "
    "on images, sequences or ordered vectors (spectra, signals), or pass "
    "weighting__ordered_vectors=True to silence this warning."
)


def _bands(x: Tensor, patch_size: int, band: int) -> tuple[Tensor, Tensor]:
    if x.dim() == 2:
        return block_dct_vector(x, patch_size, band)  # 2 × (B, n, k)
    if x.dim() == 3:
        return block_dct_sequence(x, patch_size, band)  # 2 × (B, n, k, d)
    if x.dim() == 4:
        return block_dct_image(x, patch_size, band)  # 2 × (B, C, nH, nW, k, k)
    raise ValueError(
        "frequency_ratio_metric: expected a vector (B, d), sequence (B, T, d) or image "
        f"(B, C, H, W) batch, got shape {tuple(x.shape)}"
    )


def _block_weights(x: Tensor, low: Tensor, steps: Tensor | None, patch_size: int) -> Tensor:
    """``(B, n_terms)`` 0/1 weights: 0 for terms of sequence blocks that hold a padded step."""
    if steps is None or x.dim() != 3:
        return torch.ones(low.shape[0], low[0].numel(), dtype=low.dtype, device=low.device)
    real_blocks = block_steps(steps, patch_size).to(low.dtype)  # (B, n)
    return real_blocks[:, :, None, None].expand_as(low).flatten(start_dim=1)  # (B, n·k·d)


def check_frm_params(mode: str, reduce: str, patch_size: int, band: int, eps: float) -> None:
    """Raise a ValueError naming the first bad FRM parameter."""
    if mode not in MODES:
        raise ValueError(f"mwam: frm_mode must be one of {MODES}, got {mode!r}")
    if reduce not in REDUCTIONS:
        raise ValueError(f"mwam: reduce must be one of {REDUCTIONS}, got {reduce!r}")
    if not isinstance(patch_size, int) or isinstance(patch_size, bool) or patch_size < 2:
        raise ValueError(f"mwam: patch_size must be an integer >= 2, got {patch_size!r}")
    if not isinstance(band, int) or isinstance(band, bool) or not 1 <= band <= patch_size // 2:
        raise ValueError(
            f"mwam: band must be an integer in [1, patch_size // 2 = {patch_size // 2}] so that "
            f"the low and high bands do not overlap, got {band!r}"
        )
    if not eps > 0:
        raise ValueError(f"mwam: eps must be > 0, got {eps!r}")


def frequency_ratio_metric(
    x: Tensor,
    mode: str = "official",
    patch_size: int = 8,
    band: int = 2,
    eps: float = 1e-6,
    reduce: str = "sum",
    present: Tensor | None = None,
    steps: Tensor | None = None,
) -> Tensor:
    """FRM of one modality batch ``x`` (see the module docstring): a 0-dim tensor.

    Args:
        x: ``(B, d)``, ``(B, T, d)`` or ``(B, C, H, W)``.
        mode: ``"official"`` (Σ|L/(H+ε)|) or ``"energy"`` (ΣL² / (ΣH² + ε)).
        reduce: ``"sum"`` or ``"mean"`` over the present samples.
        present: ``(B,)`` bool, samples where the modality is present (default: all).
        steps: ``(B, T)`` bool real-step mask of a padded sequence, or None.

    Returns NaN when no sample (or no unpadded block) is present: the caller skips the modality.
    """
    check_frm_params(mode, reduce, patch_size, band, eps)
    x = x.detach()
    if present is not None:
        x = x[present]  # (B', ...)
        steps = None if steps is None else steps[present]
    if x.shape[0] == 0:
        return torch.tensor(float("nan"), dtype=x.dtype, device=x.device)
    low, high = _bands(x, patch_size, band)
    weights = _block_weights(x, low, steps, patch_size)  # (B', n_terms)
    low, high = low.flatten(start_dim=1), high.flatten(start_dim=1)  # (B', n_terms)
    # samples' worth of real terms: B' without padding, fewer when blocks were left out
    n_samples = weights.sum() / weights.shape[1]
    if n_samples == 0:
        return torch.tensor(float("nan"), dtype=x.dtype, device=x.device)
    if mode == "official":
        total = ((low / (high + eps)).abs() * weights).sum()  # Σ over present samples
        return total if reduce == "sum" else total / n_samples
    low_energy = (low.square() * weights).sum()
    high_energy = (high.square() * weights).sum()
    if reduce == "mean":
        low_energy, high_energy = low_energy / n_samples, high_energy / n_samples
    return low_energy / (high_energy + eps)


def warn_unordered_vectors() -> None:
    """Warn once per call site that FRM along unordered feature columns has no meaning."""
    warnings.warn(UNORDERED_WARNING, UserWarning, stacklevel=3)
