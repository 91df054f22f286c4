"""pmr: class prototypes, prototypical CE on the slow modality, prototype entropy on the fast."""

import math

import pytest
import torch
from balancing_helpers import build_network, loss_context, make_batch, training_context
from torch.nn import functional as F

from fusekit.builtin.pmr_weighting import (
    PMRWeighting,
    class_prototypes,
    prototype_entropy,
    prototype_logits,
    rebalance_coefficients,
)
from fusekit.plugin import ModalityBatch, TrainingData


def test_prototypes_are_class_means_of_present_rows():
    features = torch.tensor([[1.0, 2.0], [3.0, 4.0], [10.0, 10.0], [5.0, 0.0], [7.0, 2.0]])
    target = torch.tensor([0, 0, 0, 1, 1])
    present = torch.tensor([True, True, False, True, True])  # row 2 absent: not in class 0
    prototypes = class_prototypes(features, target, present, torch.zeros(3, 2), momentum=None)
    expected = torch.tensor([[2.0, 3.0], [6.0, 1.0], [0.0, 0.0]])  # class 2: no row, keeps 0
    torch.testing.assert_close(prototypes, expected)


def test_prototype_update_blends_with_momentum_and_keeps_empty_classes():
    features = torch.tensor([[2.0, 0.0], [4.0, 2.0]])
    previous = torch.tensor([[1.0, 1.0], [9.0, 9.0]])
    present = torch.tensor([True, True])
    prototypes = class_prototypes(features, torch.tensor([0, 0]), present, previous, momentum=0.2)
    # class 0: 0.8 * mean [3, 1] + 0.2 * [1, 1]; class 1 has no rows: 0.8 * prev + 0.2 * prev
    torch.testing.assert_close(prototypes, torch.tensor([[2.6, 1.0], [9.0, 9.0]]))


def test_prototype_logits_are_negative_euclidean_distances():
    features = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    prototypes = torch.tensor([[0.0, 0.0], [3.0, 0.0]])
    logits = prototype_logits(features, prototypes)
    torch.testing.assert_close(logits, torch.tensor([[-1e-6, -3.0], [-5.0, -4.0]]))


def test_zero_distance_has_a_finite_gradient():
    features = torch.zeros(2, 3, requires_grad=True)
    prototype_logits(features, torch.zeros(2, 3)).sum().backward()
    assert torch.isfinite(features.grad).all()


@pytest.mark.parametrize(
    ("scores", "accelerate", "restrain"),
    [
        ([0.6, 0.4], [0.0, 0.5], [0.5, 0.0]),  # ρ = 1.5: β_v = λ = ρ − 1, γ_a = ρ − 1
        ([0.2, 0.5], [1.0, 0.0], [0.0, 1.0]),  # ρ = 0.4: β_a = clip(1/ρ − 1) = 1
        ([0.5, 0.5], [0.0, 0.0], [0.0, 0.0]),  # balanced: nothing
    ],
)
def test_two_modality_coefficients_follow_the_paper_rule(scores, accelerate, restrain):
    beta, gamma = rebalance_coefficients(torch.tensor(scores), torch.tensor([True, True]))
    torch.testing.assert_close(beta, torch.tensor(accelerate))
    torch.testing.assert_close(gamma, torch.tensor(restrain))


def test_three_modality_coefficients_use_best_and_worst_and_skip_absent():
    scores = torch.tensor([0.6, 0.4, 0.5, 0.01])
    beta, gamma = rebalance_coefficients(scores, torch.tensor([True, True, True, False]))
    torch.testing.assert_close(beta, torch.tensor([0.0, 0.5, 0.2, 0.0]))
    torch.testing.assert_close(gamma, torch.tensor([0.5, 0.0, 0.25, 0.0]))


def _pmr_network(weighting):
    return build_network(weighting, shapes={"a": (2,), "b": (2,)}, n_outputs=2, identity=True)


