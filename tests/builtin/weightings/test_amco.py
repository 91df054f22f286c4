"""amco: class-masked logits of the dependent modality and one more decision layer, (A1)-(A6).

Expected values are worked by hand from the equations in the module docstring, or computed by a
numpy re-implementation of BalanceBenchmark's ``AMCoTrainer.training_step`` and
``BaseClassifierAMCoModel.unimodality_calculate`` in this file, never read back from the module.
"""

import math

import numpy as np
import pytest
import torch
from balancing_helpers import build_network, loss_context, make_data, training_context

from fusekit import FusionClassifier, FusionRegressor
from fusekit.builtin.amco_weighting import AMCoWeighting, class_mask, mask_fraction
from fusekit.builtin.concat_fusion import ConcatFusion
from fusekit.plugin import ModalityBatch


def test_mask_fraction_by_hand():
    """(A2), ε = 0.3: l = 0 -> 0; l = 0.1 -> sin(π/6) = 1/2; l = 0.2 -> sin(π/3); l >= ε -> 1."""
    assert mask_fraction(0.0, 0.3) == 0.0
    assert mask_fraction(0.1, 0.3) == pytest.approx(0.5)
    assert mask_fraction(0.2, 0.3) == pytest.approx(math.sqrt(3) / 2)
    assert mask_fraction(0.3, 0.3) == pytest.approx(1.0)
    assert mask_fraction(7.0, 0.3) == pytest.approx(1.0)


def test_class_mask_zeroes_the_classes_of_lowest_rank():
    """(A2): permutation (2, 0, 3, 1), N = 2: ranks 0 and 1 sit at classes 1 and 3."""
    mask = class_mask(torch.tensor([2, 0, 3, 1]), 2)
    torch.testing.assert_close(mask, torch.tensor([1.0, 0.0, 1.0, 0.0]))
    assert class_mask(torch.tensor([1, 0]), 0).tolist() == [1.0, 1.0]


def test_masked_classes_follow_the_schedule_of_the_code():
    """K = 4: the code's l_t starts at 0 every epoch and grows by epoch/10 per batch. Epoch 0:
    N = 0 throughout; epoch 1: N = ⌊4 p_t⌋ = 0, 2 (p = 1/2), 3 (p = 0.866), 4, 4; epoch 3: 0, 4."""
    weighting = AMCoWeighting()
    network = build_network(weighting, n_outputs=4)
    seen = {}
    for epoch, batches in [(0, 4), (1, 5), (3, 2)]:
        weighting.on_epoch_begin(training_context(network, epoch=epoch))
        seen[epoch] = []
        for _ in range(batches):
            weighting.on_batch_begin(training_context(network, epoch=epoch))
            seen[epoch].append(int((weighting.mask == 0).sum()))
    assert seen == {0: [0, 0, 0, 0], 1: [0, 2, 3, 4, 4], 3: [0, 4]}


def test_masked_classes_are_drawn_from_torchs_generator():
    weighting = AMCoWeighting()
    network = build_network(weighting, n_outputs=5)
    weighting.on_epoch_begin(training_context(network, epoch=1))
    weighting.progress = 0.1  # p = 1/2, N = 2
    torch.manual_seed(4)
    expected = (torch.randperm(5) >= 2).float()
    torch.manual_seed(4)
    weighting.on_batch_begin(training_context(network, epoch=1))
    torch.testing.assert_close(weighting.mask, expected)


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _cross_entropy(z, target, rows=None):
    losses = -np.log(_softmax(z)[np.arange(len(target)), target])
    rows = np.ones(len(target), dtype=bool) if rows is None else rows
    return losses[rows].mean()


