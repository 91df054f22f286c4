"""qmf: energy confidences weight the unimodal logits; ranking against per-sample loss history."""

import math

import numpy as np
import pytest
import torch
from weightings_helpers import build_network, loss_context, make_batch, make_data

from fusekit import FusionClassifier
from fusekit.builtin.qmf_weighting import (
    QMFWeighting,
    energy_confidence,
    normalise_history,
    ranking_loss,
)


def test_higher_energy_modality_gets_lower_weight():
    confident = torch.tensor([[6.0, 0.0, 0.0]])  # low energy
    unsure = torch.tensor([[0.1, 0.0, 0.0]])  # high energy
    w_confident, w_unsure = energy_confidence(confident, 10.0), energy_confidence(unsure, 10.0)
    assert w_confident > w_unsure
    torch.testing.assert_close(w_confident, torch.logsumexp(confident, 1) / 10.0)


def test_fused_logits_are_confidence_weighted_sum_of_present_unimodal_logits():
    weighting = QMFWeighting(temperature=10.0)
    network = build_network(weighting)
    mask = torch.tensor([[True, True], [True, False], [False, False]])
    output = network(make_batch(n=3, mask=mask))
    z_a, z_b = output.unimodal_logits["a"], output.unimodal_logits["b"]
    w_a = torch.logsumexp(z_a, 1, keepdim=True) / 10
    w_b = torch.logsumexp(z_b, 1, keepdim=True) / 10
    expected = torch.stack([(w_a * z_a + w_b * z_b)[0], (w_a * z_a)[1], torch.zeros(3)])
    torch.testing.assert_close(output.logits, expected)
    assert output.modality_weights[1, 1] == 0 and output.modality_weights[2].abs().sum() == 0


def test_ranking_penalises_confidence_above_a_higher_loss_history():
    history = torch.tensor([0.2, 0.0])  # sample 0 has the larger loss history
    present = torch.tensor([True, True])
    wrong_order = ranking_loss(torch.tensor([0.5, 0.2]), history, present)
    # pair (0,1): max(0, 1·(0.5 − 0.2) − 0.2); pair (1,0): max(0, −1·(0.2 − 0.5) − 0.2)
    torch.testing.assert_close(wrong_order, torch.tensor(0.1))
    right_order = ranking_loss(torch.tensor([0.2, 0.5]), history, present)
    assert right_order == 0


def test_ranking_ignores_pairs_with_an_absent_sample_and_ties():
    history = torch.tensor([0.2, 0.0, 0.2])
    loss = ranking_loss(torch.tensor([0.5, 0.2, 0.9]), history, torch.tensor([True, False, True]))
    assert loss == 0  # only pair (2, 0) is complete and it is a tie


def test_constant_history_normalises_to_zero():
    torch.testing.assert_close(normalise_history(torch.zeros(4)), torch.zeros(4))
    torch.testing.assert_close(
        normalise_history(torch.tensor([1.0, 3.0])), torch.tensor([0.0, 1.0])
    )


def test_history_is_sized_from_training_data_and_accumulates_present_losses():
    X, y = make_data(2, n=90)
    model = FusionClassifier(weighting="qmf", max_epochs=2, random_state=0).fit(X, y)
    history = model.module_.weighting.loss_history
    mask = torch.from_numpy(~np.isnan(X["a"]).all(axis=1))
    assert history.shape == (90, 2)
    assert torch.all(history[~mask, 0] == 0)
    assert torch.all(history[mask, 0] > 0)


