"""greedy: utilisation rates (G1), learning speeds (G2)-(G4) and re-balancing steps (G5).

Expected values are worked by hand from the module docstring's equations, or come from a
re-implementation of the official ``Bias_Mitigation_Strong`` callback in this file; never from
the implementation's own output.
"""

import math

import numpy as np
import pytest
import torch
from weightings_helpers import build_network, make_data

from fusekit import FusionClassifier
from fusekit.builtin.greedy_weighting import (
    GreedyWeighting,
    conditional_utilization_rates,
    speed_imbalance,
    speed_increment,
)
from fusekit.data import Modalities
from fusekit.datasets import make_imbalanced_classification
from fusekit.plugin import ModalityBatch, NetworkView, TrainingContext
from fusekit.testing import parametrize_with_checks


def test_speed_increment_is_ratio_of_summed_squared_norms():
    """θ = ((3, 4), (0,)), ∇ = ((1, 0), (2,)): (1 + 4) / (25 + 0) = 0.2; no grad: skipped (G2)."""
    first = torch.nn.Parameter(torch.tensor([3.0, 4.0]))
    second = torch.nn.Parameter(torch.tensor([0.0]))
    skipped = torch.nn.Parameter(torch.tensor([100.0]))
    first.grad, second.grad = torch.tensor([1.0, 0.0]), torch.tensor([2.0])
    assert speed_increment([first, second, skipped]) == pytest.approx(0.2)
    assert speed_increment([skipped]) == 0.0
    zero = torch.nn.Parameter(torch.zeros(2))
    zero.grad = torch.ones(2)
    assert speed_increment([zero]) == 0.0  # zero weight norm: no step, not inf


def test_speed_imbalance_two_and_three_modalities():
    """μ = (0.01, 0.1): d = 2·log10(10) = 2, slower 0. μ = (0.2, 0.02, 0): c never seen, d over
    (0.2, 0.02) = 2, slower 1. One modality seen: no imbalance (G3, G4)."""
    assert speed_imbalance(torch.tensor([0.01, 0.1])) == (pytest.approx(2.0), 0)
    assert speed_imbalance(torch.tensor([0.2, 0.02, 0.0])) == (pytest.approx(2.0), 1)
    assert speed_imbalance(torch.tensor([0.3, 0.0])) == (0.0, None)


class OfficialBiasMitigation:
    """``Bias_Mitigation_Strong`` (src/callbacks.py) with its BDR groups read as in fusekit:
    the bypass into branch 0 is modality 1's encoder and the reverse (one step per call)."""

    def __init__(self, epsilon, window, starting_epoch):
        self.epsilon, self.window, self.starting_epoch = epsilon, window, starting_epoch
        self.m_bypass, self.m_main = [0.0, 0.0], [0.0, 0.0]
        self.curation_mode, self.caring_modality, self.unlock = False, None, False

    def on_epoch_begin(self, epoch):  # one-based epochs, as the official loop
        if epoch >= self.starting_epoch:
            self.unlock = True

    def compute_bdr(self, increments):
        self.m_bypass[0] += increments[1]
        self.m_bypass[1] += increments[0]
        self.m_main[0] += increments[0]
        self.m_main[1] += increments[1]
        bdr = [math.log10(self.m_bypass[m] / self.m_main[m]) for m in (0, 1)]
        return bdr[0] - bdr[1]

    def on_backward_end(self, increments):
        if self.unlock:
            if not self.curation_mode:
                d_bdr = self.compute_bdr(increments)
                if abs(d_bdr) > self.epsilon:
                    self.curation_mode = True
                    self.curation_step = 0
                    self.caring_modality = 1 if np.sign(d_bdr) == -1 else 0
                else:
                    self.curation_mode, self.caring_modality = False, 0
            else:
                self.curation_step += 1
                if self.curation_step == self.window:
                    self.curation_mode = False
        else:
            self.compute_bdr(increments)
            self.curation_mode, self.caring_modality = False, 0


def _set_speeds(network, increments):
    """Gradients with ‖∇θ‖² / ‖θ‖² = increments[m] for every parameter of encoder m."""
    for name, k in zip(network.names, increments, strict=True):
        for parameter in network.modality_parameters(name):
            parameter.grad = math.sqrt(k) * parameter.detach().clone()