def test_loss_terms_on_a_hand_computed_batch():
    weighting = PMRWeighting(alpha=2.0, mu=0.5)
    network = _pmr_network(weighting)
    weighting.prototypes(0).copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0]]))
    weighting.prototypes(1).copy_(torch.tensor([[0.0, 0.0], [0.0, 3.0]]))
    weighting.ready, weighting.epoch = True, 0
    batch = make_batch(shapes={"a": (2,), "b": (2,)}, n=2)
    batch.features["a"] = torch.tensor([[0.0, 0.0], [1.0, 0.0]])  # a: on its prototypes
    batch.features["b"] = torch.tensor([[0.0, 1.5], [0.0, 1.5]])  # b: halfway
    target = torch.tensor([0, 1])
    network.eval()
    terms = weighting.loss_terms(network(batch), loss_context(network, batch, target))
    logits_a = torch.tensor([[0.0, -1.0], [-1.0, 0.0]])
    logits_b = torch.full((2, 2), -1.5)
    score_a = F.softmax(logits_a, 1)[[0, 1], target].mean()
    score_b = F.softmax(logits_b, 1)[[0, 1], target].mean()
    assert score_a > score_b  # a dominates: accelerate b, restrain a
    rho = (score_a / score_b).item()
    coefficient = min(max(rho - 1, 0.0), 1.0)
    expected_pce = 2.0 * coefficient * F.cross_entropy(logits_b, target)
    expected_per = -0.5 * coefficient * prototype_entropy(logits_a).mean()
    torch.testing.assert_close(terms["pmr_pce"], expected_pce, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(terms["pmr_per"], expected_per, atol=1e-5, rtol=1e-5)
    entropy_uniform = prototype_entropy(torch.zeros(1, 4))
    torch.testing.assert_close(entropy_uniform, torch.tensor([math.log(4)]))


def test_entropy_regulariser_only_early_and_nothing_outside_the_window():
    weighting = PMRWeighting(entropy_epochs=2, start_epoch=1, end_epoch=5)
    network = _pmr_network(weighting)
    weighting.ready = True
    batch = make_batch(shapes={"a": (2,), "b": (2,)}, n=6)
    target = torch.tensor([0, 1, 0, 1, 0, 1])
    keys = {}
    for epoch in (0, 2, 3, 6):
        weighting.epoch = epoch
        keys[epoch] = set(
            weighting.loss_terms(network(batch), loss_context(network, batch, target))
        )
    assert keys == {0: set(), 2: {"pmr_pce", "pmr_per"}, 3: {"pmr_pce"}, 6: set()}


def test_epoch_begin_computes_prototypes_from_the_training_rows():
    weighting = PMRWeighting(momentum=0.5)
    network = _pmr_network(weighting)
    mask = torch.tensor([[True, True], [True, False], [True, True], [False, True]])
    batch = make_batch(shapes={"a": (2,), "b": (2,)}, n=4, mask=mask)
    target = torch.tensor([0, 0, 1, 1])
    data = TrainingData(batch, target)
    weighting.on_train_begin(training_context(network))
    weighting.on_epoch_begin(training_context(network, epoch=0, data=data))
    a, b = batch.features["a"], batch.features["b"]
    first_a = torch.stack([a[:2].mean(0), a[2]])
    first_b = torch.stack([b[0], b[2:].mean(0)])
    torch.testing.assert_close(weighting.prototypes(0), first_a)
    torch.testing.assert_close(weighting.prototypes(1), first_b)
    assert network.training  # mode restored
    weighting.on_epoch_begin(training_context(network, epoch=1, data=data))
    torch.testing.assert_close(weighting.prototypes(0), first_a)  # same data: fixed point


def test_slow_modality_gets_prototype_gradient_only():
    weighting = PMRWeighting(mu=0.0)
    network = build_network(weighting, shapes={"a": (2,), "b": (2,)}, n_outputs=2)
    weighting.ready, weighting.epoch = True, 0
    batch = make_batch(shapes={"a": (2,), "b": (2,)}, n=4)
    weighting.prototypes(0).copy_(torch.randn(2, 6))
    weighting.prototypes(1).copy_(torch.randn(2, 6))
    terms = weighting.loss_terms(
        network(batch), loss_context(network, batch, torch.tensor([0, 1] * 2))
    )
    terms["pmr_pce"].backward()
    beta, _ = weighting.coefficients
    for position, name in enumerate("ab"):
        grad = network.backbones[name].layers[0].weight.grad
        touched = grad is not None and grad.abs().sum() > 0
        assert touched == bool(beta[position] > 0)


def test_loss_terms_with_padded_steps_absent_rows_and_an_absent_modality():
    """Worked by hand. a: sequences (2 steps), b: vectors absent in row 1, c: absent everywhere.
    Prototypes a = [(0, 0), (1, 0)], b = [(0, 0), (0, 3)]; targets (0, 1, 0).
    a's real-step means: (0, 0), (1, 0), (0, 0) (row 0's padded step (9, 9) is ignored)
      -> logits −‖h − c‖ = (0, −1), (−1, 0), (0, −1) -> p(y) = σ(1) = 0.731059 in every row.
    b, rows 0 and 2: (0, 1.5) is 1.5 from both prototypes -> p(y) = 0.5; row 1 left out.
    c is out of max / min. β_b = γ_a = 0.731059 / 0.5 − 1 = 0.462117, β_a = γ_b = β_c = γ_c = 0.
    L_PCE,b = mean over rows 0, 2 of CE((−1.5, −1.5), y) = log 2;
    E_a = H(0.731059, 0.268941) = 0.582203.
    pmr_pce = α β_b log 2, pmr_per = −μ γ_a E_a with α = 2, μ = 0.5."""
    shapes = {"a": (2, 2), "b": (2,), "c": (2,)}
    weighting = PMRWeighting(alpha=2.0, mu=0.5)
    network = build_network(weighting, shapes=shapes, n_outputs=2, identity=True)
    weighting.prototypes(0).copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0]]))
    weighting.prototypes(1).copy_(torch.tensor([[0.0, 0.0], [0.0, 3.0]]))
    weighting.ready, weighting.epoch = True, 0
    features = {
        "a": torch.tensor([[[0.0, 0.0], [9.0, 9.0]], [[1.0, 0.0], [1.0, 0.0]], [[0.0, 0.0]] * 2]),
        "b": torch.tensor([[0.0, 1.5], [0.0, 0.0], [0.0, 1.5]]),
        "c": torch.zeros(3, 2),
    }
    mask = torch.tensor([[True, True, False], [True, False, False], [True, True, False]])
    steps = {"a": torch.tensor([[True, False], [True, True], [True, True]])}
    batch = ModalityBatch(features, mask, index=torch.arange(3), steps=steps)
    network.eval()
    target = torch.tensor([0, 1, 0])
    terms = weighting.loss_terms(network(batch), loss_context(network, batch, target))
    beta = 1 / (1 + math.exp(-1)) / 0.5 - 1
    p = 1 / (1 + math.exp(-1))
    entropy = -(p * math.log(p) + (1 - p) * math.log(1 - p))
    assert abs(beta - 0.462117) < 1e-6 and abs(entropy - 0.582203) < 1e-6
    torch.testing.assert_close(terms["pmr_pce"], torch.tensor(2.0 * beta * math.log(2)))
    torch.testing.assert_close(terms["pmr_per"], torch.tensor(-0.5 * beta * entropy))
    accelerate, restrain = weighting.coefficients
    torch.testing.assert_close(accelerate, torch.tensor([0.0, beta, 0.0]))
    torch.testing.assert_close(restrain, torch.tensor([beta, 0.0, 0.0]))


