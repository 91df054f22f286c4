"""mmpareto: min-norm direction of the multimodal and unimodal encoder gradients when they
conflict, equal weights when they agree, magnitude max(‖g‖, ‖d‖) times γ."""

import math

import torch
from balancing_helpers import build_network, loss_context, make_batch, training_context
from torch.nn import functional as F

from fusekit.builtin.mmpareto_weighting import MMParetoWeighting, pareto_gradient, pareto_weights


def test_direction_for_two_known_conflicting_gradients():
    g_mm, g_m = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])  # cos < 0
    w1, w2 = pareto_weights(g_mm, g_m)
    # w1 = (g_m − g_mm)·g_m / ‖g_mm − g_m‖² = ((-2)(-1) + 1·1) / (4 + 1) = 0.6
    assert math.isclose(w1, 0.6, rel_tol=1e-6) and math.isclose(w2, 0.4, rel_tol=1e-6)
    direction = w1 * g_mm + w2 * g_m  # (0.2, 0.4): the min-norm point of the segment
    torch.testing.assert_close(direction, torch.tensor([0.2, 0.4]))
    assert abs(float(direction @ (g_mm - g_m))) < 1e-6  # orthogonal to the segment
    assert direction @ g_mm > 0 and direction @ g_m > 0  # improves both objectives


def test_agreeing_gradients_get_equal_weights():
    assert pareto_weights(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0])) == (0.5, 0.5)


def test_opposite_gradients_meet_at_a_pareto_stationary_point():
    g_mm, g_m = torch.tensor([1.0, 0.0]), torch.tensor([-3.0, 0.0])
    w1, w2 = pareto_weights(g_mm, g_m)  # (−4)(−3) / 16 = 0.75
    assert math.isclose(w1, 0.75) and math.isclose(w2, 0.25)
    torch.testing.assert_close(
        pareto_gradient(g_mm, g_m, g_mm + g_m, (w1, w2), 1.5), torch.zeros(2)
    )


def test_magnitude_is_the_larger_of_summed_and_pareto_norms_times_gamma():
    g_mm, g_m = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])
    weights = pareto_weights(g_mm, g_m)
    direction = 2 * torch.tensor([0.2, 0.4])  # ‖d‖ = 0.894
    total = g_mm + g_m  # ‖total‖ = 1 > ‖d‖: rescaled to ‖total‖
    new = pareto_gradient(g_mm, g_m, total, weights, gamma=1.5)
    torch.testing.assert_close(new, 1.5 * direction / direction.norm())
    small_total = torch.tensor([0.1, 0.0])  # ‖total‖ < ‖d‖: d kept
    torch.testing.assert_close(
        pareto_gradient(g_mm, g_m, small_total, weights, 1.5), 1.5 * direction
    )


def test_per_loss_gradients_equal_separate_backward_passes():
    weighting = MMParetoWeighting()
    network = build_network(weighting)
    mask = torch.tensor([[True, True]] * 5 + [[True, False]] * 3)
    batch = make_batch(mask=mask)
    target = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    ctx = loss_context(network, batch, target)
    output = network(batch)
    loss = weighting.task_loss(output, ctx)
    params, g_mm, g_m = weighting.pending["b"]
    fused = ctx.per_sample_loss(output.logits).mean()
    own = ctx.per_sample_loss(output.unimodal_logits["b"])[mask[:, 1]].mean()
    for parameter, stored_mm, stored_m in zip(params, g_mm, g_m, strict=True):
        (expected_mm,) = torch.autograd.grad(fused, parameter, retain_graph=True)
        (expected_m,) = torch.autograd.grad(own, parameter, retain_graph=True)
        torch.testing.assert_close(stored_mm, expected_mm)
        torch.testing.assert_close(stored_m, expected_m)
    loss.backward()


def test_grad_hook_rewrites_encoders_only():
    weighting = MMParetoWeighting(gamma=2.0)
    network = build_network(weighting)
    batch = make_batch()
    output = network(batch)
    weighting.task_loss(
        output, loss_context(network, batch, torch.tensor([0, 1, 2, 0] * 2))
    ).backward()
    before = {name: p.grad.clone() for name, p in network.named_parameters() if p.grad is not None}
    pending = dict(weighting.pending)
    weighting.on_grad_computed(training_context(network))
    for name, parameter in network.named_parameters():
        if not name.startswith("backbones."):
            torch.testing.assert_close(parameter.grad, before[name], msg=name)
    params, g_mm, g_m = pending["a"]
    weights = weighting.weights["a"]
    flat = torch.cat([g.reshape(-1) for g in g_mm]), torch.cat([g.reshape(-1) for g in g_m])
    assert weights == pareto_weights(*flat)
    first = params[0]
    expected = pareto_gradient(g_mm[0], g_m[0], before["backbones.a.layers.0.weight"], weights, 2.0)
    torch.testing.assert_close(first.grad, expected)
    assert weighting.pending == {}


def test_modality_absent_from_the_batch_keeps_its_gradient():
    weighting = MMParetoWeighting()
    network = build_network(weighting)
    mask = torch.tensor([[True, False]] * 8)
    batch = make_batch(mask=mask)
    output = network(batch)
    weighting.task_loss(output, loss_context(network, batch, torch.zeros(8).long()))
    assert set(weighting.pending) == {"a"}


def test_orthogonal_gradients_count_as_conflicting():
    # cos = 0 is not "> 0": min-norm weights. g_mm = (1, 0), g_m = (0, 2):
    # w₁ = (g_m − g_mm)·g_m / ‖g_mm − g_m‖² = (0 + 4) / (1 + 4) = 0.8, w₂ = 0.2
    w1, w2 = pareto_weights(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0]))
    assert abs(w1 - 0.8) < 1e-6 and abs(w2 - 0.2) < 1e-6


def test_task_loss_is_the_fused_plus_the_unimodal_losses():
    weighting = MMParetoWeighting()
    network = build_network(weighting)
    mask = torch.tensor([[True, True], [True, False], [False, True], [True, True]])
    batch = make_batch(n=4, mask=mask)
    target = torch.tensor([0, 1, 2, 1])
    output = network(batch)
    loss = weighting.task_loss(output, loss_context(network, batch, target, training=False))
    expected = F.cross_entropy(output.logits, target)
    for position, name in enumerate("ab"):
        rows = mask[:, position]
        expected = expected + F.cross_entropy(output.unimodal_logits[name][rows], target[rows])
    torch.testing.assert_close(loss, expected)


def test_degenerate_gradients():
    # both zero: no direction to prefer -> (1/2, 1/2) (not 0/0)
    assert pareto_weights(torch.zeros(2), torch.zeros(2)) == (0.5, 0.5)
    # g_m = 0, g_mm = (1, 0): cos = 0 -> min-norm; ‖g_mm − g_m‖² = 1, w₁ = (0 − g_mm)·0 / 1 = 0
    assert pareto_weights(torch.tensor([1.0, 0.0]), torch.zeros(2)) == (0.0, 1.0)