def test_loss_is_fused_plus_unimodal_plus_lambda_ranking():
    weighting = QMFWeighting(lam=0.5)
    network = build_network(weighting)
    weighting.loss_history = torch.tensor([[3.0, 0.0], [0.0, 1.0], [1.0, 2.0], [2.0, 0.5]])
    batch = make_batch(n=4)
    target = torch.tensor([0, 1, 2, 1])
    output = network(batch)
    ctx = loss_context(network, batch, target)
    task = weighting.task_loss(output, ctx)
    expected_task = ctx.per_sample_loss(output.logits).mean() + sum(
        ctx.per_sample_loss(z).mean() for z in output.unimodal_logits.values()
    )
    torch.testing.assert_close(task, expected_task)
    history_before = weighting.loss_history.clone()
    rank = weighting.loss_terms(output, ctx)["qmf_rank"]
    confidence = weighting.confidences(output)
    expected_rank = sum(
        ranking_loss(confidence[:, m], normalise_history(history_before[:, m]), batch.mask[:, m])
        for m in range(2)
    )
    torch.testing.assert_close(rank, 0.5 * expected_rank)
    torch.testing.assert_close(
        weighting.loss_history[:, 0] - history_before[:, 0],
        ctx.per_sample_loss(output.unimodal_logits["a"]).detach(),
    )


def test_ranking_margin_is_the_history_gap():
    # history (0.5, 0.2): t = 1, margin |0.5 − 0.2| = 0.3; confidences (0.9, 0.1):
    # pair (0, 1): max(0, 1·(0.9 − 0.1) − 0.3) = 0.5
    # pair (1, 0): max(0, −1·(0.1 − 0.9) − 0.3) = 0.5
    loss = ranking_loss(
        torch.tensor([0.9, 0.1]), torch.tensor([0.5, 0.2]), torch.ones(2, dtype=bool)
    )
    torch.testing.assert_close(loss, torch.tensor(0.5))


def test_default_confidence_is_the_codes_minus_energy_over_ten():
    # the official code's confidence: −0.1 · energy = logsumexp(z) / 10
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    network = build_network(QMFWeighting())
    output = network(make_batch(n=1))
    output.unimodal_logits = {"a": logits, "b": logits}
    expected = math.log(math.exp(2) + 1 + math.exp(-1)) / 10
    torch.testing.assert_close(network.weighting.confidences(output), torch.full((1, 2), expected))


def test_ranking_term_on_hand_set_logits():
    """T = 1, λ = 0.5, two rows, history a = (1, 0), b = (0, 1) (already normalised).
    w_a = logsumexp: (5, 0, 0) -> 5.013386, (0, 0, 0) -> log 3 = 1.098612; row 0 had the larger
    a-loss but is more confident: both pairs give max(0, 3.914774 − 1) = 2.914774.
    w_b: (0, 0, 0) -> 1.098612, (3, 0, 0) -> 3.094923; row 1 had the larger b-loss:
    max(0, 1.996311 − 1) = 0.996311. qmf_rank = 0.5 · (2.914774 + 0.996311) = 1.955542."""
    weighting = QMFWeighting(lam=0.5, temperature=1.0)
    network = build_network(weighting)
    weighting.loss_history = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    batch = make_batch(n=2)
    target = torch.tensor([0, 1])
    output = network(batch)
    output.unimodal_logits = {
        "a": torch.tensor([[5.0, 0.0, 0.0], [0.0, 0.0, 0.0]]),
        "b": torch.tensor([[0.0, 0.0, 0.0], [3.0, 0.0, 0.0]]),
    }
    terms = weighting.loss_terms(output, loss_context(network, batch, target))
    torch.testing.assert_close(terms["qmf_rank"], torch.tensor(1.955542))
    # then the batch's CE enters the history: a row 0: CE((5,0,0), 0) = log(1 + 2e^−5)
    assert abs(weighting.loss_history[0, 0].item() - (1 + math.log1p(2 * math.exp(-5)))) < 1e-5


def test_no_ranking_outside_training_or_without_row_index():
    weighting = QMFWeighting()
    network = build_network(weighting)
    weighting.loss_history = torch.ones(4, 2)
    batch = make_batch(n=4)
    target = torch.tensor([0, 1, 2, 1])
    output = network(batch)
    assert weighting.loss_terms(output, loss_context(network, batch, target, training=False)) == {}
    unindexed = make_batch(n=4, index=False)
    assert weighting.loss_terms(network(unindexed), loss_context(network, unindexed, target)) == {}


