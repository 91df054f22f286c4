"""lfm: 2(α_0 CE + α_1 L_align) with α_1 moved by a one-step hypergradient, (L1)-(L5).

Expected values are worked by hand from the equations in the module docstring, or computed by a
plain-torch re-implementation of BalanceBenchmark's ``Alignment``, ``getAlpha_Learnable`` and
``LFMTrainer.training_step`` in this file, never read back from the module.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from balancing_helpers import build_network, loss_context, make_data, training_context

from fusekit import FusionClassifier, FusionRegressor
from fusekit.builtin.lfm_weighting import LFMWeighting, alignment_per_row, alpha_step
from fusekit.plugin import ModalityBatch

LN3 = math.log(3.0)


def _official_alignment(p, q):
    """BalanceBenchmark's ``Alignment`` (batchmean over the rows given)."""
    p, q = F.softmax(p, dim=-1), F.softmax(q, dim=-1)
    m = 0.5 * p + 0.5 * q
    return 0.5 * (
        F.kl_div(p.log(), m, reduction="batchmean") + F.kl_div(q.log(), m, reduction="batchmean")
    )


def test_alignment_by_hand():
    """p = (3/4, 1/4), q = (1/4, 3/4): r = (1/2, 1/2), KL(r ‖ p) = KL(r ‖ q) = ½ ln(4/3)."""
    z_p, z_q = torch.tensor([[LN3, 0.0]]), torch.tensor([[0.0, LN3]])
    torch.testing.assert_close(alignment_per_row(z_p, z_q), torch.tensor([0.5 * math.log(4 / 3)]))
    assert alignment_per_row(z_p, z_p).abs().max() < 1e-7  # identical predictions: 0


def test_alignment_averaged_over_rows_is_the_official_batchmean():
    torch.manual_seed(0)
    z_p, z_q = torch.randn(7, 4) * 3, torch.randn(7, 4)
    torch.testing.assert_close(alignment_per_row(z_p, z_q).mean(), _official_alignment(z_p, z_q))


def test_alpha_step_by_hand_and_clipped():
    """α_1 = 0.05, η = 1e-4: γ = −100 -> 0.06; γ = 1e4 -> 0.05 (floor); γ = −1e5 -> 0.95."""
    torch.testing.assert_close(alpha_step(torch.tensor(0.05), torch.tensor(-100.0), 1e-4),
                               torch.tensor([0.94, 0.06]))  # fmt: skip
    torch.testing.assert_close(alpha_step(torch.tensor(0.05), torch.tensor(1e4), 1e-4),
                               torch.tensor([0.95, 0.05]))  # fmt: skip
    torch.testing.assert_close(alpha_step(torch.tensor(0.05), torch.tensor(-1e5), 1e-4),
                               torch.tensor([0.05, 0.95]))  # fmt: skip


def test_the_step_size_halves_every_20_epochs_after_the_first():
    weighting = LFMWeighting(lr_alpha=0.08)
    network = build_network(weighting)
    weighting.on_train_begin(training_context(network))
    seen = {}
    for epoch in range(45):
        weighting.on_epoch_begin(training_context(network, epoch=epoch))
        seen[epoch] = weighting.step_size
    assert (seen[0], seen[19], seen[20], seen[39], seen[40], seen[44]) == (
        0.08, 0.08, 0.04, 0.04, 0.02, 0.02
    )  # fmt: skip


def _linear_network(weighting, weight, bias):
    shapes = {"a": (2,), "b": (3,)}
    network = build_network(weighting, shapes=shapes, n_outputs=weight.shape[0], identity=True)
    with torch.no_grad():
        network.head.weight.copy_(torch.tensor(weight, dtype=torch.float32))
        network.head.bias.copy_(torch.tensor(bias, dtype=torch.float32))
    return network


def _official_hypergradient(network, batch, target, alpha):
    """getAlpha_Learnable in plain torch on the network's parameters (the first, θ_0, is the
    first encoder's weight, as in the code's model): the first quarter of the rows, unimodal
    logits split from the concat head by hand."""
    parameters = [p for p in network.parameters() if p.requires_grad]
    q = batch.mask.shape[0] // 4
    fused = torch.cat([network.backbones[m](batch.features[m][:q]) for m in ("a", "b")], dim=1)
    w, b = network.head.weight, network.head.bias
    out = fused @ w.T + b
    width = network.backbones["a"](batch.features["a"][:1]).shape[1]
    z_a = fused[:, :width] @ w[:, :width].T + b / 2
    z_b = fused[:, width:] @ w[:, width:].T + b / 2
    loss_alignment = _official_alignment(z_a, z_b)
    loss_cls = F.cross_entropy(out, target[:q], reduction="none").mean()
    total = alpha[0] * loss_cls + alpha[1] * loss_alignment / 1
    theta_grads = torch.autograd.grad(total, parameters, create_graph=True, allow_unused=True)
    cls_grads = torch.autograd.grad(loss_cls, parameters, retain_graph=True, create_graph=True,
                                    allow_unused=True)  # fmt: skip
    used = [i for i, g in enumerate(theta_grads) if g is not None and cls_grads[i] is not None]
    hvp = torch.autograd.grad(
        [theta_grads[i] for i in used],
        [parameters[i] for i in used],
        grad_outputs=[cls_grads[i] for i in used],
        retain_graph=True,
    )
    assert used[0] == 0
    return hvp[0].mean().item()