def test_rebalancing_schedule_matches_the_official_callback():
    """Fed the same per-step speed increments, the weighting re-balances the same modality at
    the same steps as the official callback (epochs of 4 steps, warm-up of one epoch)."""
    network = build_network(GreedyWeighting(alpha=0.05, window=3, warmup_epochs=1))
    weighting = network.weightings[0]
    weighting.on_train_begin(TrainingContext(network, None, None, epoch=0))
    official = OfficialBiasMitigation(epsilon=0.05, window=3, starting_epoch=2)
    generator = np.random.default_rng(0)
    ours, theirs = [], []
    for step in range(24):
        epoch = step // 4
        if step % 4 == 0:
            official.on_epoch_begin(epoch + 1)
        ours.append(weighting.slower)
        theirs.append(official.caring_modality if official.curation_mode else None)
        increments = generator.uniform(0.01, 0.2, size=2).tolist()
        _set_speeds(network, increments)
        weighting.on_grad_computed(TrainingContext(network, None, None, epoch=epoch))
        official.on_backward_end(increments)
    assert ours == theirs
    assert {0, 1} <= set(ours)  # both modalities were re-balanced at some point
    assert ours[:5] == [None] * 5  # never in the warm-up epoch, nor at the check that ends it


def _hand_network(**params):
    shapes = {"a": (2,), "b": (2,)}
    weighting = GreedyWeighting(**{"warmup_epochs": 0, **params})
    network = build_network(weighting, shapes=shapes, n_outputs=2, identity=True)
    with torch.no_grad():
        network.head.weight.copy_(torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]]))
        network.head.bias.zero_()
    weighting.on_train_begin(TrainingContext(network, None, None, epoch=0))
    return network, weighting


def _train_pass(network, weighting, batch):
    network.train()
    weighting.on_batch_begin(TrainingContext(network, None, None, epoch=0, batch=batch))
    return network(batch)


def test_rebalancing_pass_holds_the_other_modality_at_its_running_mean():
    """Pass 1 (regular): mean(b) = ((2 + 4)/2, (2 + 0)/2) = (3, 1). Pass 2, re-balancing a:
    mean(b) ← ((0.5, 0.5) + (3, 1)·1)/2 = (1.75, 0.75), updated before use as in the code;
    logit_0 = a_0 + b̄_0 + b̄_1 = a_0 + 2.5, and b receives no gradient (G5)."""
    network, weighting = _hand_network()
    full = torch.ones(2, 2, dtype=torch.bool)
    first = {
        "a": torch.tensor([[1.0, 0.0], [3.0, 0.0]]),
        "b": torch.tensor([[2.0, 2.0], [4.0, 0.0]]),
    }
    _train_pass(network, weighting, ModalityBatch(first, full, torch.tensor([0, 1])))
    torch.testing.assert_close(weighting.feature_mean(1), torch.tensor([3.0, 1.0]))
    weighting.slower = 0
    b = torch.tensor([[0.0, 0.0], [1.0, 1.0]], requires_grad=True)
    a = torch.tensor([[5.0, 0.0], [1.0, 1.0]], requires_grad=True)
    output = _train_pass(
        network, weighting, ModalityBatch({"a": a, "b": b}, full, torch.tensor([2, 3]))
    )
    assert output.diagnostics["greedy_rebalancing"] == "a"
    torch.testing.assert_close(output.logits[:, 0], torch.tensor([7.5, 3.5]))
    output.logits[:, 0].sum().backward()
    assert b.grad is None or not b.grad.any()
    torch.testing.assert_close(a.grad, torch.tensor([[1.0, 0.0], [1.0, 0.0]]))


