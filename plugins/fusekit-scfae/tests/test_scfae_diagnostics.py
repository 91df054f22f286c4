"""SCFAE's gradient diagnostic (Sec. 5.7, Fig. 4A-B, Table 7; spec seed-001 §7.8) on known numbers.

cos = <g_T, g_A> / (‖g_T‖ ‖g_A‖ + 1e-12) with g_T = ∂L_task/∂P and g_A = ∂(λ L_recon)/∂P flattened
over the encoder parameters P (or the backbone inputs when the backbones have none), a parameter
that one loss does not reach contributing zeros; per epoch the mean cosine, the fraction of
batches with cos < 0 and the mean ‖g_T‖. Expected values are closed-form gradients worked by hand,
or ``torch.autograd.grad`` of the losses written out here (cross-entropy, the sample-weighted mean,
λ L_recon as the fusion adds it to the training loss).
"""

import math

import pytest
import torch
from fusekit_scfae import SCFAEFusion, encoder_gradient_cosine, gradient_cosine
from fusekit_scfae.diagnostics import GradientLog
from torch.nn import functional as F

from fusekit.builtin.identity_backbone import IdentityBackbone
from fusekit.builtin.mlp_backbone import MLPBackbone
from fusekit.builtin.no_calibration import NoCalibration
from fusekit.builtin.no_weighting import NoWeighting
from fusekit.engine.network import FusionNetwork
from fusekit.plugin import ModalityBatch, Weighting

WIDTHS = {"a": 4, "b": 6}


def test_a_parameter_one_loss_does_not_reach_contributes_zeros():
    """task = ½ (a·w)², aux = b·w + c·v: g_T = ((a·w) a, 0), g_A = (b, c); v unused by the task."""
    a, b, c = (
        torch.tensor([1.0, 2.0, -1.0]),
        torch.tensor([0.5, -1.0, 2.0]),
        torch.tensor([3.0, 1.0]),
    )
    w = torch.tensor([0.3, -0.2, 0.4], requires_grad=True)
    v = torch.tensor([1.0, -1.0], requires_grad=True)
    task, aux = 0.5 * (a @ w) ** 2, b @ w + c @ v
    cos, norm = gradient_cosine(task, aux, [w, v])
    s = float((a @ w).detach())  # 0.3 - 0.4 - 0.4 = -0.5
    g_task = [s * 1.0, s * 2.0, s * -1.0, 0.0, 0.0]
    g_aux = [0.5, -1.0, 2.0, 3.0, 1.0]
    dot = sum(x * y for x, y in zip(g_task, g_aux, strict=True))
    norm_task = math.sqrt(sum(x * x for x in g_task))
    norm_aux = math.sqrt(sum(y * y for y in g_aux))
    assert norm == pytest.approx(norm_task, rel=1e-6)
    assert cos == pytest.approx(dot / (norm_task * norm_aux), rel=1e-6)
    cos_back, norm_back = gradient_cosine(aux, task, [w, v])  # the unused one is now aux's
    assert cos_back == pytest.approx(cos, rel=1e-6)
    assert norm_back == pytest.approx(norm_aux, rel=1e-6)


def test_tiny_gradients_meet_the_1e_12_in_the_denominator():
    """g_T = g_A = 1e-6 e_1: cos = 1e-12 / (1e-12 + 1e-12) = ½ (float64)."""
    w = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    e1 = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    cos, norm = gradient_cosine(1e-6 * (e1 @ w), 1e-6 * (e1 @ w), [w])
    assert cos == pytest.approx(0.5, rel=1e-9) and norm == pytest.approx(1e-6, rel=1e-9)
    cos, norm = gradient_cosine(w.sum() * 0.0, e1 @ w, [w])  # zero task gradient: cos 0, not NaN
    assert cos == 0.0 and norm == 0.0


def test_gradient_log_summary_is_the_mean_cosine_the_share_below_zero_and_the_mean_norm():
    log = GradientLog()
    assert not log
    for cos, norm in [(0.0, 1.0), (-0.5, 2.0), (0.8, 4.5), (-0.1, 0.5)]:
        log.add(cos, norm)
    assert log
    summary = log.summary()
    assert summary["scfae_grad_cos"] == pytest.approx((0.0 - 0.5 + 0.8 - 0.1) / 4)
    assert summary["scfae_grad_neg"] == pytest.approx(2 / 4)  # cos = 0 exactly is not negative
    assert summary["scfae_task_grad_norm"] == pytest.approx((1.0 + 2.0 + 4.5 + 0.5) / 4)
    log.reset()
    assert not log and log.values == []