def _official_step(features, weight, bias, star_weight, star_bias, dependent, mask_t, target):
    """BalanceBenchmark's AMCo step in numpy (complete data): unimodality_calculate, linear_star,
    the criterion and the dependence update of training_step. Returns the logits, the summed
    unimodal cross-entropies and the new dependence flags."""
    names = list(features)
    unimodal, now_size = {}, 0
    total = np.zeros((len(target), weight.shape[0]))
    for name in names:
        size = features[name].shape[1]
        unimodal[name] = features[name] @ weight[:, now_size : now_size + size].T + bias / len(
            names
        )
        now_size += size
        if dependent[name]:
            unimodal[name] = unimodal[name] * mask_t  # torch.mul((B, K), (1, K))
        total = total + unimodal[name]
    logits = total @ star_weight.T + star_bias
    loss_uni = sum(_cross_entropy(unimodal[name], target) for name in names)
    sft_out = _softmax(np.concatenate([unimodal[name] for name in names], axis=1))
    n_classes, flags = weight.shape[0], {}
    for position, name in enumerate(names):
        block = sft_out[:, position * n_classes : (position + 1) * n_classes]
        flags[name] = bool(block.sum() / len(target) > 0.5)
    return logits, loss_uni, flags


def _linear_network(weighting, shapes, weight, bias, star_weight, star_bias):
    network = build_network(weighting, shapes=shapes, n_outputs=weight.shape[0], identity=True)
    with torch.no_grad():
        network.head.weight.copy_(torch.tensor(weight, dtype=torch.float32))
        network.head.bias.copy_(torch.tensor(bias, dtype=torch.float32))
        weighting.decision.weight.copy_(torch.tensor(star_weight, dtype=torch.float32))
        weighting.decision.bias.copy_(torch.tensor(star_bias, dtype=torch.float32))
    return network


@pytest.mark.parametrize(
    ("dependent", "mask_t"),
    [
        ({"a": False, "b": False}, [1.0, 1.0, 1.0]),
        ({"a": True, "b": False}, [1.0, 0.0, 1.0]),
        ({"a": False, "b": True}, [0.0, 0.0, 0.0]),  # the whole dependent modality masked
    ],
)
def test_training_pass_matches_the_official_step(dependent, mask_t):
    rng = np.random.default_rng(7)
    features = {"a": rng.normal(size=(6, 2)) * 2, "b": rng.normal(size=(6, 3))}
    weight, bias = rng.normal(size=(3, 5)) * 2, rng.normal(size=3)
    star_weight, star_bias = rng.normal(size=(3, 3)), rng.normal(size=3)
    target = np.array([0, 1, 2, 1, 0, 2])
    weighting = AMCoWeighting()
    shapes = {m: v.shape[1:] for m, v in features.items()}
    network = _linear_network(weighting, shapes, weight, bias, star_weight, star_bias)
    network.train()
    weighting.on_epoch_begin(training_context(network, epoch=1))
    weighting.on_batch_begin(training_context(network, epoch=1))
    weighting.dependent.copy_(torch.tensor([dependent["a"], dependent["b"]]))
    weighting.mask.copy_(torch.tensor(mask_t))
    tensors = {m: torch.tensor(v, dtype=torch.float32) for m, v in features.items()}
    batch = ModalityBatch(tensors, torch.ones(6, 2, dtype=torch.bool))
    output = network(batch)
    terms = weighting.loss_terms(output, loss_context(network, batch, torch.tensor(target)))
    logits, loss_uni, flags = _official_step(
        features, weight, bias, star_weight, star_bias, dependent, np.array([mask_t]), target
    )
    torch.testing.assert_close(output.logits, torch.tensor(logits, dtype=torch.float32))
    torch.testing.assert_close(terms["amco_unimodal"], torch.tensor(loss_uni, dtype=torch.float32))
    assert weighting.dependent.tolist() == [flags["a"], flags["b"]]