def test_no_terms_before_the_first_prototypes_or_outside_an_epoch():
    weighting = PMRWeighting()
    network = _pmr_network(weighting)
    batch = make_batch(shapes={"a": (2,), "b": (2,)}, n=4)
    ctx = loss_context(network, batch, torch.tensor([0, 1, 0, 1]))
    weighting.ready, weighting.epoch = False, 0  # prototypes not computed yet
    assert weighting.loss_terms(network(batch), ctx) == {}
    weighting.ready, weighting.epoch = True, None  # not inside a training epoch
    assert weighting.loss_terms(network(batch), ctx) == {}


@pytest.mark.parametrize("momentum, valid", [(0.0, True), (0.99, True), (1.0, False)])
def test_momentum_must_lie_in_zero_one(momentum, valid):
    if valid:
        build_network(PMRWeighting(momentum=momentum))
    else:
        with pytest.raises(
            ValueError,
            match=r"The 'momentum' parameter of weighting pmr must be a float in the range "
            r"\[0.0, 1.0\)",
        ):
            build_network(PMRWeighting(momentum=momentum))


@pytest.mark.parametrize(
    "params, message",
    [
        ({"alpha": -1.0}, "The 'alpha' parameter of weighting pmr must be"),
        ({"mu": -1.0}, "The 'mu' parameter of weighting pmr must be"),
        ({"entropy_epochs": -1}, "The 'entropy_epochs' parameter of weighting pmr must be"),
        ({"start_epoch": -1}, "The 'start_epoch' parameter of weighting pmr must be"),
        ({"start_epoch": 3, "end_epoch": 2}, r"pmr: end_epoch must be None or >= start_epoch"),
    ],
)
def test_bad_parameters_name_themselves(params, message):
    with pytest.raises(ValueError, match=message):
        build_network(PMRWeighting(**params))


def test_regression_is_rejected():
    with pytest.raises(ValueError, match="pmr: needs a classification task"):
        build_network(PMRWeighting(), task="regression", n_outputs=1)
