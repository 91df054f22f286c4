"""The trimmed per-batch training path keeps skorch's contract: history, callbacks, closures."""

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback, GradientNormClipping

from fusekit import FusionClassifier
from fusekit.engine.batching import BatchIterator
from fusekit.engine.training import _steps_without_closure
from fusekit.plugin import ModalityBatch, TrainingData


class BatchSpy(Callback):
    """Records what skorch's batch hooks receive."""

    def initialize(self) -> "BatchSpy":
        self.begin, self.end, self.grads = [], [], 0
        return self

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        self.begin.append((len(batch[1]), training))

    def on_batch_end(self, net, batch=None, training=False, loss=None, y_pred=None, **kwargs):
        self.end.append((float(loss.detach()), y_pred.logits.shape[0], training))

    def on_grad_computed(self, net, named_parameters=None, batch=None, training=False, **kw):
        assert all(p.grad is not None for _, p in named_parameters)
        self.grads += 1


def test_history_rows_match_skorch_layout(vectors):
    X, y = vectors
    model = FusionClassifier(batch_size=48, max_epochs=2, random_state=0).fit(X, y)
    history = model.net_.history
    assert len(history) == 2
    for epoch in range(2):
        sizes = history[epoch, "batches", :, "train_batch_size"]
        assert sizes == [48, 48, 48, 16]  # 160 rows
        assert history[epoch, "train_batch_count"] == 4
        losses = history[epoch, "batches", :, "train_loss"]
        assert all(isinstance(v, float) and np.isfinite(v) for v in losses)
        assert history[epoch, "train_loss"] == pytest.approx(
            np.average(losses, weights=sizes), rel=1e-6
        )


def test_batch_callbacks_see_every_batch_and_its_loss(vectors):
    X, y = vectors
    spy = BatchSpy()
    FusionClassifier(batch_size=64, max_epochs=3, callbacks=[spy]).fit(X, y)
    assert spy.begin == [(64, True), (64, True), (32, True)] * 3
    assert [(n, t) for _, n, t in spy.end] == [(64, True), (64, True), (32, True)] * 3
    assert spy.grads == 9


def test_user_gradient_clipping_applies_on_the_closure_free_path(vectors):
    X, y = vectors
    seen = []

    class Norm(Callback):
        def on_grad_computed(self, net, named_parameters=None, **kwargs):
            grads = [p.grad for _, p in named_parameters if p.grad is not None]
            seen.append(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])).item())

    clip = GradientNormClipping(gradient_clip_value=1e-3)
    FusionClassifier(max_epochs=2, lr=10.0, callbacks=[clip, Norm()]).fit(X, y)
    assert seen and max(seen) <= 1e-3 * (1 + 1e-4)


def test_lbfgs_keeps_skorchs_closure_path(seeded_vectors, train_seed):
    X, y = seeded_vectors
    assert not _steps_without_closure(torch.optim.LBFGS([torch.zeros(1, requires_grad=True)]))
    model = FusionClassifier(
        optimizer=torch.optim.LBFGS, lr=0.1, batch_size=160, max_epochs=5, random_state=train_seed
    )
    model.fit(X, y)
    losses = model.net_.history[:, "train_loss"]
    assert losses[-1] < losses[0]
    assert model.score(X, y) > 0.8  # 1.00 over seeds 0-5


def test_builtin_optimizers_step_without_closure():
    parameter = [torch.zeros(1, requires_grad=True)]
    for optimizer in (torch.optim.Adam, torch.optim.SGD, torch.optim.AdamW, torch.optim.RMSprop):
        assert _steps_without_closure(optimizer(parameter, lr=0.1))

    class ThirdParty(torch.optim.SGD):
        pass

    assert not _steps_without_closure(ThirdParty(parameter, lr=0.1))


def _data(n: int) -> TrainingData:
    inputs = ModalityBatch(
        {"a": torch.arange(n, dtype=torch.float32)[:, None].repeat(1, 3)},
        torch.ones(n, 1, dtype=torch.bool),
        index=torch.arange(n),
    )
    return TrainingData(inputs, torch.arange(n) * 10)