@pytest.mark.parametrize(
    "params, message",
    [
        ({"lam": -0.1}, "The 'lam' parameter of weighting qmf must be"),
        ({"temperature": 0.0}, "The 'temperature' parameter of weighting qmf must be"),
    ],
)
def test_bad_parameters_name_themselves(params, message):
    with pytest.raises(ValueError, match=message):
        build_network(QMFWeighting(**params))


def test_a_temperature_below_one_is_valid():
    build_network(QMFWeighting(temperature=0.5))


def test_ranking_pairs_each_row_with_the_next_one():
    # w = (0.9, 0.1, 0.5), ĉ = (0.5, 0.2, 0.0); pairs (0, 1), (1, 2), (2, 0):
    # (0, 1): t = 1, margin 0.3: max(0, 0.8 − 0.3) = 0.5
    # (1, 2): t = 1, margin 0.2: max(0, −0.4 − 0.2) = 0
    # (2, 0): t = −1, margin 0.5: max(0, 0.4 − 0.5) = 0      -> mean 0.5 / 3
    loss = ranking_loss(
        torch.tensor([0.9, 0.1, 0.5]), torch.tensor([0.5, 0.2, 0.0]), torch.ones(3, dtype=bool)
    )
    torch.testing.assert_close(loss, torch.tensor(0.5 / 3))


def _fused_loss_gradients(detach_confidence: bool):
    """∂CE(z)/∂z_m of the fused loss for both modalities, with the logits and target used."""
    weighting = QMFWeighting(temperature=10.0, detach_confidence=detach_confidence)
    network = build_network(weighting)
    batch = make_batch(n=4)
    target = torch.tensor([0, 1, 2, 1])
    output = network(batch)
    ctx = loss_context(network, batch, target)
    z = [output.unimodal_logits["a"], output.unimodal_logits["b"]]
    fused = ctx.per_sample_loss(output.logits).mean()
    grads = torch.autograd.grad(fused, z)
    return [t.detach() for t in z], output.logits.detach(), target, grads


@pytest.mark.parametrize("detach_confidence", [True, False])
def test_fused_loss_gradient_follows_the_chosen_official_tree(detach_confidence):
    z, fused, target, grads = _fused_loss_gradients(detach_confidence)
    # g = ∂CE(z)/∂z = (softmax(z) − onehot(y)) / B, worked by hand for the mean over B = 4 rows
    g = (torch.softmax(fused, 1) - torch.nn.functional.one_hot(target, 3).float()) / 4
    for z_m, grad in zip(z, grads, strict=True):
        w_m = torch.logsumexp(z_m, 1, keepdim=True) / 10
        expected = w_m * g  # text-image code: weights detached
        if not detach_confidence:  # RGB-D code: + (g · z_m) ∂w_m/∂z_m, ∂w_m/∂z_m = softmax(z_m)/T
            expected = expected + (g * z_m).sum(1, keepdim=True) * torch.softmax(z_m, 1) / 10
        torch.testing.assert_close(grad, expected)


def test_ranking_term_trains_the_confidence_even_when_the_fusion_detaches_it():
    weighting = QMFWeighting(lam=1.0, detach_confidence=True)
    network = build_network(weighting)
    weighting.loss_history = torch.tensor([[3.0, 0.0], [0.0, 1.0], [1.0, 2.0], [2.0, 0.5]])
    batch = make_batch(n=4)
    output = network(batch)
    rank = weighting.loss_terms(output, loss_context(network, batch, torch.tensor([0, 1, 2, 1])))
    assert rank["qmf_rank"].requires_grad


def test_detach_confidence_must_be_a_boolean():
    with pytest.raises(
        TypeError,
        match="The 'detach_confidence' parameter of weighting qmf must be an instance of 'bool'",
    ):
        build_network(QMFWeighting(detach_confidence="no"))
