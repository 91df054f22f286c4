"""gradient_blending: w_k ∝ |ΔG_k| / ΔO_k², held-out rows out of the loss, super-epochs."""

import pytest
import torch
from weightings_helpers import build_network, loss_context, make_batch, make_data

from fusekit import FusionClassifier
from fusekit.builtin.gradient_blending_weighting import (
    GradientBlendingWeighting,
    blending_weights,
    generalisation_and_overfitting,
)


def test_weights_from_known_generalisation_and_overfitting():
    delta_g = torch.tensor([0.2, 0.1, -0.05])
    delta_o = torch.tensor([0.1, 0.1, 0.05])
    raw = torch.tensor([20.0, 10.0, 20.0])  # |G| / O²
    torch.testing.assert_close(blending_weights(delta_g, delta_o), raw / raw.sum())


def test_definition_1_from_losses_before_and_after():
    # L^T: 1.0 -> 0.6, L^V: 1.1 -> 0.9. O_N = 1.1 − 1.0 = 0.1, O_{N+n} = 0.9 − 0.6 = 0.3
    # ΔO = 0.3 − 0.1 = 0.2; ΔG = 1.1 − 0.9 = 0.2 -> w ∝ 0.2 / 0.2² = 5
    gain, overfit = generalisation_and_overfitting(
        torch.tensor(1.0), torch.tensor(1.1), torch.tensor(0.6), torch.tensor(0.9)
    )
    torch.testing.assert_close(gain, torch.tensor(0.2))
    torch.testing.assert_close(overfit, torch.tensor(0.2))


def test_more_overfitting_means_less_weight():
    weights = blending_weights(torch.tensor([0.1, 0.1]), torch.tensor([0.1, 0.2]))
    assert weights[0] == pytest.approx(4 * weights[1])


def test_degenerate_estimates_fall_back_to_uniform_weights():
    # ΔG = 0 for every head: Σ |ΔG| / ΔO² = 0, no information -> w = 1/H
    torch.testing.assert_close(
        blending_weights(torch.zeros(3), torch.tensor([0.1, 0.2, 0.3])), torch.full((3,), 1 / 3)
    )
    # ΔO = 0 is floored at 1e-12 (not a division by zero): |0.1| / 1e-12 dominates
    weights = blending_weights(torch.tensor([0.1, 0.1]), torch.tensor([0.0, 0.1]))
    torch.testing.assert_close(weights, torch.tensor([1e11, 10.0]) / (1e11 + 10.0))


def test_held_out_rows_do_not_enter_the_loss():
    weighting = GradientBlendingWeighting()
    network = build_network(weighting)
    batch = make_batch(n=6)
    target = torch.tensor([0, 1, 2, 0, 1, 2])
    weighting.holdout = torch.tensor([True, True, True, False, False, False])
    output = network(batch)
    loss = weighting.task_loss(output, loss_context(network, batch, target))
    kept = batch.take(slice(3, 6))
    weighting.holdout = None
    expected = weighting.task_loss(network(kept), loss_context(network, kept, target[3:]))
    torch.testing.assert_close(loss, expected)


def test_loss_is_blend_of_heads_with_current_weights():
    weighting = GradientBlendingWeighting()
    network = build_network(weighting)
    batch = make_batch(n=5)
    target = torch.tensor([0, 1, 2, 0, 1])
    weighting.blend_weights.copy_(torch.tensor([0.5, 0.5, 0.0]))
    output = network(batch)
    ctx = loss_context(network, batch, target, training=False)
    expected = 0.5 * ctx.per_sample_loss(output.logits).mean()
    expected = expected + 0.5 * ctx.per_sample_loss(output.unimodal_logits["a"]).mean()
    torch.testing.assert_close(weighting.task_loss(output, ctx), expected)


class CountingBlending(GradientBlendingWeighting):
    def estimate(self, ctx):
        self.estimated_at = [*getattr(self, "estimated_at", []), ctx.epoch]
        return super().estimate(ctx)


def test_estimates_at_super_epochs_on_a_held_out_split():
    X, y = make_data(3, n=100)
    model = FusionClassifier(
        weighting=CountingBlending(super_epoch=2, validation_fraction=0.2, estimate_epochs=1),
        max_epochs=5,
        random_state=0,
    ).fit(X, y)
    weighting = model.module_.weighting
    assert weighting.estimated_at == [0, 2, 4]
    assert int(weighting.holdout.sum()) == 20
    weights = weighting.blend_weights
    assert weights.shape == (4,)
    assert torch.all(weights >= 0) and weights.sum().item() == pytest.approx(1.0)
    assert not torch.allclose(weights, torch.full((4,), 0.25))  # estimated, not the initial


def test_too_few_rows_for_a_held_out_split():
    X, y = make_data(2, n=6)
    model = FusionClassifier(
        weighting="gradient_blending", weighting__validation_fraction=0.05, max_epochs=1
    )
    with pytest.raises(ValueError, match="validation_fraction"):
        model.fit(X, y)
