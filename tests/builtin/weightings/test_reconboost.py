"""reconboost: alternating boosting stages and global rectification, (B1)-(B4).

Expected values are worked by hand, or re-computed in plain torch with the official phase-1 step
(huacong/ReconBoost ``train.py``: ``- w1 * (target * out_obj.log_softmax(1)).mean(-1) + w2 *
(target * out_join.softmax(1) * out_obj.log_softmax(1)).mean(-1)``) on a linear model whose
weights the test sets, never read back from the implementation.
"""

import math

import numpy as np
import pytest
import torch
from balancing_helpers import (
    build_network,
    loss_context,
    make_data,
    padded_sequence_batch,
    training_context,
)

from fusekit import FusionClassifier, FusionRegressor
from fusekit.builtin.reconboost_weighting import (
    RECTIFY,
    ReconBoostWeighting,
    boosting_loss_per_row,
    schedule,
)
from fusekit.plugin import ModalityBatch


def test_boosting_loss_by_hand():
    """K = 2, y = 1. Learner logits (0, ln 3): p = 0.75, CE = ln(4/3); ensemble (0, ln 9):
    q = 0.9. Row 0: (5 − 0.9)·ln(4/3)/2. Row 1 has no ensemble: q = 0, weight 5."""
    learner = torch.tensor([[0.0, math.log(3.0)], [0.0, math.log(3.0)]])
    ensemble = torch.tensor([[0.0, math.log(9.0)], [0.0, math.log(9.0)]])
    target = torch.tensor([1, 1])
    values = boosting_loss_per_row(learner, ensemble, target, torch.tensor([True, False]), 5.0, 1.0)
    ce = math.log(4.0 / 3.0)
    torch.testing.assert_close(values, torch.tensor([4.1 * ce / 2, 5.0 * ce / 2]))


@pytest.mark.parametrize(
    ("epoch", "n", "boost", "rectify", "expected"),
    [
        (0, 2, 1, 1, (0, 0)),
        (1, 2, 1, 1, (0, RECTIFY)),
        (2, 2, 1, 1, (1, 1)),
        (4, 2, 1, 1, (2, 0)),  # the modalities cycle
        (5, 3, 2, 1, (1, RECTIFY)),  # stage = 5 // 3 = 1, within = 2 >= boost
        (4, 3, 2, 1, (1, 1)),
        (7, 3, 1, 0, (7, 1)),  # no rectification: one stage per epoch, 7 % 3 = 1
    ],
)
def test_schedule_by_hand(epoch, n, boost, rectify, expected):
    assert schedule(epoch, n, boost, rectify) == expected


def _linear_network(weighting, features, weight, bias, rate):
    shapes = {m: v.shape[1:] for m, v in features.items()}
    network = build_network(weighting, shapes=shapes, n_outputs=weight.shape[0], identity=True)
    with torch.no_grad():
        network.head.weight.copy_(torch.tensor(weight, dtype=torch.float32))
        network.head.bias.copy_(torch.tensor(bias, dtype=torch.float32))
        weighting.rate.fill_(rate)
    return network


def _official_step(features, mask, target, weight, bias, rate, position, w1, w2):
    """The official phase-1 loss in plain torch (float64) on concat features and a linear head:
    out_obj = the head on modality ``position`` alone; out_join = rate · the head on the others
    (each row's absent modalities zeroed). Averaged over the rows where ``position`` is present;
    rows with no other modality get q = 0 (fusekit's rule for missing data)."""
    names = list(features)
    widths = [features[m].shape[1] for m in names]
    starts = np.cumsum([0] + widths)
    x = {m: torch.tensor(features[m] * mask[:, [p]], dtype=torch.float64) for p, m in
         enumerate(names)}  # fmt: skip
    W = torch.tensor(weight, dtype=torch.float64)
    b = torch.tensor(bias, dtype=torch.float64)

    def head_on(columns):
        total = b.expand(len(target), -1).clone()
        for p, m in enumerate(names):
            if columns[p]:
                total = total + x[m] @ W[:, starts[p] : starts[p + 1]].T
        return total

    out_obj = head_on([p == position for p in range(len(names))])
    out_join = rate * head_on([p != position for p in range(len(names))])
    onehot = torch.zeros(len(target), W.shape[0], dtype=torch.float64)
    onehot.scatter_(1, torch.tensor(target).view(-1, 1), 1)
    softmax_join = out_join.softmax(1)
    others = np.delete(mask, position, axis=1).any(axis=1)
    softmax_join = softmax_join * torch.tensor(others, dtype=torch.float64)[:, None]
    loss = -w1 * (onehot * out_obj.log_softmax(1)).mean(-1) + w2 * (
        onehot * softmax_join * out_obj.log_softmax(1)
    ).mean(-1)
    rows = torch.tensor(mask[:, position], dtype=torch.float64)
    return float((loss * rows).sum() / rows.sum())