def test_missing_rows_count_only_where_their_modality_is_present():
    """Row 1 lacks b, row 2 lacks a: CE(z̃_a) over rows 0, 1, 3; CE(z̃_b) over rows 0, 2, 3; in
    (A5) an absent entry has no share (its logits are left out of the M·K softmax)."""
    weight = np.array([[1.0, -1.0, 0.5], [0.0, 2.0, -1.0]])  # K = 2, a: 2 columns, b: 1
    bias = np.array([0.2, -0.4])
    features = {"a": np.array([[1.0, 0.0], [0.5, 1.0], [0.0, 0.0], [2.0, -1.0]]),
                "b": np.array([[1.0], [0.0], [-2.0], [0.5]])}  # fmt: skip
    mask = np.array([[1, 1], [1, 0], [0, 1], [1, 1]], dtype=bool)
    target = np.array([0, 1, 1, 0])
    weighting = AMCoWeighting(sigma=0.6)
    network = _linear_network(weighting, {"a": (2,), "b": (1,)}, weight, bias, np.eye(2),
                              np.zeros(2))  # fmt: skip
    network.train()
    weighting.on_epoch_begin(training_context(network, epoch=0))
    weighting.on_batch_begin(training_context(network, epoch=0))
    tensors = {m: torch.tensor(v, dtype=torch.float32) for m, v in features.items()}
    batch = ModalityBatch(tensors, torch.tensor(mask)).with_mask(torch.tensor(mask))
    output = network(batch)
    terms = weighting.loss_terms(output, loss_context(network, batch, torch.tensor(target)))
    z_a = (features["a"] * mask[:, [0]]) @ weight[:, :2].T + bias / 2
    z_b = (features["b"] * mask[:, [1]]) @ weight[:, 2:].T + bias / 2
    expected = _cross_entropy(z_a, target, mask[:, 0]) + _cross_entropy(z_b, target, mask[:, 1])
    torch.testing.assert_close(terms["amco_unimodal"], torch.tensor(expected, dtype=torch.float32))
    shares = []
    for row in range(4):
        blocks = [z for z, present in zip((z_a[row], z_b[row]), mask[row], strict=True)]
        e = [
            np.exp(z).sum() if present else 0.0
            for z, present in zip(blocks, mask[row], strict=True)
        ]
        shares.append(np.array(e) / sum(e))
    share = np.mean(shares, axis=0)
    torch.testing.assert_close(
        output.diagnostics["amco_share"], torch.tensor(share, dtype=torch.float32)
    )
    assert weighting.dependent.tolist() == list(share > 0.6)


def test_nothing_is_masked_outside_training_or_the_window():
    """Evaluation, or an epoch outside the window: logits = L*(head(fused)), no loss term."""
    rng = np.random.default_rng(1)
    weight, bias = rng.normal(size=(2, 3)), rng.normal(size=2)
    star_weight, star_bias = rng.normal(size=(2, 2)), rng.normal(size=2)
    weighting = AMCoWeighting(start_epoch=2, end_epoch=3)
    network = _linear_network(weighting, {"a": (2,), "b": (1,)}, weight, bias, star_weight,
                              star_bias)  # fmt: skip
    x = {"a": rng.normal(size=(4, 2)), "b": rng.normal(size=(4, 1))}
    batch = ModalityBatch({m: torch.tensor(v, dtype=torch.float32) for m, v in x.items()},
                          torch.ones(4, 2, dtype=torch.bool))  # fmt: skip
    plain = (np.concatenate([x["a"], x["b"]], axis=1) @ weight.T + bias) @ star_weight.T + star_bias
    target = torch.tensor([0, 1, 1, 0])
    for epoch, training, masked in [(1, True, False), (2, True, True), (4, True, False),
                                    (2, False, False)]:  # fmt: skip
        network.train(training)
        weighting.on_epoch_begin(training_context(network, epoch=epoch))
        weighting.on_batch_begin(training_context(network, epoch=epoch))
        weighting.dependent.fill_(True)
        weighting.mask.zero_()  # every class masked: the decision sees L*(0) when active
        output = network(batch)
        expected = np.tile(star_bias, (4, 1)) if masked else plain
        torch.testing.assert_close(output.logits, torch.tensor(expected, dtype=torch.float32))
        terms = weighting.loss_terms(output, loss_context(network, batch, target, training))
        assert bool(terms) is masked, (epoch, training)


