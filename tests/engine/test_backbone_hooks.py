"""Backbones are components like the others: hooks, loss terms and unimodal-head requests.

Before the redesign ``FusionNetwork.components()`` left backbones out, so their hooks and loss
terms were silently dropped. Expected counts are worked by hand from the training set-up: 50 rows
in batches of 16 is ceil(50 / 16) = 4 batches per epoch; 3 epochs; one backbone per modality.
"""

import numpy as np
import torch
from torch.nn import functional as F

from fusekit import FusionClassifier, Modalities
from fusekit.builtin.mlp_backbone import MLPBackbone

TERM = 2.5
HOOKS = ("on_train_begin", "on_epoch_begin", "on_batch_begin", "on_grad_computed", "on_epoch_end")


class CountingBackbone(MLPBackbone):
    """An MLP backbone that counts its hook calls and adds a constant loss term."""

    needs_unimodal_heads = True

    def build(self, input_shape):
        self.calls = dict.fromkeys(HOOKS, 0)
        return super().build(input_shape)

    def loss_terms(self, output, ctx):
        return {"constant": torch.tensor(TERM)}

    def on_train_begin(self, ctx):
        self.calls["on_train_begin"] += 1

    def on_epoch_begin(self, ctx):
        self.calls["on_epoch_begin"] += 1

    def on_batch_begin(self, ctx):
        self.calls["on_batch_begin"] += 1

    def on_grad_computed(self, ctx):
        self.calls["on_grad_computed"] += 1

    def on_epoch_end(self, ctx):
        self.calls["on_epoch_end"] += 1


def _data():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 50)
    X = Modalities(a=rng.normal(size=(50, 3)) + y[:, None], b=rng.normal(size=(50, 2)))
    return X, y


def test_every_backbone_hook_is_called_the_expected_number_of_times():
    X, y = _data()
    model = FusionClassifier(backbone=CountingBackbone, max_epochs=3, batch_size=16, random_state=0)
    model.fit(X, y)
    epochs, batches = 3, 4  # ceil(50 / 16) = 4
    expected = {
        "on_train_begin": 1,
        "on_epoch_begin": epochs,
        "on_batch_begin": epochs * batches,
        "on_grad_computed": epochs * batches,
        "on_epoch_end": epochs,
    }
    for name in ("a", "b"):
        assert model.module_.backbones[name].calls == expected


def test_a_backbone_loss_term_reaches_the_loss_and_its_head_request_is_honoured():
    X, y = _data()
    model = FusionClassifier(backbone=CountingBackbone, max_epochs=1, random_state=0).fit(X, y)
    network = model.module_
    assert network.unimodal_heads is not None  # needs_unimodal_heads on a backbone
    batch = model.as_batch(X)
    target = torch.as_tensor(y)
    output = network(batch)
    expected = F.cross_entropy(output.logits, target) + 2 * TERM  # one term per modality
    torch.testing.assert_close(network.loss(output, target, batch, training=True), expected)
    # every recorded training loss carries the two terms (cross-entropy is positive)
    assert all(row["train_loss"] > 2 * TERM for row in model.net_.history)