@pytest.mark.parametrize("position", [0, 1, 2])
def test_phase_one_loss_matches_the_official_step(position):
    """Three modalities, missing rows (row 1 lacks b, row 3 has only b, row 4 lacks c), ρ = 0.5:
    the learner has no ρ, the ensemble has it (B1, B2)."""
    rng = np.random.default_rng(4)
    features = {
        "a": rng.normal(size=(5, 2)),
        "b": rng.normal(size=(5, 1)),
        "c": rng.normal(size=(5, 2)),
    }
    mask = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1], [0, 1, 0], [1, 1, 0]], dtype=bool)
    weight, bias = rng.normal(size=(3, 5)) * 2, rng.normal(size=3)
    target = np.array([0, 1, 2, 1, 0])
    weighting = ReconBoostWeighting(weight1=5.0, weight2=2.0)
    network = _linear_network(weighting, features, weight, bias, rate=0.5)
    weighting.stage, weighting.phase = 0, position
    tensors = {m: torch.tensor(v * mask[:, [p]], dtype=torch.float32)
               for p, (m, v) in enumerate(features.items())}  # fmt: skip
    batch = ModalityBatch(tensors, torch.tensor(mask)).with_mask(torch.tensor(mask))
    network.train()
    output = network(batch)
    loss = weighting.task_loss(output, loss_context(network, batch, torch.tensor(target)))
    expected = _official_step(features, mask, target, weight, bias, 0.5, position, 5.0, 2.0)
    torch.testing.assert_close(loss, torch.tensor(expected, dtype=torch.float32))


def _mlp_network(weighting):
    torch.manual_seed(0)
    network = build_network(weighting, shapes={"a": (4,), "b": (3,)})
    batch = ModalityBatch(
        {"a": torch.randn(8, 4), "b": torch.randn(8, 3)}, torch.ones(8, 2, dtype=torch.bool)
    )
    return network.train(), batch, torch.arange(8) % 3


def _grad_sum(parameters):
    return sum(float(p.grad.abs().sum()) for p in parameters if p.grad is not None)


def test_phase_one_trains_only_the_chosen_encoder_and_phase_two_everything():
    """Epoch 2 (stage 1, modality b): only b's encoder and the head get gradient, not a's nor ρ;
    epoch 3 (rectification, B4): a, b and ρ do."""
    weighting = ReconBoostWeighting()
    network, batch, target = _mlp_network(weighting)
    weighting.on_epoch_begin(training_context(network, epoch=2))
    assert weighting.phase == 1
    loss = network.loss(network(batch), target, batch, training=True)
    loss.backward()
    assert _grad_sum(network.modality_parameters("a")) == 0
    assert _grad_sum(network.modality_parameters("b")) > 0
    assert _grad_sum(network.head.parameters()) > 0
    assert weighting.rate.grad is None or float(weighting.rate.grad) == 0
    network.zero_grad()
    weighting.on_epoch_begin(training_context(network, epoch=3))
    assert weighting.phase == RECTIFY
    output = network(batch)
    loss = network.loss(output, target, batch, training=True)
    ce = torch.nn.functional.cross_entropy(output.logits, target)  # (B4), on ρ · head
    torch.testing.assert_close(loss, ce)
    loss.backward()
    for name in ("a", "b"):
        assert _grad_sum(network.modality_parameters(name)) > 0
    assert float(weighting.rate.grad) != 0


def test_logits_are_scaled_by_the_boost_rate_in_prediction():
    """(B1): F = ρ · (fusion, head). ρ = 2 doubles the network's logits in eval mode."""
    weighting = ReconBoostWeighting()
    network, batch, _ = _mlp_network(weighting)
    network.eval()
    with torch.no_grad():
        base = network(batch).logits
        weighting.rate.fill_(2.0)
        doubled = network(batch).logits
    torch.testing.assert_close(doubled, 2.0 * base)


