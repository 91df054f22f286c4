"""Modality dropout (ModDrop).

Neverova, Wolf, Taylor, Nebout, "ModDrop: adaptive multi-modal gesture recognition", TPAMI 2016.

At training time each present modality of each sample is dropped independently with probability
``p``: mask'_{i,m} = mask_{i,m} · 1[u_{i,m} ≥ p], u ~ U(0, 1), and its features are zeroed. With
``keep_one=True`` a sample that would lose all its present modalities keeps one of them, chosen
uniformly. Prediction is unaffected.
"""

from __future__ import annotations

from numbers import Real

import torch

from fusekit.plugin import Interval, ModalityBatch, Weighting, hookimpl


class ModalityDropout(Weighting):
    """Drop whole modalities at training time with probability ``p`` (ModDrop)."""

    needs_host_values = (
        "keep_one draws the modality to keep only for a batch where some row lost them all: "
        "drawing it for every batch would avoid the host read but change every fit's random "
        "stream, and so its results"
    )
    #: Independent per-row draws (each process draws its own): nothing to agree.
    data_parallel_safe = True
    perturbs_mask_only = True  # batch.with_mask: present rows keep their features
    parameter_constraints = {
        "p": [Interval(Real, 0, 1, closed="both")],
        "keep_one": ["boolean"],
    }

    def __init__(self, p: float = 0.25, keep_one: bool = True) -> None:
        super().__init__()
        self.p = p
        self.keep_one = keep_one

    def perturb(self, batch: ModalityBatch) -> ModalityBatch:
        mask = batch.mask  # (B, M) bool
        keep = torch.rand(mask.shape, device=mask.device) >= float(self.p)
        dropped = mask & keep
        if self.keep_one:
            emptied = (~dropped.any(dim=1)) & mask.any(dim=1)  # (B,)
            if emptied.any():  # a host read: see needs_host_values
                # pick one originally present modality per emptied sample
                scores = torch.rand(mask.shape, device=mask.device) * mask
                chosen = torch.zeros_like(mask).scatter_(
                    1, scores.argmax(dim=1, keepdim=True), True
                )
                dropped = torch.where(emptied.unsqueeze(1), chosen & mask, dropped)
        return batch.with_mask(dropped)


@hookimpl
def fusekit_weightings() -> dict[str, type]:
    return {"modality_dropout": ModalityDropout}
