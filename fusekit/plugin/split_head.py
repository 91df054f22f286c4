"""The concat fusion's linear head split per modality: the "unimodal logits" that
BalanceBenchmark-style methods (AMCo, MBSD, LFM, OPM's ``split_head``) read from a joint model.

With the concatenated features x = [v_1; …; v_M (; mask)] ``(B, F)`` and the head W = [W_1 … W_M
(, W_ind)] ``(K, F)``, b ``(K,)``::

    z_m = v_m W_mᵀ + b / M  (+ mask_m · W_ind[:, m] with indicator columns)        ``(B, K)``

so Σ_m z_m is the head's output exactly. Gradients flow to the features and the head.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def splits_concat_head(network: object) -> bool:
    """Whether ``network`` (a ``NetworkView``) concatenates and decides with a linear head."""
    return bool(network.fusion.concatenates) and isinstance(network.head, nn.Linear)


def split_concat_head(
    fused: Tensor, weight: Tensor, bias: Tensor, widths: list[int], indicators: bool = False
) -> Tensor:
    """``(B, M, K)`` per-modality logits z_m from the concat fusion's output ``fused``
    ``(B, Σ D_m [+ M])``, the head's ``weight`` ``(K, F)`` and ``bias`` ``(K,)``, and the
    modality widths D_m (in mask column order); ``indicators``: the fusion appended the mask."""
    expected = sum(widths) + (len(widths) if indicators else 0)
    if fused.shape[1] != expected or weight.shape[1] != expected:
        raise ValueError(
            f"split_concat_head: the fused vector has {fused.shape[1]} columns and the head "
            f"{weight.shape[1]}, expected {expected} (widths {widths}, indicators={indicators})"
        )
    n_modalities = len(widths)
    parts, start = [], 0
    for position, width in enumerate(widths):
        z = fused[:, start : start + width] @ weight[:, start : start + width].T  # (B, K)
        if indicators:  # the mask column of modality m belongs to it
            column = sum(widths) + position
            z = z + fused[:, column : column + 1] * weight[:, column]
        parts.append(z + bias / n_modalities)
        start += width
    return torch.stack(parts, dim=1)


def concat_head_logits(network: object, fused: Tensor, widths: list[int]) -> Tensor:
    """:func:`split_concat_head` with the head and the indicator setting of ``network``."""
    head = network.head
    indicators = bool(getattr(network.fusion, "indicators", False))
    return split_concat_head(fused, head.weight, head.bias, widths, indicators)