def test_consolidation_term_from_the_second_stage_by_hand():
    """Stage 1 on b, previous modality a. With α = 0.5 the loss is (B2) + 0.5·MSE of the two
    learners' softmaxes (computed here from separate head passes); with α = 0 (both codes'
    effect: their term has no gradient) it is (B2) alone, the MSE only recorded."""
    results = {}
    for alpha in (0.0, 0.5):
        weighting = ReconBoostWeighting(alpha=alpha)
        network, batch, target = _mlp_network(weighting)
        weighting.on_epoch_begin(training_context(network, epoch=2))
        output = network(batch)
        loss = weighting.task_loss(output, loss_context(network, batch, target))
        results[alpha] = (loss, output.diagnostics)
    h = output.calibrated
    zeros = {m: torch.zeros_like(v) for m, v in h.items()}
    with torch.no_grad():
        f_a = network.head(torch.cat([h["a"], zeros["b"]], dim=1))
        f_b = network.head(torch.cat([zeros["a"], h["b"]], dim=1))
    mse = float(((f_b.softmax(1) - f_a.softmax(1)) ** 2).mean())
    boosting = results[0.0][1]["reconboost_boosting"]
    torch.testing.assert_close(results[0.0][0].detach(), boosting)
    torch.testing.assert_close(
        results[0.0][1]["reconboost_consolidation"], torch.tensor(mse), rtol=1e-5, atol=1e-7
    )
    torch.testing.assert_close(results[0.5][0].detach(), boosting + 0.5 * mse, rtol=1e-5, atol=1e-7)


def test_no_consolidation_in_the_first_stage():
    weighting = ReconBoostWeighting(alpha=0.5)
    network, batch, target = _mlp_network(weighting)
    weighting.on_epoch_begin(training_context(network, epoch=0))
    output = network(batch)
    weighting.task_loss(output, loss_context(network, batch, target))
    assert "reconboost_consolidation" not in output.diagnostics


def test_a_batch_without_the_chosen_modality_trains_nothing():
    weighting = ReconBoostWeighting()
    network, batch, target = _mlp_network(weighting)
    mask = torch.tensor([[False, True]] * 8)
    batch = batch.with_mask(mask)
    output = network(batch)
    loss = weighting.task_loss(output, loss_context(network, batch, target))
    assert float(loss.detach()) == 0.0


def test_validation_passes_use_the_joint_loss():
    weighting = ReconBoostWeighting()
    network, batch, target = _mlp_network(weighting)
    output = network(batch)
    loss = weighting.task_loss(output, loss_context(network, batch, target, training=False))
    torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(output.logits, target))


def test_fit_follows_the_schedule_and_partial_fit_continues_it():
    X, y = make_data(2)
    model = FusionClassifier(weighting="reconboost", max_epochs=4, random_state=0).fit(X, y)
    assert model.module_.weighting.phases == ["a", RECTIFY, "b", RECTIFY]
    assert model.score(X, y) > 0.6
    chunks = FusionClassifier(weighting="reconboost", random_state=0)
    for _ in range(3):
        chunks.partial_fit(X, y, classes=np.unique(y))
    assert chunks.module_.weighting.phases == ["a", RECTIFY, "b"]


def test_fits_with_three_modalities_and_is_reproducible():
    X, y = make_data(3)
    kwargs = {"weighting": "reconboost", "max_epochs": 6, "random_state": 0}
    first = FusionClassifier(**kwargs).fit(X, y)
    second = FusionClassifier(**kwargs).fit(X, y)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    assert first.module_.weighting.phases == ["a", RECTIFY, "b", RECTIFY, "c", RECTIFY]


def test_composes_with_another_weighting():
    X, y = make_data(2)
    model = FusionClassifier(
        weighting=["modality_dropout", "reconboost"], max_epochs=2, random_state=0
    )
    assert np.isfinite(model.fit(X, y).predict_proba(X)).all()