def test_a_share_of_exactly_sigma_is_not_dependent():
    """(A6) is a strict ">": two identical modalities each hold half of the softmax mass, and
    with σ = 0.5 neither becomes dependent."""
    weighting = AMCoWeighting(sigma=0.5)
    weight = np.array([[1.0, 1.0], [-1.0, -1.0]])  # a and b: one column each, the same
    network = _linear_network(weighting, {"a": (1,), "b": (1,)}, weight, np.zeros(2), np.eye(2),
                              np.zeros(2))  # fmt: skip
    network.train()
    weighting.on_batch_begin(training_context(network, epoch=0))
    x = torch.tensor([[0.5], [-2.0], [1.0]])
    batch = ModalityBatch({"a": x, "b": x.clone()}, torch.ones(3, 2, dtype=torch.bool))
    output = network(batch)
    weighting.loss_terms(output, loss_context(network, batch, torch.tensor([0, 1, 0])))
    torch.testing.assert_close(output.diagnostics["amco_share"], torch.tensor([0.5, 0.5]))
    assert weighting.dependent.tolist() == [False, False]


def test_dependence_is_reset_at_each_epoch():
    weighting = AMCoWeighting()
    network = build_network(weighting)
    weighting.dependent.fill_(True)
    weighting.on_epoch_begin(training_context(network, epoch=3))
    assert not weighting.dependent.any()


def test_the_unimodal_losses_train_the_encoders_and_the_head():
    torch.manual_seed(0)
    weighting = AMCoWeighting()
    network = build_network(weighting)
    network.train()
    weighting.on_batch_begin(training_context(network, epoch=0))
    batch = ModalityBatch({"a": torch.randn(8, 4), "b": torch.randn(8, 3)},
                          torch.ones(8, 2, dtype=torch.bool))  # fmt: skip
    output = network(batch)
    terms = weighting.loss_terms(output, loss_context(network, batch, torch.randint(0, 3, (8,))))
    terms["amco_unimodal"].backward()
    for name in ("a", "b"):
        grads = [p.grad for p in network.modality_parameters(name) if p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads), name
    assert network.head.weight.grad.abs().sum() > 0
    assert weighting.decision.weight.grad is None  # L* is trained by the task loss only


def test_fits_and_is_reproducible():
    """The extra decision layer L* starts random, so AMCo learns slower than plain concat
    (training accuracy 0.51 / 0.58 / 0.90 after 3 / 6 / 10 epochs, plain concat 0.79 / 0.89 /
    0.91; threshold 0.8 at 10)."""
    X, y = make_data(3)
    first = FusionClassifier(weighting="amco", max_epochs=10, random_state=0).fit(X, y)
    second = FusionClassifier(weighting="amco", max_epochs=10, random_state=0).fit(X, y)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    assert first.score(X, y) > 0.8


@pytest.mark.parametrize("other", ["modality_dropout", "agm", "cml"])
def test_composes_with_another_weighting(other):
    """Beside a perturbation, and beside methods whose extra fuse passes run adjust_logits."""
    X, y = make_data(2)
    model = FusionClassifier(weighting=[other, "amco"], max_epochs=2, random_state=0)
    assert np.isfinite(model.fit(X, y).predict_proba(X)).all()


def test_another_fusion_is_refused_by_name():
    X, y = make_data(2)
    with pytest.raises(ValueError, match="amco: needs fusion='concat'.*SumFusion"):
        FusionClassifier(fusion="sum", weighting="amco", max_epochs=1).fit(X, y)


def test_regression_is_refused():
    X, y = make_data(2)
    with pytest.raises(ValueError, match="amco: needs a classification task"):
        FusionRegressor(weighting="amco", max_epochs=1).fit(X, y.astype(float))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"sigma": 1.5}, "'sigma' parameter of weighting amco must be a float"),
        ({"eps": 0}, "'eps' parameter of weighting amco must be a float"),
        ({"start_epoch": 3, "end_epoch": 1}, "amco: end_epoch must be None or >= start_epoch"),
    ],
)
def test_bad_parameters_name_themselves(params, message):
    X, y = make_data(2)
    model = FusionClassifier(
        weighting="amco", max_epochs=1, **{f"weighting__{k}": v for k, v in params.items()}
    )
    with pytest.raises(ValueError, match=message):
        model.fit(X, y)


