"""energy: weights = softmax over present modalities of −E_m, E = −T·logsumexp(z / T)."""

import torch
from weightings_helpers import build_network, make_batch

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
