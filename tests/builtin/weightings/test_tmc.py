"""tmc: Dempster–Shafer combination of Dirichlet opinions, evidential loss."""

import pytest
import torch
from weightings_helpers import build_network, loss_context, make_batch

from fusekit.builtin.tmc_weighting import (
    TMCWeighting,
    combine_opinions,
    dirichlet_kl_to_uniform,
    evidential_loss,
)
from fusekit.plugin import TrainingContext


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


def test_kl_to_uniform_matches_torch_distributions():
    from torch.distributions import Dirichlet, kl_divergence

    alpha = torch.tensor([[5.0, 1.0, 1.0], [2.5, 0.7, 3.0]])
    expected = kl_divergence(Dirichlet(alpha), Dirichlet(torch.ones(2, 3)))
    torch.testing.assert_close(dirichlet_kl_to_uniform(alpha), expected)


def test_evidential_loss_with_kl_on_a_wrong_class():
    """Eq. (5) + (8) for α = (3, 1), y = 1, λ = 0.5: α̃ = y + (1 − y)α = (3, 1);
    L = ψ(4) − ψ(1) + 0.5 · KL(Dir(3, 1) ‖ Dir(1, 1));
    KL = log Γ(4) − log Γ(3) − log Γ(1) − log Γ(2) + 2 (ψ(3) − ψ(4))
       = log 3 + 2 · (−1/3) = 0.431946   (ψ(4) − ψ(3) = 1/3)."""
    import math

    kl = math.log(3) - 2 / 3
    expected = torch.digamma(torch.tensor(4.0)) - torch.digamma(torch.tensor(1.0)) + 0.5 * kl
    loss = evidential_loss(torch.tensor([[3.0, 1.0]]), torch.tensor([1]), 0.5)
    torch.testing.assert_close(loss, expected.reshape(1))


def test_three_opinions_combine_left_to_right():
    shapes = {"a": (4,), "b": (3,), "c": (2,)}
    weighting = TMCWeighting()
    network = build_network(weighting, shapes=shapes)
    output = network(make_batch(shapes=shapes, n=3))
    alphas = [torch.nn.functional.softplus(output.unimodal_logits[m]) + 1 for m in "abc"]
    expected = combine_opinions(combine_opinions(alphas[0], alphas[1]), alphas[2])
    torch.testing.assert_close(output.diagnostics["tmc_alpha"], expected)
    strength = expected.sum(dim=1, keepdim=True)  # fused logits = log(α / S)
    torch.testing.assert_close(output.logits, torch.log(expected / strength))


def test_annealing_coefficient_follows_the_epoch():
    """λ_t = min(1, t / annealing_epochs) with t = epoch + 1 (1-based): epoch 0 of 4 -> 0.25,
    epoch 5 -> 1."""
    weighting = TMCWeighting(annealing_epochs=4)
    network = build_network(weighting)
    batch = make_batch(n=4)
    target = torch.tensor([0, 1, 2, 0])
    output = network(batch)
    ctx = loss_context(network, batch, target)
    alphas = [*weighting.alphas(output).values(), output.diagnostics["tmc_alpha"]]
    for epoch, lam in [(0, 0.25), (5, 1.0)]:
        weighting.epoch = epoch
        expected = sum(evidential_loss(alpha, target, lam).mean() for alpha in alphas)
        torch.testing.assert_close(weighting.task_loss(output, ctx), expected)


def test_combination_closed_form_in_evidence():
    """Rule (2) in evidence form: b/u = e/K for each opinion, and the 1/(1 − C) factors cancel in
    e = b·K/u, so e = K (e¹e²/K² + e¹/K + e²/K) = e¹ + e² + e¹ ⊙ e² / K (row by row)."""
    generator = torch.Generator().manual_seed(0)
    e1, e2 = torch.rand(3, 4, generator=generator) * 5, torch.rand(3, 4, generator=generator) * 5
    expected = e1 + e2 + e1 * e2 / 4 + 1
    torch.testing.assert_close(combine_opinions(e1 + 1, e2 + 1), expected)


def test_evidential_loss_is_per_row():
    # rows α = (3, 1), y = 0 and α = (1, 4), y = 1: ψ(4) − ψ(3) = 1/3 and ψ(5) − ψ(4) = 1/4
    alpha = torch.tensor([[3.0, 1.0], [1.0, 4.0]])
    loss = evidential_loss(alpha, torch.tensor([0, 1]), 0.0)
    torch.testing.assert_close(loss, torch.tensor([1 / 3, 1 / 4]))


def test_annealing_epochs_default_and_range():
    assert TMCWeighting().annealing_epochs == 50  # the code's lambda_epochs
    build_network(TMCWeighting(annealing_epochs=1))
    with pytest.raises(
        ValueError, match="The 'annealing_epochs' parameter of weighting tmc must be"
    ):
        build_network(TMCWeighting(annealing_epochs=0))


def test_epoch_begin_sets_the_epoch_of_the_annealing():
    weighting = TMCWeighting(annealing_epochs=4)
    network = build_network(weighting)
    weighting.on_epoch_begin(TrainingContext(network, None, None, epoch=3))
    assert weighting.epoch == 3  # λ = min(1, (3 + 1) / 4) = 1 in this epoch
