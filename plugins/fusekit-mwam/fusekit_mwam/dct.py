"""Orthonormal block DCT-II and the low/high band split used by the Frequency Ratio Metric.

MWAM's official code (github.com/a6103121/MWAM, ``src/freq_n.py``) cuts each image into
non-overlapping P×P blocks, applies ``torch_dct.dct_2d(·, norm='ortho')`` to every block, and pairs
the top-left k×k coefficients (low band, DC included) with the bottom-right k×k ones flipped on
both axes (high band): (0,0)↔(P−1,P−1), (0,1)↔(P−1,P−2), ... (spec seed-003 §3.2).

torch has no DCT, so the transform is the fixed orthonormal DCT-II matrix (spec §4)

    D[k, n] = sqrt(2/N) · c_k · cos(π (2n + 1) k / (2N)),   c_0 = 1/√2, c_k = 1 otherwise,

a 1-D block DCT is ``D q`` and a 2-D one ``D Q Dᵀ`` (equal to ``scipy.fft.dctn(norm="ortho")``).

Per modality kind (axes the blocks run along):
    vectors   (B, d)        -> blocks along d          -> coefficients (B, d/P, P)
    sequences (B, T, d)     -> blocks along T, per d   -> coefficients (B, T/P, P, d)
    images    (B, C, H, W)  -> P×P blocks over (H, W)  -> coefficients (B, C, H/P, W/P, P, P)
An axis longer than P is cropped down to a multiple of P (trailing entries dropped); an axis
shorter than P forms one block of its own length n with band max(1, n // 4) (spec §4).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def dct_matrix(n: int, dtype: torch.dtype = torch.float32, device=None) -> Tensor:
    """The orthonormal DCT-II matrix ``(n, n)``: ``D @ x`` is ``scipy.fft.dct(x, norm="ortho")``."""
    if n < 1:
        raise ValueError(f"dct_matrix: n must be >= 1, got {n}")
    k = torch.arange(n, dtype=torch.float64).unsqueeze(1)  # (n, 1) frequency
    i = torch.arange(n, dtype=torch.float64).unsqueeze(0)  # (1, n) position
    matrix = math.sqrt(2.0 / n) * torch.cos(math.pi * (2 * i + 1) * k / (2 * n))  # (n, n)
    matrix[0] /= math.sqrt(2.0)
    return matrix.to(dtype=dtype, device=device)


def block_geometry(length: int, patch_size: int, band: int) -> tuple[int, int, int]:
    """``(block, n_blocks, band)`` of an axis of ``length``: full blocks, or one short block."""
    if length >= patch_size:
        return patch_size, length // patch_size, band
    return length, 1, max(1, length // 4)


def split_band_1d(coefficients: Tensor, band: int, axis: int) -> tuple[Tensor, Tensor]:
    """Low ``c[0..k-1]`` and mirrored high ``c[P-1], ..., c[P-k]`` along ``axis`` (size P)."""
    low = coefficients.narrow(axis, 0, band)
    high = coefficients.flip(axis).narrow(axis, 0, band)  # index i <-> P-1-i
    return low, high


def block_dct_vector(x: Tensor, patch_size: int, band: int) -> tuple[Tensor, Tensor]:
    """Low and high bands of the block DCT along the features: ``(B, d)`` -> 2 × ``(B, n, k)``."""
    block, n_blocks, k = block_geometry(x.shape[1], patch_size, band)
    blocks = x[:, : n_blocks * block].reshape(x.shape[0], n_blocks, block)  # (B, n, P)
    basis = dct_matrix(block, x.dtype, x.device)  # (P, P)
    coefficients = blocks @ basis.T  # (B, n, P)
    return split_band_1d(coefficients, k, axis=2)


def block_dct_sequence(x: Tensor, patch_size: int, band: int) -> tuple[Tensor, Tensor]:
    """Low and high bands along time, per channel: ``(B, T, d)`` -> 2 × ``(B, n, k, d)``."""
    batch, length, channels = x.shape
    block, n_blocks, k = block_geometry(length, patch_size, band)
    blocks = x[:, : n_blocks * block].reshape(batch, n_blocks, block, channels)  # (B, n, P, d)
    basis = dct_matrix(block, x.dtype, x.device)  # (P, P)
    coefficients = torch.einsum("kp,bnpd->bnkd", basis, blocks)  # (B, n, P, d)
    return split_band_1d(coefficients, k, axis=2)


def block_dct_image(x: Tensor, patch_size: int, band: int) -> tuple[Tensor, Tensor]:
    """Low and high k×k bands of P×P blocks: ``(B, C, H, W)`` -> 2 × ``(B, C, nH, nW, k, k)``."""
    batch, channels, height, width = x.shape
    block_h, n_h, k_h = block_geometry(height, patch_size, band)
    block_w, n_w, k_w = block_geometry(width, patch_size, band)
    cropped = x[:, :, : n_h * block_h, : n_w * block_w]
    blocks = cropped.reshape(batch, channels, n_h, block_h, n_w, block_w)  # (B, C, nH, P, nW, P)
    basis_h = dct_matrix(block_h, x.dtype, x.device)  # (P, P)
    basis_w = dct_matrix(block_w, x.dtype, x.device)  # (P, P)
    coefficients = torch.einsum(
        "ip,bcxpyq,jq->bcxyij", basis_h, blocks, basis_w
    )  # (B, C, nH, nW, P, P) = D Q Dᵀ per block
    low, high = split_band_1d(coefficients, k_h, axis=4)
    low = low.narrow(5, 0, k_w)  # top-left k×k
    high = high.flip(5).narrow(5, 0, k_w)  # bottom-right k×k, flipped on both axes
    return low, high


def block_steps(steps: Tensor, patch_size: int) -> Tensor:
    """``(B, T)`` real-step mask -> ``(B, n)``: True where every step of the block is real."""
    block, n_blocks, _ = block_geometry(steps.shape[1], patch_size, 1)
    return steps[:, : n_blocks * block].reshape(steps.shape[0], n_blocks, block).all(dim=2)
