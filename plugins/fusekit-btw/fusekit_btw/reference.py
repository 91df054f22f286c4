"""BTW's unimodal reference predictions (paper Sec. 3.1, Eqs. 1–3).

The paper trains "the same model" once per modality, on that modality only, and records its
predictions ŷ^m for every sample. Here that model is a copy of the fusion network being fitted
(same backbones, calibration, fusion and head, same initial weights), with a do-nothing weighting,
trained on the rows where modality m is present with every other modality masked out, for the same
number of epochs with the same optimiser class and settings. The copies are kept (not registered
as submodules, gradients off) so that unimodal predictions can also be made at predict time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from fusekit.plugin import ModalityBatch, NetworkView, TrainingData


def only_modality(batch: ModalityBatch, position: int) -> ModalityBatch:
    """``batch`` with every modality but the one at column ``position`` masked out."""
    keep = torch.zeros_like(batch.mask)
    keep[:, position] = True
    return batch.with_mask(batch.mask & keep)


def unimodal_copy(network: NetworkView) -> NetworkView:
    """An untrained-state copy of ``network`` without modality weighting and without hooks."""
    return network.copy(plain=True)


def train_unimodal_models(
    network: NetworkView,
    data: TrainingData,
    new_optimizer: Callable[[Any], torch.optim.Optimizer],
    epochs: int,
    batch_size: int,
    seed: int,
) -> list[NetworkView]:
    """Eqs. (1–3): one copy of ``network`` per modality, trained on that modality alone.

    ``new_optimizer`` (``TrainingLoop.new_optimizer``) gives each copy a fresh optimiser of the
    main one's class and settings (learning rate, weight decay...). Each epoch of the copy of the
    modality at ``position`` is shuffled by a generator seeded ``seed + position`` (independent of
    the global random state). Returns the copies in ``network.names`` order, in eval mode with
    gradients off.
    """
    models = []
    for position, _name in enumerate(network.names):
        model = unimodal_copy(network)
        model.train()
        rows = torch.nonzero(data.inputs.mask[:, position]).squeeze(1)  # (N_m,)
        inputs = only_modality(data.inputs.take(rows), position)
        target = data.target[rows]
        optimiser = new_optimizer(model.parameters())
        generator = torch.Generator().manual_seed(seed + position)
        for _epoch in range(epochs):
            order = torch.randperm(len(rows), generator=generator)
            for start in range(0, len(rows), batch_size):
                chunk = order[start : start + batch_size]
                batch = inputs.take(chunk)
                loss = model.loss(model(batch), target[chunk], batch, training=True)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
        model.eval()
        model.requires_grad_(False)
        models.append(model)
    return models


@torch.no_grad()
def unimodal_logits(models: list[NetworkView], batch: ModalityBatch, batch_size: int) -> Tensor:
    """ŷ^m for every row: ``(B, M, K)`` logits of each modality's own model on that modality."""
    return torch.stack(
        [
            model.predict_logits(only_modality(batch, position), batch_size)
            for position, model in enumerate(models)
        ],
        dim=1,
    )
