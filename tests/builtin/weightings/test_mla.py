"""mla: entropy-weighted test-time fusion, alternating unimodal steps, shared-head gradient fix."""

import math
from types import SimpleNamespace

import pytest
import torch
from balancing_helpers import build_network, loss_context, make_batch, training_context

from fusekit.builtin.mla_weighting import MLAWeighting, entropy_weights, update_projector
from fusekit.plugin import TrainingContext, TrainingData, TrainingLoop


def test_entropy_weights_on_hand_computed_logits():
    uniform = [0.0, 0.0]  # p = (1/2, 1/2): e = ln 2
    confident = [math.log(3.0), 0.0]  # p = (3/4, 1/4)
    logits = torch.tensor([[uniform, confident]])  # (B=1, M=2, K=2)
    weights = entropy_weights(logits, torch.tensor([[True, True]]))
    e1 = math.log(2)
    e2 = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    top = max(e1, e2)
    denominator = math.exp(top - e1) + math.exp(top - e2)
    expected = torch.tensor([[math.exp(top - e1) / denominator, math.exp(top - e2) / denominator]])
    torch.testing.assert_close(weights, expected)
    assert weights[0, 1] > weights[0, 0]  # the more certain modality weighs more


def test_absent_modalities_get_zero_weight_and_empty_samples_zero():
    logits = torch.randn(3, 3, 4)
    mask = torch.tensor([[True, False, True], [False, True, False], [False, False, False]])
    weights = entropy_weights(logits, mask)
    assert (weights[~mask] == 0).all()
    torch.testing.assert_close(weights.sum(1), torch.tensor([1.0, 1.0, 0.0]))


def test_fused_logits_are_the_entropy_weighted_shared_head_logits():
    weighting = MLAWeighting()
    network = build_network(weighting).eval()
    mask = torch.tensor([[True, True], [True, False], [False, True], [True, True]])
    batch = make_batch(n=4, mask=mask)
    output = network(batch)
    shared = torch.stack(
        [
            weighting.shared_head(weighting.adapters[p](output.calibrated[m]))
            for p, m in enumerate("ab")
        ],
        dim=1,
    )  # (B, M, K)
    weights = entropy_weights(shared, mask)
    torch.testing.assert_close(output.logits, (weights.unsqueeze(-1) * shared).sum(1))
    torch.testing.assert_close(output.modality_weights, weights)


def test_projector_update_on_a_hand_computed_input():
    updated = update_projector(torch.eye(2), torch.tensor([[1.0, 0.0]]), alpha=1.0)
    # q = (1, 0); P − q qᵀ / (1 + 1) = diag(0.5, 1); Frobenius norm sqrt(1.25)
    torch.testing.assert_close(updated, torch.diag(torch.tensor([0.5, 1.0])) / math.sqrt(1.25))


def _step(network, weighting, batch, target):
    loss = weighting.task_loss(network(batch), loss_context(network, batch, target))
    network.zero_grad(set_to_none=True)
    loss.backward()
    trained = weighting.current
    grads = {m: network.backbones[m].layers[0].weight.grad for m in network.names}
    head_grad = weighting.shared_head.weight.grad.clone()
    weighting.on_grad_computed(training_context(network))
    return trained, grads, head_grad


def test_alternates_one_modality_per_step_and_skips_absent_ones():
    shapes = {"a": (4,), "b": (3,), "c": (2,)}
    weighting = MLAWeighting()
    network = build_network(weighting, shapes=shapes)
    network.train()
    weighting.on_train_begin(training_context(network))
    full = make_batch(shapes=shapes, n=6)
    no_b = make_batch(shapes=shapes, n=6, mask=torch.tensor([[True, False, True]] * 6))
    target = torch.tensor([0, 1, 2] * 2)
    order = []
    for batch in (full, no_b, full, full):
        trained, grads, _ = _step(network, weighting, batch, target)
        order.append(network.names[trained])
        for m, grad in grads.items():  # only the trained modality's encoder moves
            assert (grad is not None and grad.abs().sum() > 0) == (m == network.names[trained])
    assert order == ["a", "c", "a", "b"]  # b absent from the 2nd batch: its turn passes to c


def test_shared_head_gradient_gets_the_projected_term_from_the_second_step():
    weighting = MLAWeighting()
    network = build_network(weighting)
    weighting.on_train_begin(training_context(network))
    weighting.batches_per_epoch = 4
    batch, target = make_batch(n=6), torch.tensor([0, 1, 2] * 2)
    _, _, first_grad = _step(network, weighting, batch, target)
    torch.testing.assert_close(weighting.projector, torch.eye(6))  # first step: untouched
    before = weighting.projector.clone()
    output = network(batch)
    loss = weighting.task_loss(output, loss_context(network, batch, target))
    network.zero_grad(set_to_none=True)
    loss.backward()
    raw = weighting.shared_head.weight.grad.clone()
    r = output.diagnostics["mla_inputs"][1].mean(0, keepdim=True)  # modality b, all present
    weighting.on_grad_computed(training_context(network))
    projector = update_projector(before, r, alpha=0.1 ** (1 + 1 / 4))
    torch.testing.assert_close(weighting.projector, projector)
    torch.testing.assert_close(weighting.shared_head.weight.grad, raw + raw @ projector.T)


def test_adapters_map_different_widths_to_the_shared_width():
    weighting = MLAWeighting(shared_dim=5)
    build_network(weighting)
    assert weighting.shared_head.in_features == 5
    assert [a.out_features for a in weighting.adapters] == [5, 5]


@pytest.mark.parametrize("shared_dim", [0, 2.5])
def test_bad_shared_dim_is_a_clear_error(shared_dim):
    with pytest.raises(ValueError, match="mla: shared_dim"):
        build_network(MLAWeighting(shared_dim=shared_dim))


def test_entropy_is_over_the_classes_of_each_modality():
    # M = 2, K = 3: m0 uniform -> e = ln 3 = 1.098612; m1 (ln 4, 0, 0) -> p = (2/3, 1/6, 1/6),
    # e = −(2/3 ln 2/3 + 2 · 1/6 ln 1/6) = 0.867563; λ = softmax(−e)
    logits = torch.tensor([[[0.0, 0.0, 0.0], [math.log(4.0), 0.0, 0.0]]])  # (B=1, M=2, K=3)
    weights = entropy_weights(logits, torch.tensor([[True, True]]))
    e = torch.tensor([math.log(3), -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 6))])
    assert abs(e[1].item() - 0.867563) < 1e-6
    torch.testing.assert_close(weights, torch.softmax(-e, dim=0)[None])


def test_batches_per_epoch_come_from_the_data_and_the_batch_size():
    # α_t = 0.1^(1 + batch / n_batches) needs n_batches = ceil(10 / 4) = 3
    weighting = MLAWeighting()
    network = build_network(weighting)
    data = TrainingData(make_batch(n=10), torch.zeros(10).long())
    net = SimpleNamespace(batch_size=4)
    weighting.on_train_begin(
        TrainingContext(network=network, loop=TrainingLoop(net), data=data, epoch=0)
    )
    assert weighting.batches_per_epoch == 3
    fresh = MLAWeighting()
    network = build_network(fresh)
    fresh.on_train_begin(TrainingContext(network=network, loop=None, data=None, epoch=0))
    assert fresh.batches_per_epoch == 1  # unknown: one batch per epoch
