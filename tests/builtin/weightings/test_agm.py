"""agm: Shapley mono-modal responses from masked passes and exp(α·(η − r)) gradient scales."""

import math

import pytest
import torch
from balancing_helpers import build_network, loss_context, make_batch, training_context

from fusekit.builtin.agm_weighting import (
    AGMWeighting,
    coalition_logits,
    modulation_coefficients,
    shapley_responses,
)
from fusekit.plugin import Fusion


def _values(**named):
    """Coalition outputs keyed by letters: ``ab`` -> frozenset({0, 1})."""
    return {frozenset("abc".index(ch) for ch in key): value for key, value in named.items()}


def test_two_modality_shapley_matches_the_official_formula():
    T, A, V = torch.tensor([[4.0, 1.0]]), torch.tensor([[1.0, 0.0]]), torch.tensor([[2.0, 3.0]])
    phi = shapley_responses(_values(ab=T, a=A, b=V), 2)
    torch.testing.assert_close(phi[0], 0.5 * (T - V + A))  # Modality_Audio_2
    torch.testing.assert_close(phi[1], 0.5 * (T - A + V))  # Modality_Visual_2


def test_three_modality_shapley_matches_the_official_formula():
    g = torch.Generator().manual_seed(0)
    v = {k: torch.randn(2, 3, generator=g) for k in ["abc", "ab", "ac", "bc", "a", "b", "c"]}
    phi = shapley_responses(_values(**v), 3)
    expected_a = (v["abc"] - v["bc"]) / 3 + (v["ab"] - v["b"] + v["ac"] - v["c"]) / 6 + v["a"] / 3
    torch.testing.assert_close(phi[0], expected_a)  # Modality_Audio of the official code
    torch.testing.assert_close(phi.sum(0), v["abc"])  # efficiency: Σ φ_m = v(N) − v(∅)


class InteractionFusion(Fusion):
    """Known masked outputs: z = 2·a + 3·b + a⊙b on the first two features (absent rows = 0)."""

    emits_logits = True

    def build(self, spec):
        return spec.n_outputs

    def forward(self, features, mask, output):
        a, b = features["a"][:, :2], features["b"][:, :2]
        return 2 * a + 3 * b + a * b


def test_contributions_of_a_model_with_known_masked_outputs():
    network = build_network(
        AGMWeighting(),
        shapes={"a": (2,), "b": (2,)},
        n_outputs=2,
        fusion=InteractionFusion(),
        identity=True,
    )
    mask = torch.tensor([[True, True], [True, False]])
    batch = make_batch(shapes={"a": (2,), "b": (2,)}, n=2, mask=mask)
    output = network(batch)
    values = coalition_logits(network, output.calibrated, mask, output.logits)
    phi = shapley_responses(values, 2)
    a, b = batch.features["a"], batch.features["b"]  # b's row 1 is zero (absent)
    torch.testing.assert_close(phi[0], 2 * a + 0.5 * a * b)  # own term + half the interaction
    torch.testing.assert_close(phi[1], 3 * b + 0.5 * a * b)
    assert (phi[1][1] == 0).all()  # an absent modality contributes nothing to its sample


def test_coefficients_for_known_scores_at_the_first_step():
    k = modulation_coefficients(
        torch.tensor([1.0, 2.0]), torch.zeros(2), torch.tensor([True, True]), alpha=0.1
    )
    # M/(M−1) = 2, mean 1.5: r = (e^-1, e^1); running means all 0: η = (1, 1)
    expected = torch.tensor([math.exp(0.1 * (1 - math.exp(-1))), math.exp(0.1 * (1 - math.e))])
    torch.testing.assert_close(k, expected)


def test_coefficients_cap_the_gap_and_ignore_absent_modalities():
    k = modulation_coefficients(
        torch.tensor([0.0, 5.0, 9.0]),
        torch.tensor([5.0, 0.0, 0.0]),
        torch.tensor([True, True, False]),
        alpha=1.0,
    )
    # available a, b: r = (e^-5, e^5), η = (e^5, e^-5); a's gap e^5 − e^-5 is capped at 7
    expected = torch.tensor([math.exp(7.0), math.exp(math.exp(-5) - math.exp(5)), 1.0])
    torch.testing.assert_close(k, expected)
    one = modulation_coefficients(
        torch.tensor([1.0, 2.0]), torch.zeros(2), torch.tensor([True, False]), alpha=1.0
    )
    torch.testing.assert_close(one, torch.ones(2))


def test_loss_terms_update_running_scores_and_coefficients():
    weighting = AGMWeighting(alpha=0.5)
    network = build_network(weighting)
    batch = make_batch(n=6)
    target = torch.tensor([0, 1, 2, 0, 1, 2])
    weighting.on_train_begin(training_context(network))
    scores = []
    for _ in range(2):
        output = network(batch)
        assert weighting.loss_terms(output, loss_context(network, batch, target)) == {}
        phi = output.diagnostics["agm_responses"]
        scores.append(torch.stack([network.per_sample_loss(phi[p], target).mean() for p in (0, 1)]))
    torch.testing.assert_close(weighting.running_scores, (scores[0] + scores[1]) / 2)
    expected = modulation_coefficients(scores[1], scores[0], torch.tensor([True, True]), 0.5)
    torch.testing.assert_close(weighting.coefficients, expected)


def _with_gradients(network):
    for parameter in network.parameters():
        parameter.grad = torch.randn_like(parameter)
    return {name: p.grad.clone() for name, p in network.named_parameters()}


@pytest.mark.parametrize("epoch", [0, 3])
def test_scales_encoder_weights_only_inside_the_window(epoch):
    weighting = AGMWeighting(end_epoch=2)
    network = build_network(weighting)
    before = _with_gradients(network)
    weighting.coefficients = torch.tensor([0.5, 2.0])
    weighting.on_grad_computed(training_context(network, epoch=epoch))
    for name, parameter in network.named_parameters():
        factor = 1.0
        if epoch == 0 and name.startswith("backbones.") and parameter.dim() >= 2:
            factor = 0.5 if name.startswith("backbones.a.") else 2.0
        torch.testing.assert_close(parameter.grad, before[name] * factor, msg=name)
    assert weighting.coefficients is None
