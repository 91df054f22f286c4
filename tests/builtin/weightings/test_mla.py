"""mla: entropy-weighted test-time fusion, alternating unimodal steps, shared-head gradient fix."""

import math
from types import SimpleNamespace

import pytest
import torch
from balancing_helpers import build_network, loss_context, make_batch, training_context

from fusekit.builtin.mla_weighting import MLAWeighting, entropy_weights, update_projector
from fusekit.plugin import ModalityBatch, TrainingContext, TrainingData, TrainingLoop


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
    with pytest.raises(ValueError, match="The 'shared_dim' parameter of weighting mla must be"):
        build_network(MLAWeighting(shared_dim=shared_dim))


def test_shared_dim_one_is_allowed():
    weighting = MLAWeighting(shared_dim=1)
    build_network(weighting)
    assert weighting.shared_head.in_features == 1


def test_regression_is_a_clear_error():
    with pytest.raises(ValueError, match="mla: needs a classification task.*got regression"):
        build_network(MLAWeighting(), n_outputs=1, task="regression")


def test_entropy_is_over_the_classes_of_each_modality():
    # M = 2, K = 3: m0 uniform -> e = ln 3 = 1.098612; m1 (ln 4, 0, 0) -> p = (2/3, 1/6, 1/6),
    # e = −(2/3 ln 2/3 + 2 · 1/6 ln 1/6) = 0.867563; λ = softmax(−e)
    logits = torch.tensor([[[0.0, 0.0, 0.0], [math.log(4.0), 0.0, 0.0]]])  # (B=1, M=2, K=3)
    weights = entropy_weights(logits, torch.tensor([[True, True]]))
    e = torch.tensor([math.log(3), -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 6))])
    assert abs(e[1].item() - 0.867563) < 1e-6
    torch.testing.assert_close(weights, torch.softmax(-e, dim=0)[None])


def _epoch_context(network, n_rows=None, batch_size=None, train_rows=None):
    data = None
    if n_rows is not None:
        data = TrainingData(make_batch(n=n_rows), torch.zeros(n_rows).long())
    loop = None if batch_size is None else TrainingLoop(SimpleNamespace(batch_size=batch_size))
    return TrainingContext(network=network, loop=loop, data=data, epoch=0, train_rows=train_rows)


@pytest.mark.parametrize(
    ("n_rows", "batch_size", "expected"),
    [
        (10, 4, 3),  # ceil(10 / 4)
        (10, 1, 10),  # one row per batch
        (4, 8, 1),  # one short batch
        (10, 10, 1),
        (10, 0, 1),  # batch_size <= 0: the whole training set in one batch
        (10, -1, 1),
        (10, None, 1),  # no loop (hook called outside training): unknown, 1
        (None, 4, 1),  # no data: unknown, 1
    ],
)
def test_batches_per_epoch_come_from_the_data_and_the_batch_size(n_rows, batch_size, expected):
    # α_t = 0.1^(1 + batch / n_batches) needs n_batches = ⌈rows / batch_size⌉
    weighting = MLAWeighting()
    network = build_network(weighting)
    weighting.on_train_begin(training_context(network))
    weighting.on_epoch_begin(_epoch_context(network, n_rows, batch_size))
    assert weighting.batches_per_epoch == expected


def test_batches_per_epoch_leave_out_the_validation_rows():
    # 10 rows, 3 held out for validation: ⌈7 / 2⌉ = 4 training batches, not ⌈10 / 2⌉ = 5
    weighting = MLAWeighting()
    network = build_network(weighting)
    weighting.on_train_begin(training_context(network))
    train_rows = torch.tensor([0, 1, 2, 4, 5, 7, 9])
    weighting.on_epoch_begin(_epoch_context(network, 10, 2, train_rows=train_rows))
    assert weighting.batches_per_epoch == 4


def test_alpha_counts_the_batches_of_the_current_epoch_only():
    """Epoch 0 takes 3 steps; the first step of epoch 1 uses α = 0.1^(1 + 0 / 4) = 0.1 (the
    counter restarts), the second 0.1^(1 + 1 / 4)."""
    weighting = MLAWeighting()
    network = build_network(weighting)
    weighting.on_train_begin(training_context(network))
    epoch = _epoch_context(network, n_rows=8, batch_size=2)  # n_batches = 4
    batch, target = make_batch(n=6), torch.tensor([0, 1, 2] * 2)
    weighting.on_epoch_begin(epoch)
    for _ in range(3):
        _step(network, weighting, batch, target)
    weighting.on_epoch_begin(epoch)
    for alpha in (0.1, 0.1 ** (1 + 1 / 4)):
        before = weighting.projector.clone()
        output = network(batch)
        weighting.task_loss(output, loss_context(network, batch, target))
        r = output.diagnostics["mla_inputs"][weighting.current].mean(0, keepdim=True)
        weighting.current, weighting.inputs_mean = None, None
        _step(network, weighting, batch, target)
        torch.testing.assert_close(weighting.projector, update_projector(before, r, alpha))


def test_projector_update_whose_norm_falls_below_one_is_still_normalised():
    # P = I / 10, r = (1, 0), α = 1: q = (0.1, 0), r q = 0.1,
    # P − q qᵀ / 1.1 = diag(0.1 − 0.01 / 1.1, 0.1) = diag(1/11, 1/10), ‖·‖_F < 1
    updated = update_projector(torch.eye(2) / 10, torch.tensor([[1.0, 0.0]]), alpha=1.0)
    norm = math.sqrt(1 / 121 + 1 / 100)
    torch.testing.assert_close(updated, torch.diag(torch.tensor([1 / 11, 1 / 10])) / norm)
    torch.testing.assert_close(updated.norm(), torch.tensor(1.0))