class FirstPresentRows(Weighting):
    """Owns the task loss: in training the (weighted) mean CE over rows where ``a`` is present."""

    def task_loss(self, output, ctx):
        losses = ctx.per_sample_loss(output.logits)
        if not ctx.training:
            return ctx.weighted_mean(losses)
        return ctx.weighted_mean(losses, ctx.batch.mask[:, 0])


def _network(backbone, weighting=None, lam=0.7):
    torch.manual_seed(0)
    return FusionNetwork(
        {m: (w,) for m, w in WIDTHS.items()},
        {m: backbone() for m in WIDTHS},
        NoCalibration(),
        SCFAEFusion(lam=lam),
        weighting or NoWeighting(),
        n_outputs=3,
        task="classification",
    )


def _batch(seed=4, weighted=False):
    generator = torch.Generator().manual_seed(seed)
    features = {m: torch.randn(6, w, generator=generator) for m, w in WIDTHS.items()}
    mask = torch.tensor([[1, 1], [0, 1], [1, 1], [1, 0], [0, 1], [1, 1]], dtype=torch.bool)
    weights = torch.tensor([1.0, 3.0, 0.5, 2.0, 1.0, 4.0]) if weighted else None
    target = torch.tensor([0, 2, 1, 1, 0, 2])
    return ModalityBatch(features, mask, sample_weight=weights), target


def _by_hand(network, batch, target, wrt, task_of):
    """cos and ‖g_T‖ from ``torch.autograd.grad`` of task_of(logits) and of λ L_recon."""
    output = network(batch)
    task = task_of(output.logits)
    aux = output.aux_losses["scfae_recon"]  # λ L_recon, the term the training loss adds
    g_task = torch.cat([g.reshape(-1) for g in torch.autograd.grad(task, wrt, retain_graph=True)])
    g_aux = torch.cat([g.reshape(-1) for g in torch.autograd.grad(aux, wrt)])
    return float(g_task @ g_aux / (g_task.norm() * g_aux.norm())), float(g_task.norm())


@pytest.mark.parametrize("weighted", [False, True])
def test_identity_backbones_take_the_gradients_at_the_backbone_inputs(weighted):
    network = _network(IdentityBackbone).train()
    batch, target = _batch(weighted=weighted)
    assert not list(network.parameters()) or not any(
        p.requires_grad for m in WIDTHS for p in network.modality_parameters(m)
    )
    leaves = {m: x.clone().requires_grad_(True) for m, x in batch.features.items()}
    mine = ModalityBatch(leaves, batch.mask, sample_weight=batch.sample_weight)
    weights = batch.sample_weight if weighted else torch.ones(6)

    def task_of(logits):
        losses = F.cross_entropy(logits, target, reduction="none")
        return (losses * weights).sum() / weights.sum()

    expected = _by_hand(network, mine, target, list(leaves.values()), task_of)
    measured = encoder_gradient_cosine(network.view, batch, target)
    assert measured == pytest.approx(expected, rel=1e-5, abs=1e-7)
    assert not any(x.requires_grad for x in batch.features.values())  # caller's tensors untouched


def test_the_task_term_is_the_weightings_training_loss_with_the_sample_weights():
    """A weighting whose training-mode task loss reads ``ctx.batch``: rows with ``a`` present."""
    network = _network(lambda: MLPBackbone(hidden=5), FirstPresentRows()).train()
    batch, target = _batch(weighted=True)
    wrt = [p for m in WIDTHS for p in network.backbones[m].parameters()]
    rows, weights = batch.mask[:, 0].float(), batch.sample_weight

    def task_of(logits):
        losses = F.cross_entropy(logits, target, reduction="none")
        return (losses * weights * rows).sum() / (weights * rows).sum()

    expected = _by_hand(network, batch, target, wrt, task_of)
    measured = encoder_gradient_cosine(network.view, batch, target)
    assert measured == pytest.approx(expected, rel=1e-5, abs=1e-7)
    plain = _by_hand(
        network, batch, target, wrt, lambda logits: F.cross_entropy(logits, target)
    )  # the unweighted all-row loss gives another cosine: the test can tell them apart
    assert abs(plain[0] - expected[0]) > 1e-3