def test_alpha_learns_as_the_official_hypergradient():
    """With a linear head alone γ would be 0 (softmax Hessians sum to zero over the classes);
    θ_0 is the first MLP encoder's weight, as the code's first parameter is an encoder's."""
    torch.manual_seed(2)
    weighting = LFMWeighting(unimodal="split_head")
    network = build_network(weighting)
    network.train()
    batch = ModalityBatch({"a": torch.randn(16, 4) * 2, "b": torch.randn(16, 3)},
                          torch.ones(16, 2, dtype=torch.bool))  # fmt: skip
    target = torch.randint(0, 3, (16,))
    gamma = _official_hypergradient(network, batch, target, (0.95, 0.05))
    assert abs(gamma) > 1e-6
    lr = 0.2 / abs(gamma)  # a step of 0.2, inside the clip range either way
    weighting.lr_alpha = lr
    weighting.on_train_begin(training_context(network))
    weighting.on_epoch_begin(training_context(network, epoch=0))
    output = network(batch)
    weighting.loss_terms(output, loss_context(network, batch, target))
    expected = float(np.clip(0.05 - lr * gamma, 0.05, 0.95))
    assert expected != 0.05  # the step moved α
    torch.testing.assert_close(weighting.alpha, torch.tensor([1 - expected, expected]))
    second = network(batch)  # no second update within the epoch
    weighting.loss_terms(second, loss_context(network, batch, target))
    torch.testing.assert_close(weighting.alpha, torch.tensor([1 - expected, expected]))


def test_training_loss_is_the_official_step():
    """training_step: 2 (α_0 CE(out) + α_1 Σ_pairs A / |P|), here with α = (0.7, 0.3)."""
    rng = np.random.default_rng(4)
    x = torch.tensor(rng.normal(size=(8, 5)) * 2, dtype=torch.float32)
    weight, bias = rng.normal(size=(3, 5)) * 2, rng.normal(size=3)
    target = torch.tensor(rng.integers(0, 3, size=8))
    weighting = LFMWeighting(unimodal="split_head")
    network = _linear_network(weighting, weight, bias)
    network.train()
    weighting.on_train_begin(training_context(network))
    weighting.alpha.copy_(torch.tensor([0.7, 0.3]))
    batch = ModalityBatch({"a": x[:, :2], "b": x[:, 2:]}, torch.ones(8, 2, dtype=torch.bool))
    output = network(batch)
    ctx = loss_context(network, batch, target)
    loss = weighting.task_loss(output, ctx) + sum(weighting.loss_terms(output, ctx).values())
    w, b = torch.tensor(weight, dtype=torch.float32), torch.tensor(bias, dtype=torch.float32)
    z_a, z_b = x[:, :2] @ w[:, :2].T + b / 2, x[:, 2:] @ w[:, 2:].T + b / 2
    official = 2 * (
        0.7 * F.cross_entropy(x @ w.T + b, target) + 0.3 * _official_alignment(z_a, z_b)
    )
    torch.testing.assert_close(loss, official)


def test_missing_rows_align_only_where_both_are_present():
    """Three modalities, rows missing: each pair's term is the mean over its rows, and the
    three pairs are averaged (the code's 1/|P|)."""
    torch.manual_seed(1)
    z = [torch.randn(5, 3) * 2 for _ in range(3)]
    mask = torch.tensor([[1, 1, 1], [1, 0, 1], [0, 1, 1], [1, 1, 0], [1, 1, 1]], dtype=torch.bool)
    weighting = LFMWeighting(unimodal="heads")
    network = build_network(weighting, shapes={"a": (2,), "b": (2,), "c": (2,)})
    network.train()
    weighting.on_train_begin(training_context(network))
    output = network(ModalityBatch({m: torch.randn(5, 2) for m in "abc"}, mask).with_mask(mask))
    output.unimodal_logits = dict(zip("abc", z, strict=True))
    terms = weighting.loss_terms(output, loss_context(network, None, torch.tensor([0, 1, 2, 0, 1])))
    expected = 0.0
    for j, l in [(0, 1), (0, 2), (1, 2)]:
        rows = (mask[:, j] & mask[:, l]).nonzero()[:, 0]
        expected += _official_alignment(z[j][rows], z[l][rows]) / 3
    torch.testing.assert_close(terms["lfm_alignment"], 2 * 0.05 * expected)


def test_evaluation_losses_are_plain():
    weighting = LFMWeighting()
    network = build_network(weighting)
    batch = ModalityBatch({"a": torch.randn(4, 4), "b": torch.randn(4, 3)}, torch.ones(4, 2) > 0)
    network.eval()
    output = network(batch)
    target = torch.tensor([0, 1, 2, 0])
    ctx = loss_context(network, batch, target, training=False)
    assert weighting.loss_terms(output, ctx) == {}
    torch.testing.assert_close(
        weighting.task_loss(output, ctx), F.cross_entropy(output.logits, target)
    )