def test_rebalancing_keeps_absent_rows_zero_and_means_over_present_rows():
    """b absent in row 1 (its values 50 are ignored): mean(b) = (2, 2) from row 0 only; in the
    re-balancing pass row 1's b stays zero, so logit_0 = a_0 there."""
    network, weighting = _hand_network()
    mask = torch.tensor([[True, True], [True, False]])
    features = {
        "a": torch.tensor([[1.0, 0.0], [3.0, 0.0]]),
        "b": torch.tensor([[2.0, 2.0], [50.0, 50.0]]),
    }
    _train_pass(network, weighting, ModalityBatch(features, mask, torch.tensor([0, 1])))
    torch.testing.assert_close(weighting.feature_mean(1), torch.tensor([2.0, 2.0]))
    weighting.slower = 0
    output = _train_pass(network, weighting, ModalityBatch(features, mask, torch.tensor([0, 1])))
    torch.testing.assert_close(output.logits[:, 0], torch.tensor([1.0 + 4.0, 3.0]))


@pytest.mark.parametrize("case", ["eval", "extra_pass"])
def test_no_modulation_in_eval_or_in_a_second_pass_over_the_batch(case):
    """logit_0 = a_0 + b_0 + b_1 = 1 + 2 + 2 = 5 unmodulated (b̄ would give 1 + 0 + 0)."""
    network, weighting = _hand_network()
    features = {"a": torch.tensor([[1.0, 0.0]]), "b": torch.tensor([[2.0, 2.0]])}
    batch = ModalityBatch(features, torch.ones(1, 2, dtype=torch.bool), torch.tensor([0]))
    weighting.slower = 0
    if case == "eval":
        network.eval()
        output = network(batch)
    else:
        _train_pass(network, weighting, batch)
        output = network(batch)  # another component's extra pass, still in training mode
    assert "greedy_rebalancing" not in output.diagnostics
    torch.testing.assert_close(output.logits[:, 0], torch.tensor([5.0]))


def test_conditional_utilization_rates_by_hand():
    """logit = (a_0 + b_0, 0.5), target 0. Rows 0, 1 have both: full right on both; without a
    (1, 0.3 -> 0, 0.3) wrong on both: u(a) = (1 − 0)/1 = 1; without b (1 -> 1, 0.6 -> 0.3) right
    on row 0 only: u(b) = 0.5. Row 2 (b absent) is left out (G1)."""
    network = build_network(
        GreedyWeighting(), shapes={"a": (1,), "b": (1,)}, n_outputs=2, identity=True
    )
    with torch.no_grad():
        network.head.weight.copy_(torch.tensor([[1.0, 1.0], [0.0, 0.0]]))
        network.head.bias.copy_(torch.tensor([0.0, 0.5]))
    features = {"a": torch.tensor([[1.0], [0.3], [0.1]]), "b": torch.tensor([[0.0], [0.3], [0.0]])}
    mask = torch.tensor([[True, True], [True, True], [True, False]])
    rates = conditional_utilization_rates(
        NetworkView(network), features, mask, torch.zeros(3).long()
    )
    torch.testing.assert_close(rates, torch.tensor([1.0, 0.5]))
    alone = conditional_utilization_rates(
        NetworkView(network), features, mask[2:], torch.zeros(1).long()
    )
    assert torch.isnan(alone).all()  # no row with two modalities: undefined


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("alpha", -0.1),
        ("alpha", "0.1"),
        ("alpha", math.inf),
        ("window", 0),
        ("window", 1.5),
        ("warmup_epochs", -1),
        ("utilization", "yes"),
    ],
)
def test_bad_parameter_is_a_clear_error(parameter, value):
    X, y = make_data(2)
    model = FusionClassifier(weighting="greedy", max_epochs=1, **{f"weighting__{parameter}": value})
    with pytest.raises(
        ValueError, match=f"'{parameter}' parameter of weighting greedy must be"
    ) as raised:
        model.fit(X, y)
    assert repr(value) in str(raised.value)