def test_regression_is_refused():
    X, y = make_data(2)
    with pytest.raises(ValueError, match="reconboost: needs a classification task"):
        FusionRegressor(weighting="reconboost", max_epochs=1).fit(X, y.astype(float))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"weight1": -1.0}, "The 'weight1' parameter of weighting reconboost must be"),
        ({"alpha": -0.5}, "The 'alpha' parameter of weighting reconboost must be"),
        ({"boost_rate": math.inf}, "The 'boost_rate' parameter of weighting reconboost must be"),
        ({"boost_epochs": 0}, "The 'boost_epochs' parameter of weighting reconboost must be"),
        ({"rectify_epochs": 1.5}, "The 'rectify_epochs' parameter of weighting reconboost must be"),
    ],
)
def test_bad_parameters_are_clear_errors(params, message):
    X, y = make_data(2)
    params = {f"weighting__{k}": v for k, v in params.items()}
    model = FusionClassifier(weighting="reconboost", max_epochs=1, **params)
    with pytest.raises(ValueError, match=message):
        model.fit(X, y)


def _softmax_np(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("epoch", [0, 2])
def test_padded_sequences_pool_over_their_real_steps_in_every_pass(epoch):
    """Epoch 0: the learner is a (the padded sequence); epoch 2 (stage 1, b, α = 0.5): a is in
    the ensemble F_{−b} and is the previous learner of (B3), whose rows need both present (row 3
    lacks a). Expected: the official step on a's mean over its real steps, plus, at epoch 2,
    0.5 · mean over rows 0, 1 of mean_k (softmax f_b − softmax f_a)², worked in numpy."""
    rng = np.random.default_rng(11)
    weight, bias = rng.normal(size=(3, 4)), rng.normal(size=3)
    target = np.array([0, 2, 1, 1])
    batch, mask, pooled = padded_sequence_batch()
    weighting = ReconBoostWeighting(weight1=5.0, weight2=2.0, alpha=0.5)
    shapes = {"a": (3, 2), "b": (2,)}
    network = build_network(weighting, shapes=shapes, n_outputs=3, identity=True)
    with torch.no_grad():
        network.head.weight.copy_(torch.tensor(weight, dtype=torch.float32))
        network.head.bias.copy_(torch.tensor(bias, dtype=torch.float32))
        weighting.rate.fill_(0.5)
    network.train()
    weighting.on_epoch_begin(training_context(network, epoch=epoch))
    output = network(batch)
    loss = weighting.task_loss(output, loss_context(network, batch, torch.tensor(target)))
    position = weighting.phase
    expected = _official_step(pooled, mask, target, weight, bias, 0.5, position, 5.0, 2.0)
    if epoch == 2:
        f_a = pooled["a"] @ weight[:, :2].T + bias
        f_b = pooled["b"] @ weight[:, 2:].T + bias
        both = mask[:, 0] & mask[:, 1]
        squared = ((_softmax_np(f_b) - _softmax_np(f_a)) ** 2).mean(axis=1)
        expected += 0.5 * squared[both].mean()
    torch.testing.assert_close(loss, torch.tensor(expected, dtype=torch.float32))


def test_three_modalities_consolidate_against_the_previous_stages_modality():
    """Stage 1 on b (epoch 2), three modalities, α = 0.5: (B3)'s f_{m_{s−1}} is a's learner (the
    stage before trained a), not c's, which for two modalities would be the same one."""
    rng = np.random.default_rng(6)
    features = {m: rng.normal(size=(6, 2)) for m in "abc"}
    mask = np.ones((6, 3), dtype=bool)
    weight, bias = rng.normal(size=(3, 6)) * 2, rng.normal(size=3)
    target = np.array([0, 1, 2, 1, 0, 2])
    weighting = ReconBoostWeighting(weight1=5.0, weight2=2.0, alpha=0.5)
    network = _linear_network(weighting, features, weight, bias, rate=1.0)
    weighting.on_epoch_begin(training_context(network, epoch=2))
    assert (weighting.stage, weighting.phase) == (1, 1)
    tensors = {m: torch.tensor(v, dtype=torch.float32) for m, v in features.items()}
    batch = ModalityBatch(tensors, torch.tensor(mask))
    network.train()
    loss = weighting.task_loss(network(batch), loss_context(network, batch, torch.tensor(target)))
    boosting = _official_step(features, mask, target, weight, bias, 1.0, 1, 5.0, 2.0)
    f_a = features["a"] @ weight[:, :2].T + bias
    f_b = features["b"] @ weight[:, 2:4].T + bias
    mse = ((_softmax_np(f_b) - _softmax_np(f_a)) ** 2).mean()
    torch.testing.assert_close(loss, torch.tensor(boosting + 0.5 * mse, dtype=torch.float32))