def test_modalities_of_the_shared_width_enter_the_head_unchanged():
    # identity backbones: a (4,) already has the shared width max(4, 2) = 4, b (2,) is mapped
    shapes = {"a": (4,), "b": (2,)}
    weighting = MLAWeighting()
    network = build_network(weighting, shapes=shapes, identity=True)
    batch = make_batch(shapes=shapes, n=3)
    inputs = network(batch).diagnostics["mla_inputs"]
    torch.testing.assert_close(inputs[0], batch.features["a"], rtol=0, atol=0)
    assert isinstance(weighting.adapters[1], torch.nn.Linear)
    assert (weighting.adapters[1].in_features, weighting.adapters[1].out_features) == (2, 4)


def test_sequence_head_inputs_average_the_real_steps_only():
    # a: row 0 has one real step (1, 2), its padded (9, 9) ignored; row 1 averages (1, 0), (3, 0)
    shapes = {"a": (2, 2), "b": (2,)}
    weighting = MLAWeighting()
    network = build_network(weighting, shapes=shapes, n_outputs=2, identity=True)
    features = {
        "a": torch.tensor([[[1.0, 2.0], [9.0, 9.0]], [[1.0, 0.0], [3.0, 0.0]]]),
        "b": torch.tensor([[0.5, 1.5], [2.0, 0.0]]),
    }
    steps = {"a": torch.tensor([[True, False], [True, True]])}
    mask = torch.ones(2, 2, dtype=torch.bool)
    batch = ModalityBatch(features, mask, index=torch.arange(2), steps=steps)
    inputs = network(batch).diagnostics["mla_inputs"]
    torch.testing.assert_close(inputs[0], torch.tensor([[1.0, 2.0], [2.0, 0.0]]))
    torch.testing.assert_close(inputs[1], features["b"])


def _hand_head_network():
    """Identity backbones of width 2, shared head W = I, b = 0 (K = 2): z_m = h_m."""
    weighting = MLAWeighting()
    network = build_network(weighting, shapes={"a": (2,), "b": (2,)}, n_outputs=2, identity=True)
    with torch.no_grad():
        weighting.shared_head.weight.copy_(torch.eye(2))
        weighting.shared_head.bias.zero_()
    return weighting, network


def test_unimodal_loss_and_head_input_mean_over_the_present_rows_only():
    """a (in turn) present in rows 0, 1 only; targets (0, 1, 0).
    z_a = (ln 3, 0): p = (3/4, 1/4), CE = ln(4/3); z_a = (0, 0): CE = ln 2; row 2 left out:
    L_a = (ln(4/3) + ln 2) / 2, r = ((ln 3, 0) + (0, 0)) / 2 = (ln 3 / 2, 0)."""
    weighting, network = _hand_head_network()
    network.train()
    weighting.on_train_begin(training_context(network))
    features = {
        "a": torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0], [5.0, -5.0]]),
        "b": torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]),
    }
    mask = torch.tensor([[True, True], [True, True], [False, True]])
    batch = ModalityBatch(features, torch.ones(3, 2, dtype=torch.bool), index=torch.arange(3))
    batch = batch.with_mask(mask)
    target = torch.tensor([0, 1, 0])
    loss = weighting.task_loss(network(batch), loss_context(network, batch, target))
    assert weighting.current == 0
    expected = (math.log(4 / 3) + math.log(2)) / 2
    torch.testing.assert_close(loss, torch.tensor(expected))
    torch.testing.assert_close(weighting.inputs_mean, torch.tensor([[math.log(3.0) / 2, 0.0]]))


def test_a_batch_without_any_present_modality_takes_no_step():
    weighting = MLAWeighting()
    network = build_network(weighting)
    network.train()
    weighting.on_train_begin(training_context(network))
    batch = make_batch(n=4, mask=torch.zeros(4, 2, dtype=torch.bool))
    loss = weighting.task_loss(network(batch), loss_context(network, batch, torch.zeros(4).long()))
    assert weighting.current is None
    assert loss.item() == 0.0  # finite 0, so the loop's backward adds nothing
    loss.backward()
    for parameter in network.parameters():
        assert parameter.grad is None or (parameter.grad == 0).all()


def test_validation_loss_is_the_cross_entropy_of_the_fused_logits():
    """Validation batch (not training): CE of z = Σ λ_m z_m, not a unimodal loss.
    Row 0: z_a = (ln 3, 0), z_b = (0, 0): e_a = H(3/4, 1/4), e_b = ln 2, λ = softmax(−e).
    Row 1: only b present, z = z_b = (0, 2)."""
    weighting, network = _hand_head_network()
    network.eval()
    features = {
        "a": torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0]]),
        "b": torch.tensor([[0.0, 0.0], [0.0, 2.0]]),
    }
    mask = torch.tensor([[True, True], [False, True]])
    batch = ModalityBatch(features, mask, index=torch.arange(2))
    target = torch.tensor([1, 0])
    loss = weighting.task_loss(network(batch), loss_context(network, batch, target, False))
    e_a = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    e_b = math.log(2)
    lam_a = math.exp(-e_a) / (math.exp(-e_a) + math.exp(-e_b))
    z0 = (lam_a * math.log(3.0), 0.0)  # λ_b z_b = 0
    ce0 = -z0[1] + math.log(math.exp(z0[0]) + math.exp(z0[1]))  # y = 1
    ce1 = math.log(1 + math.exp(2.0))  # z = (0, 2), y = 0: −0 + log(e⁰ + e²)
    torch.testing.assert_close(loss, torch.tensor((ce0 + ce1) / 2))