def test_the_indicator_columns_belong_to_their_modality():
    """concat with ``indicators=True``: the head's column Σ D + m multiplies m's mask bit and
    belongs to z_m (A1). b dependent, class 1 masked; row 1 lacks b, row 3 lacks a. Expected in
    numpy: z_m = (mask_m h_m) W_mᵀ + mask_m W_{:, ind m} + b / 2, then (A3)-(A5)."""
    rng = np.random.default_rng(3)
    features = {"a": rng.normal(size=(5, 2)), "b": rng.normal(size=(5, 3))}
    mask = np.array([[1, 1], [1, 0], [1, 1], [0, 1], [1, 1]], dtype=bool)
    weight, bias = rng.normal(size=(3, 7)) * 2, rng.normal(size=3)
    weight[:, 5:] *= 3  # indicator columns large enough to move the predictions
    star_weight, star_bias = rng.normal(size=(3, 3)), rng.normal(size=3)
    target = np.array([0, 1, 2, 1, 0])
    mask_t = np.array([1.0, 0.0, 1.0])
    weighting = AMCoWeighting(sigma=0.5)
    network = build_network(
        weighting,
        shapes={"a": (2,), "b": (3,)},
        n_outputs=3,
        identity=True,
        fusion=ConcatFusion(indicators=True),
    )
    with torch.no_grad():
        network.head.weight.copy_(torch.tensor(weight, dtype=torch.float32))
        network.head.bias.copy_(torch.tensor(bias, dtype=torch.float32))
        weighting.decision.weight.copy_(torch.tensor(star_weight, dtype=torch.float32))
        weighting.decision.bias.copy_(torch.tensor(star_bias, dtype=torch.float32))
    network.train()
    weighting.on_epoch_begin(training_context(network, epoch=1))
    weighting.on_batch_begin(training_context(network, epoch=1))
    weighting.dependent.copy_(torch.tensor([False, True]))
    weighting.mask.copy_(torch.tensor(mask_t, dtype=torch.float32))
    tensors = {m: torch.tensor(v * mask[:, [p]], dtype=torch.float32)
               for p, (m, v) in enumerate(features.items())}  # fmt: skip
    batch = ModalityBatch(tensors, torch.tensor(mask)).with_mask(torch.tensor(mask))
    output = network(batch)
    terms = weighting.loss_terms(output, loss_context(network, batch, torch.tensor(target)))
    present = mask.astype(float)
    z_a = (features["a"] * present[:, [0]]) @ weight[:, :2].T + present[:, [0]] * weight[:, 5]
    z_b = (features["b"] * present[:, [1]]) @ weight[:, 2:5].T + present[:, [1]] * weight[:, 6]
    z_a, z_b = z_a + bias / 2, (z_b + bias / 2) * mask_t  # b dependent: masked (A3)
    logits = (z_a + z_b) @ star_weight.T + star_bias
    torch.testing.assert_close(output.logits, torch.tensor(logits, dtype=torch.float32))
    loss = _cross_entropy(z_a, target, mask[:, 0]) + _cross_entropy(z_b, target, mask[:, 1])
    torch.testing.assert_close(terms["amco_unimodal"], torch.tensor(loss, dtype=torch.float32))
    shares = []
    for row in range(5):
        e = [np.exp(z[row]).sum() if mask[row, p] else 0.0 for p, z in enumerate((z_a, z_b))]
        shares.append(np.array(e) / sum(e))
    torch.testing.assert_close(
        output.diagnostics["amco_share"], torch.tensor(np.mean(shares, axis=0)).float()
    )