def test_fits_with_another_fusion_through_unimodal_heads():
    X, y = make_data(2)
    model = FusionClassifier(fusion="sum", weighting="lfm", max_epochs=3, random_state=0)
    assert model.fit(X, y).score(X, y) > 0.6


def test_split_head_with_another_fusion_is_refused_by_name():
    X, y = make_data(2)
    model = FusionClassifier(
        fusion="sum", weighting="lfm", weighting__unimodal="split_head", max_epochs=1
    )
    with pytest.raises(ValueError, match="lfm: unimodal='split_head' needs fusion='concat'"):
        model.fit(X, y)


def test_fits_and_is_reproducible():
    X, y = make_data(3)
    first = FusionClassifier(weighting="lfm", max_epochs=3, random_state=0).fit(X, y)
    second = FusionClassifier(weighting="lfm", max_epochs=3, random_state=0).fit(X, y)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    assert first.score(X, y) > 0.6


@pytest.mark.parametrize("other", ["modality_dropout", "agm", "cml"])
def test_composes_with_another_weighting(other):
    """Beside a perturbation and beside methods that make extra fuse passes."""
    X, y = make_data(2)
    model = FusionClassifier(weighting=[other, "lfm"], max_epochs=2, random_state=0)
    assert np.isfinite(model.fit(X, y).predict_proba(X)).all()


def test_regression_is_refused():
    X, y = make_data(2)
    with pytest.raises(ValueError, match="lfm: needs a classification task"):
        FusionRegressor(weighting="lfm", max_epochs=1).fit(X, y.astype(float))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"lr_alpha": -1.0}, "'lr_alpha' parameter of weighting lfm must be"),
        ({"unimodal": "probes"}, "'unimodal' parameter of weighting lfm must be a str among"),
    ],
)
def test_bad_parameters_name_themselves(params, message):
    X, y = make_data(2)
    model = FusionClassifier(
        weighting="lfm", max_epochs=1, **{f"weighting__{k}": v for k, v in params.items()}
    )
    with pytest.raises(ValueError, match=message):
        model.fit(X, y)


def test_alpha_learns_from_the_rows_where_both_are_present():
    """(L4) with rows missing: of the first quarter (rows 0-3) only row 0 has both modalities, so
    L_align is that row's A(p_a, p_b) alone (a mean over one row); CE is over the four rows;
    α = (0.5, 0.5) so that the alignment's share of γ is well above float32 rounding.
    Expected: getAlpha_Learnable in plain torch on those rows (absent encoder outputs zeroed)."""
    torch.manual_seed(6)
    weighting = LFMWeighting(unimodal="split_head")
    network = build_network(weighting)
    network.train()
    mask = torch.ones(16, 2, dtype=torch.bool)
    mask[[1, 3], 1] = False
    mask[2, 0] = False
    features = {"a": torch.randn(16, 4) * 2, "b": torch.randn(16, 3)}
    features = {m: v * mask[:, [p]] for p, (m, v) in enumerate(features.items())}
    batch = ModalityBatch(features, mask).with_mask(mask)
    target = torch.randint(0, 3, (16,))
    parameters = [p for p in network.parameters() if p.requires_grad]
    h = {m: network.backbones[m](features[m][:4]) * mask[:4, [p]] for p, m in enumerate("ab")}
    fused = torch.cat([h["a"], h["b"]], dim=1)
    w, b = network.head.weight, network.head.bias
    width = h["a"].shape[1]
    z_a = fused[:, :width] @ w[:, :width].T + b / 2
    z_b = fused[:, width:] @ w[:, width:].T + b / 2
    loss_cls = F.cross_entropy(fused @ w.T + b, target[:4])
    total = 0.5 * loss_cls + 0.5 * _official_alignment(z_a[:1], z_b[:1])
    theta = torch.autograd.grad(total, parameters, create_graph=True, allow_unused=True)
    cls = torch.autograd.grad(loss_cls, parameters, retain_graph=True, allow_unused=True)
    used = [i for i, g in enumerate(theta) if g is not None and cls[i] is not None]
    assert used[0] == 0
    hvp = torch.autograd.grad(
        [theta[i] for i in used], [parameters[i] for i in used], [cls[i] for i in used]
    )
    gamma = hvp[0].mean().item()
    assert abs(gamma) > 1e-6
    lr = 0.2 / abs(gamma)
    weighting.lr_alpha = lr
    weighting.on_train_begin(training_context(network))
    weighting.alpha.copy_(torch.tensor([0.5, 0.5]))  # the alignment's weight in γ made larger
    weighting.on_epoch_begin(training_context(network, epoch=0))
    output = network(batch)
    weighting.loss_terms(output, loss_context(network, batch, target))
    torch.testing.assert_close(
        output.diagnostics["lfm_hypergradient"], torch.tensor(gamma), rtol=1e-5, atol=0
    )
    expected = float(np.clip(0.5 - lr * gamma, 0.05, 0.95))
    torch.testing.assert_close(weighting.alpha, torch.tensor([1 - expected, expected]))
