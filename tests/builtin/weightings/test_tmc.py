"""tmc: Dempster–Shafer combination of Dirichlet opinions, evidential loss."""

import torch
from weightings_helpers import build_network, loss_context, make_batch

from fusekit.builtin.tmc_weighting import (
    TMCWeighting,
    combine_opinions,
    dirichlet_kl_to_uniform,
    evidential_loss,
)


def test_combination_of_two_conflicting_opinions():
    # e¹ = (2, 0): b¹ = (.5, 0), u¹ = .5;  e² = (0, 2): b² = (0, .5), u² = .5;  C = .25
    # b = (.25/.75, .25/.75) = (1/3, 1/3), u = .25/.75 = 1/3, S = 6, e = (2, 2)
    combined = combine_opinions(torch.tensor([[3.0, 1.0]]), torch.tensor([[1.0, 3.0]]))
    torch.testing.assert_close(combined, torch.tensor([[3.0, 3.0]]))


def test_combination_of_two_agreeing_opinions_is_more_certain():
    # C = 0, b_0 = .25 + .25 + .25 = .75, u = .25, S = 8, e = (6, 0)
    combined = combine_opinions(torch.tensor([[3.0, 1.0]]), torch.tensor([[3.0, 1.0]]))
    torch.testing.assert_close(combined, torch.tensor([[7.0, 1.0]]))


def test_vacuous_opinion_is_the_identity():
    alpha = torch.tensor([[2.5, 1.2, 4.0], [1.0, 1.0, 1.0]])
    torch.testing.assert_close(combine_opinions(alpha, torch.ones(2, 3)), alpha)
    torch.testing.assert_close(combine_opinions(torch.ones(2, 3), alpha), alpha)


def test_kl_to_uniform_is_zero_at_uniform_and_positive_elsewhere():
    assert dirichlet_kl_to_uniform(torch.ones(1, 4)).abs().item() < 1e-6
    assert dirichlet_kl_to_uniform(torch.tensor([[5.0, 1.0, 1.0]])).item() > 0


def test_evidential_loss_matches_hand_computation_and_annealing():
    alpha = torch.tensor([[3.0, 1.0]])
    target = torch.tensor([0])
    strength = torch.tensor(4.0)
    adjusted = torch.digamma(strength) - torch.digamma(torch.tensor(3.0))
    torch.testing.assert_close(evidential_loss(alpha, target, 0.0), adjusted.reshape(1))
    # α̃ = (1, 1) for the correct class's evidence only: KL = 0
    torch.testing.assert_close(evidential_loss(alpha, target, 1.0), adjusted.reshape(1))
    wrong = torch.tensor([1])
    assert evidential_loss(alpha, wrong, 1.0) > evidential_loss(alpha, wrong, 0.0)


def test_fused_output_is_log_dirichlet_mean_and_absent_is_vacuous():
    weighting = TMCWeighting()
    network = build_network(weighting)
    mask = torch.tensor([[True, False], [True, True], [False, False]])
    output = network(make_batch(n=3, mask=mask))
    torch.testing.assert_close(output.logits.exp().sum(dim=1), torch.ones(3))
    alpha_a = torch.nn.functional.softplus(output.unimodal_logits["a"]) + 1
    torch.testing.assert_close(output.diagnostics["tmc_alpha"][0], alpha_a[0])
    torch.testing.assert_close(output.logits[2], torch.full((3,), -torch.log(torch.tensor(3.0))))


def test_loss_sums_modality_and_combined_evidential_losses():
    weighting = TMCWeighting(annealing_epochs=4)
    network = build_network(weighting)
    weighting.epoch = 1  # λ = min(1, 2 / 4)
    batch = make_batch(n=4)
    target = torch.tensor([0, 1, 2, 0])
    output = network(batch)
    loss = weighting.task_loss(output, loss_context(network, batch, target))
    alphas = weighting.alphas(output)
    expected = evidential_loss(output.diagnostics["tmc_alpha"], target, 0.5).mean()
    for alpha in alphas.values():
        expected = expected + evidential_loss(alpha, target, 0.5).mean()
    torch.testing.assert_close(loss, expected)