def test_short_fit_on_imbalanced_data_rebalances_and_measures_utilization():
    """make_imbalanced_classification ('fast' alone capped at Bayes 0.50, 'slow' 0.77, both
    0.90), 3 epochs, no warm-up: both speeds accumulate, re-balancing steps run, the last
    batch's utilisation rates are finite and at most 1, and predictions are probabilities.
    (Plain training here ends up using 'slow' more, by u and by μ alike, so the re-balancing
    steps go to 'fast'; held-out accuracy is in docs/balancing.md, not asserted.)"""
    X, y = make_imbalanced_classification(n_samples=240, random_state=0)
    train = Modalities({name: value[:120] for name, value in X.items()})
    test = Modalities({name: value[120:] for name, value in X.items()})
    model = FusionClassifier(
        weighting="greedy", weighting__warmup_epochs=0, max_epochs=3, random_state=0
    )
    model.fit(train, y[:120])
    weighting = model.module_.weighting
    assert (weighting.speeds > 0).all()
    assert (weighting.mean_counts > 0).all()  # the announced training passes were seen
    assert sum(weighting.rebalanced_counts) > 0
    assert torch.isfinite(weighting.utilization_rates).all()
    assert (weighting.utilization_rates <= 1).all()
    probabilities = model.predict_proba(test)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)


@parametrize_with_checks("weighting", ["greedy"], params={"warmup_epochs": 0, "alpha": 0.0})
def test_contract_checks_pass_with_rebalancing_from_the_first_step(plugin, check):
    check(plugin)


def test_a_modality_absent_from_the_batch_accumulates_no_speed():
    """b absent from every row: μ_b stays 0 (its zero gradient is no evidence), μ_a += 0.1; with
    one modality seen there is no imbalance and no re-balancing (G2, G4)."""
    network = build_network(GreedyWeighting(alpha=0.0, warmup_epochs=0))
    weighting = network.weightings[0]
    weighting.on_train_begin(TrainingContext(network, None, None, epoch=0))
    mask = torch.tensor([[True, False], [True, False]])
    batch = ModalityBatch(
        {"a": torch.ones(2, 4), "b": torch.zeros(2, 3)}, mask, torch.tensor([0, 1])
    )
    _set_speeds(network, [0.1, 0.5])
    weighting.on_grad_computed(TrainingContext(network, None, None, epoch=0, batch=batch))
    torch.testing.assert_close(weighting.speeds, torch.tensor([0.1, 0.0], dtype=torch.float64))
    assert weighting.slower is None


def test_three_modalities_rebalance_the_slowest_and_hold_the_other_two():
    """μ = (0.2, 0.02, 0.1): d = 2·log10(0.2/0.02) = 2 > α, slower = b. The next pass keeps b and
    replaces a and c by their running means (from a first pass: a = (1, 1), c = (3,))."""
    shapes = {"a": (2,), "b": (1,), "c": (1,)}
    weighting = GreedyWeighting(alpha=1.0, window=2, warmup_epochs=0)
    network = build_network(weighting, shapes=shapes, n_outputs=2, identity=True)
    with torch.no_grad():
        network.head.weight.copy_(torch.tensor([[1.0, 1.0, 10.0, 100.0], [0.0, 0.0, 0.0, 0.0]]))
        network.head.bias.zero_()
    weighting.on_train_begin(TrainingContext(network, None, None, epoch=0))
    full = torch.ones(1, 3, dtype=torch.bool)
    first = {
        "a": torch.tensor([[1.0, 1.0]]),
        "b": torch.tensor([[0.0]]),
        "c": torch.tensor([[3.0]]),
    }
    _train_pass(network, weighting, ModalityBatch(first, full, torch.tensor([0])))
    weighting.speeds[:] = torch.tensor([0.2, 0.02, 0.1], dtype=torch.float64)
    weighting.on_grad_computed(TrainingContext(network, None, None, epoch=0))
    assert weighting.slower == 1
    assert weighting.imbalance == pytest.approx(2.0)
    second = {
        "a": torch.tensor([[5.0, 5.0]]),
        "b": torch.tensor([[2.0]]),
        "c": torch.tensor([[1.0]]),
    }
    output = _train_pass(network, weighting, ModalityBatch(second, full, torch.tensor([1])))
    # means after the update: a = ((5, 5) + (1, 1))/2 = (3, 3), c = (1 + 3)/2 = 2
    torch.testing.assert_close(
        output.logits[:, 0], torch.tensor([3.0 + 3.0 + 10.0 * 2.0 + 100.0 * 2.0])
    )
    assert output.diagnostics["greedy_rebalancing"] == "b"
