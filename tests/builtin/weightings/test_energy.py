"""energy: weights = softmax over present modalities of −E_m, E = −T·logsumexp(z / T)."""

import math

import pytest
import torch
from torch.nn import functional as F
from weightings_helpers import build_network, loss_context, make_batch

from fusekit.builtin.energy_weighting import EnergyWeighting, energy_score


def test_energy_score_definition():
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    expected = -2.0 * torch.logsumexp(logits / 2.0, dim=1)
    torch.testing.assert_close(energy_score(logits, 2.0), expected)


def test_lower_energy_modality_gets_more_weight_and_absent_gets_none():
    weighting = EnergyWeighting()
    network = build_network(weighting)
    mask = torch.tensor([[True, True], [True, False]])
    output = network(make_batch(n=2, mask=mask))
    energies = torch.stack([energy_score(output.unimodal_logits[m]) for m in "ab"], dim=1)
    expected_first = torch.softmax(-energies[0], dim=0)
    torch.testing.assert_close(output.modality_weights[0], expected_first)
    torch.testing.assert_close(output.modality_weights[1], torch.tensor([1.0, 0.0]))
    lower = energies[0].argmin()
    assert output.modality_weights[0, lower] >= output.modality_weights[0, 1 - lower]


def test_features_scaled_by_present_count_times_weight():
    weighting = EnergyWeighting()
    network = build_network(weighting)
    batch = make_batch(n=3)
    output = network(batch)
    features = network.calibration(network.encode(batch), batch.mask, output)
    scaled = weighting.reweight(features, batch.mask, output)
    for position, name in enumerate("ab"):
        factor = 2 * output.modality_weights[:, [position]]
        torch.testing.assert_close(scaled[name], features[name] * factor)


def test_energy_score_on_numbers():
    # z = (0, 0), T = 1: E = −log(e⁰ + e⁰) = −log 2; T = 2, z = (2, 0): E = −2·log(e¹ + 1)
    torch.testing.assert_close(energy_score(torch.zeros(1, 2)), torch.tensor([-math.log(2)]))
    expected = torch.tensor([-2 * math.log(math.e + 1)])
    torch.testing.assert_close(energy_score(torch.tensor([[2.0, 0.0]]), 2.0), expected)


def test_weights_use_both_temperatures():
    """a = softmax_m(−E_m / τ) with E_m = −T·logsumexp(z_m / T), here T = 2, τ = 3."""
    weighting = EnergyWeighting(temperature=2.0, weight_temperature=3.0)
    network = build_network(weighting)
    output = network(make_batch(n=2))
    z = {m: output.unimodal_logits[m] for m in "ab"}
    neg_energy = torch.stack([2 * torch.logsumexp(z[m] / 2, dim=1) for m in "ab"], dim=1)
    torch.testing.assert_close(output.modality_weights, torch.softmax(neg_energy / 3, dim=1))


def test_head_loss_is_aux_weight_times_present_unimodal_cross_entropy():
    weighting = EnergyWeighting(aux_weight=0.5)
    network = build_network(weighting)
    mask = torch.tensor([[True, True], [True, False], [False, True]])
    batch = make_batch(n=3, mask=mask)
    target = torch.tensor([0, 1, 2])
    output = network(batch)
    term = weighting.loss_terms(output, loss_context(network, batch, target))["energy_heads"]
    expected = sum(
        F.cross_entropy(output.unimodal_logits[m][mask[:, i]], target[mask[:, i]])
        for i, m in enumerate("ab")
    )
    torch.testing.assert_close(term, 0.5 * expected)


def test_weights_are_detached_by_default_and_trained_through_without_detach():
    """Default ``detach=True``: no gradient reaches the heads through the weights."""
    for detach, flows in ((None, False), (False, True)):
        weighting = EnergyWeighting() if detach is None else EnergyWeighting(detach=detach)
        network = build_network(weighting)
        batch = make_batch(n=3)
        output = network(batch)
        output.unimodal_logits = {
            m: torch.tensor([[1.0, 0.0, -1.0], [0.5, 2.0, 0.0], [0.0, 0.0, 3.0]]) * (i + 1)
            for i, m in enumerate("ab")
        }
        leaves = {m: z.requires_grad_() for m, z in output.unimodal_logits.items()}
        features = {m: torch.ones(3, 4) for m in "ab"}
        scaled = weighting.reweight(features, batch.mask, output)
        assert scaled["a"].requires_grad is flows
        assert output.diagnostics["energy"].requires_grad is False
        expected = torch.stack([-torch.logsumexp(leaves[m].detach(), dim=1) for m in "ab"], dim=1)
        torch.testing.assert_close(output.diagnostics["energy"], expected)


def test_default_head_loss_weight_is_one():
    weighting = EnergyWeighting()
    network = build_network(weighting)
    batch = make_batch(n=3)
    target = torch.tensor([0, 1, 2])
    output = network(batch)
    term = weighting.loss_terms(output, loss_context(network, batch, target))["energy_heads"]
    expected = sum(F.cross_entropy(output.unimodal_logits[m], target) for m in "ab")
    torch.testing.assert_close(term, expected)


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"temperature": 0.0}, r"'temperature' parameter of weighting energy .* Got 0\.0 instead"),
        (
            {"weight_temperature": -1.0},
            r"'weight_temperature' parameter of weighting energy .* Got -1\.0",
        ),
        ({"aux_weight": -1.0}, r"'aux_weight' parameter of weighting energy .* Got -1\.0"),
    ],
)
def test_bad_parameter_names_itself_and_its_value(parameters, message):
    with pytest.raises(ValueError, match=message):
        build_network(EnergyWeighting(**parameters))


def test_regression_task_is_rejected_naming_the_task():
    with pytest.raises(ValueError, match="energy: needs a classification task, got regression"):
        build_network(EnergyWeighting(), n_outputs=1, task="regression")


def test_head_loss_without_unimodal_logits_names_the_weighting():
    weighting = EnergyWeighting()
    network = build_network(weighting)
    batch = make_batch(n=2)
    output = network(batch)
    output.unimodal_logits = None
    with pytest.raises(RuntimeError, match="^energy needs unimodal logits"):
        weighting.loss_terms(output, loss_context(network, batch, torch.tensor([0, 1])))
