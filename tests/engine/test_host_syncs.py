"""The training loop reads the batch losses from the device once per pass, not once per batch,
and the history holds what skorch's per-batch ``loss.item()`` would have recorded."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from fusekit import FusionClassifier


class RecordLosses(Callback):
    """Reads every training batch's loss itself (the independent record)."""

    def initialize(self):
        self.losses, self.sizes = [], []
        return self

    def on_batch_end(self, net, batch=None, training=False, loss=None, **kwargs):
        if training:
            self.losses.append(float(loss))
            weights = batch[0].sample_weight
            self.sizes.append(len(batch[0]) if weights is None else float(weights.sum()))


@pytest.mark.parametrize("weighted", [False, True])
def test_history_holds_each_batch_s_loss_and_size(vectors, weighted):
    X, y = vectors
    weights = np.linspace(0.5, 2.0, len(y)) if weighted else None
    recorder = RecordLosses()
    model = FusionClassifier(max_epochs=2, batch_size=50, callbacks=[recorder], random_state=0)
    model.fit(X, y, sample_weight=weights)
    rows = [b for epoch in model.net_.history for b in epoch["batches"] if "train_loss" in b]
    assert [b["train_loss"] for b in rows] == recorder.losses  # 2 epochs x 4 batches
    assert [b["train_batch_size"] for b in rows] == recorder.sizes
    assert all(type(b["train_loss"]) is float for b in rows)
    epoch = model.net_.history[-1]
    expected = np.average(recorder.losses[4:], weights=recorder.sizes[4:])
    assert epoch["train_loss"] == pytest.approx(expected, rel=1e-12)


def test_a_training_epoch_makes_no_per_batch_item_call(vectors, monkeypatch):
    """Tensor.item() is a host sync on a GPU; outside torch itself (Adam reads its step count,
    a CPU tensor, with it) the default model's loop makes none at all."""
    X, y = vectors
    calls = []
    real_item = torch.Tensor.item
    torch_package = str(Path(torch.__file__).parent)

    def counted(self):
        caller = sys._getframe(1).f_code.co_filename
        if not caller.startswith(torch_package):
            calls.append(caller)
        return real_item(self)

    monkeypatch.setattr(torch.Tensor, "item", counted)
    FusionClassifier(max_epochs=3, batch_size=16, random_state=0).fit(X, y)  # 30 batches
    assert calls == []
