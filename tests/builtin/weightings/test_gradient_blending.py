"""gradient_blending: w_k ∝ |ΔG_k| / ΔO_k², held-out rows out of the loss, super-epochs."""

import copy
from types import SimpleNamespace

import pytest
import torch
from torch.nn import functional as F
from weightings_helpers import build_network, loss_context, make_batch, make_data

from fusekit import FusionClassifier
from fusekit.builtin.gradient_blending_weighting import (
    GradientBlendingWeighting,
    blending_weights,
    generalisation_and_overfitting,
    head_losses,
)
from fusekit.plugin import TrainingContext, TrainingData, TrainingLoop


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


def test_small_but_informative_estimates_are_normalised_not_uniform():
    # raw |ΔG| / ΔO² = (0.001 / 0.01, 0.002 / 0.01) = (0.1, 0.2): Σ = 0.3 < 1 -> (1/3, 2/3)
    weights = blending_weights(torch.tensor([0.001, 0.002]), torch.tensor([0.1, 0.1]))
    torch.testing.assert_close(weights, torch.tensor([1 / 3, 2 / 3]))


def _reference_weights(network, train, holdout, lr, epochs):
    """Def. 1 and Eq. 6 written out: for each head k a copy trained by full-batch SGD on L_k alone;
    losses are the mean CE over the rows (unimodal heads: over the rows where m is present)."""

    def losses(model, rows):
        batch, target = rows
        output = model(batch)
        heads = [F.cross_entropy(output.logits, target)]
        for position, name in enumerate(model.names):
            present = batch.mask[:, position]
            logits = output.unimodal_logits[name][present]
            heads.append(
                F.cross_entropy(logits, target[present]) if present.any() else 0 * heads[0]
            )
        return heads

    raw = []
    for head in range(len(network.names) + 1):
        model = copy.deepcopy(network)
        model.eval()
        with torch.no_grad():
            before_t, before_v = losses(model, train)[head], losses(model, holdout)[head]
        optimiser = torch.optim.SGD(model.parameters(), lr=lr)
        model.train()
        for _ in range(epochs):
            optimiser.zero_grad()
            losses(model, train)[head].backward()
            optimiser.step()
        model.eval()
        with torch.no_grad():
            after_t, after_v = losses(model, train)[head], losses(model, holdout)[head]
        gain = before_v - after_v
        overfit = (after_v - after_t) - (before_v - before_t)
        raw.append(gain.abs() / overfit**2)
    raw = torch.stack(raw)
    raw[1:][~holdout[0].mask.any(dim=0)] = 0.0  # a modality absent from all of V
    return raw / raw.sum()


def test_estimate_matches_a_reference_of_definition_1_and_eq_6():
    shapes = {"a": (3,), "b": (2,), "c": (2,)}
    weighting = GradientBlendingWeighting(estimate_epochs=3)
    network = build_network(weighting, shapes=shapes, identity=True)
    torch.manual_seed(0)
    n = 12
    mask = torch.ones(n, 3, dtype=torch.bool)
    mask[8:, 2] = False  # c is absent from every held-out row
    mask[1, 1] = False
    batch = make_batch(shapes=shapes, n=n, mask=mask)
    target = torch.arange(n) % 3
    weighting.holdout = torch.arange(n) >= 8  # rows 8-11 held out
    net = SimpleNamespace(batch_size=-1, optimizer=torch.optim.SGD, lr=0.5)  # full batch
    ctx = TrainingContext(
        network=network, loop=TrainingLoop(net), data=TrainingData(batch, target), epoch=0
    )
    weights = weighting.estimate(ctx)
    train = (batch.take(torch.arange(8)), target[:8])
    holdout = (batch.take(torch.arange(8, 12)), target[8:])
    expected = _reference_weights(network, train, holdout, lr=0.5, epochs=3)
    torch.testing.assert_close(weights, expected)
    assert weights[3] == 0 and (weights[:3] > 0).all()


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
    weighting.blend_weights.copy_(torch.tensor([0.2, 0.5, 0.3]))
    output = network(batch)
    ctx = loss_context(network, batch, target, training=False)
    expected = 0.2 * ctx.per_sample_loss(output.logits).mean()
    expected = expected + 0.5 * ctx.per_sample_loss(output.unimodal_logits["a"]).mean()
    expected = expected + 0.3 * ctx.per_sample_loss(output.unimodal_logits["b"]).mean()
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


@pytest.mark.parametrize(
    "params, message",
    [
        ({"super_epoch": 0}, "'super_epoch' parameter of weighting gradient_blending must be"),
        ({"estimate_epochs": 0}, "'estimate_epochs' parameter of weighting gradient_blending"),
        (
            {"validation_fraction": 0.0},
            r"'validation_fraction' parameter of weighting gradient_blending must be a float in "
            r"the range \(0\.0, 1\.0\)",
        ),
        (
            {"validation_fraction": 1.0},
            r"'validation_fraction' parameter of weighting gradient_blending must be a float in "
            r"the range \(0\.0, 1\.0\)",
        ),
    ],
)
def test_bad_parameters_name_themselves(params, message):
    with pytest.raises(ValueError, match=message):
        build_network(GradientBlendingWeighting(**params))


def test_head_losses_over_more_rows_than_one_chunk():
    # 1100 rows are evaluated in chunks of 1024; the result is the plain mean CE over all rows
    shapes = {"a": (3,), "b": (2,)}
    network = build_network(GradientBlendingWeighting(), shapes=shapes, identity=True).eval()
    mask = torch.ones(1100, 2, dtype=torch.bool)
    mask[::3, 1] = False
    batch = make_batch(shapes=shapes, n=1100, mask=mask)
    target = torch.arange(1100) % 3
    with torch.no_grad():
        losses = head_losses(network, batch, target)
        output = network(batch)
        b = mask[:, 1]
        expected = torch.stack(
            [
                F.cross_entropy(output.logits, target),
                F.cross_entropy(output.unimodal_logits["a"], target),
                F.cross_entropy(output.unimodal_logits["b"][b], target[b]),
            ]
        )
    torch.testing.assert_close(losses, expected)