@pytest.mark.parametrize("block_rows", [1, 5, 16, 1000])
@pytest.mark.parametrize("drop_last", [False, True])
def test_blocked_shuffle_yields_each_row_once_in_the_generators_order(block_rows, drop_last):
    data = _data(23)
    iterator = BatchIterator(
        data, 4, shuffle=True, generator=torch.Generator().manual_seed(3), drop_last=drop_last
    )
    iterator.block_rows = block_rows
    batches = list(iterator)
    expected = torch.randperm(23, generator=torch.Generator().manual_seed(3))
    expected = expected[:20] if drop_last else expected
    assert [len(b) for b, _ in batches] == ([4] * 5 if drop_last else [4] * 5 + [3])
    assert len(iterator) == len(batches)
    rows = torch.cat([b.index for b, _ in batches])
    assert torch.equal(rows, expected)
    assert torch.equal(torch.cat([t for _, t in batches]), expected * 10)
    assert torch.equal(torch.cat([b.features["a"][:, 0] for b, _ in batches]), expected.float())


def test_blocked_shuffle_honours_a_row_subset():
    data = _data(30)
    subset = torch.tensor([29, 3, 7, 11, 2, 5, 17])
    iterator = BatchIterator(
        data, 3, shuffle=True, generator=torch.Generator().manual_seed(0), rows=subset
    )
    iterator.block_rows = 4
    rows = torch.cat([b.index for b, _ in iterator])
    assert sorted(rows.tolist()) == sorted(subset.tolist())


def test_batches_do_not_alias_the_training_data():
    data = _data(12)
    iterator = BatchIterator(data, 4, shuffle=True, generator=torch.Generator().manual_seed(0))
    for batch, _ in iterator:
        batch.features["a"].mul_(0)  # a plugin editing its batch in place
    assert torch.equal(data.inputs.features["a"][:, 0], torch.arange(12, dtype=torch.float32))


@pytest.mark.parametrize(
    "rows",
    [torch.tensor([4, 0, 2]), torch.tensor([True, False, True, False, True, False]), slice(1, 4)],
    ids=["long", "bool", "slice"],
)
def test_take_selects_the_same_rows_as_indexing(rows):
    batch = ModalityBatch(
        {"a": torch.arange(18.0).reshape(6, 3), "s": torch.arange(24.0).reshape(6, 2, 2)},
        torch.tensor([[True, False]] * 6),
        index=torch.arange(6),
        steps={"s": torch.ones(6, 2, dtype=torch.bool)},
        extras={"w": torch.arange(6.0)},
    )
    taken = batch.take(rows)
    for name in ("a", "s"):
        assert torch.equal(taken.features[name], batch.features[name][rows])
    assert torch.equal(taken.mask, batch.mask[rows])
    assert torch.equal(taken.index, batch.index[rows])
    assert torch.equal(taken.steps["s"], batch.steps["s"][rows])
    assert torch.equal(taken.extras["w"], batch.extras["w"][rows])


@pytest.mark.parametrize("task, n_outputs", [("classification", 3), ("regression", 2)])
def test_mean_loss_is_the_mean_of_the_per_sample_loss(task, n_outputs):
    """The network's criterion against the loss written out from log-softmax / squares."""
    from fusekit.testing.fixtures import build_network

    criterion = build_network(task=task, n_outputs=n_outputs).criterion
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(9, n_outputs, generator=generator)
    if task == "classification":
        target = torch.randint(0, n_outputs, (9,), generator=generator)
        by_hand = -torch.log_softmax(logits, dim=1)[torch.arange(9), target]
    else:
        target = torch.randn(9, n_outputs, generator=generator)
        by_hand = ((logits - target) ** 2).mean(dim=1)
    torch.testing.assert_close(criterion.per_sample(logits, target), by_hand)
    torch.testing.assert_close(criterion.mean(logits, target), by_hand.mean())
