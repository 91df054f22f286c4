"""Reconstruction loss (Eq. 5, sign fixed), Φ (Eq. 6) and gradient routing, on hand examples.

Xiong et al., arXiv:2410.15475v2: Eq. 5 as printed sums the cosine *similarity*, which Φ =
L_task + λ L_recon (Eq. 6) would then maximise; the tests pin the distance form
L_recon = (1/B) Σ_i Σ_m mask_im (1 − cos(V_i^m, V̂_i^m)).
"""

import math

import pytest
import torch
from fusekit_scfae import SCFAEFusion, reconstruction_loss
from fusekit_scfae.loss import contrastive_loss
from scfae_helpers import build_fusion, random_features, run
from torch.nn import functional as F

from fusekit import ModalityBatch
from fusekit.builtin.mlp_backbone import MLPBackbone
from fusekit.builtin.no_calibration import NoCalibration
from fusekit.builtin.no_weighting import NoWeighting
from fusekit.engine.network import FusionNetwork

WIDTHS = {"a": 5, "b": 8, "c": 6}


def _eq5_sign_fixed(targets, recons, present):
    """(1/B) Σ_i Σ_m mask_im (1 − cos(V, V̂)), written independently of the package."""
    pairs = zip(targets, recons, strict=True)
    terms = torch.stack([1 - F.cosine_similarity(v, r, dim=1, eps=1e-8) for v, r in pairs], dim=1)
    return (terms * present).sum() / present.shape[0]


def test_loss_is_zero_when_the_reconstruction_reproduces_v():
    targets = list(random_features(WIDTHS).values())
    present = torch.ones(6, 3, dtype=torch.bool)
    assert float(reconstruction_loss(targets, targets, present)) == pytest.approx(0.0, abs=1e-6)
    scaled = [3.0 * v for v in targets]  # any positive multiple reconstructs the direction
    assert float(reconstruction_loss(targets, scaled, present)) == pytest.approx(0.0, abs=1e-6)


def _exact_autoencoder(widths, recon_act, shift=20.0):
    """Weights with V̂ = V exactly: GELU(x) = x in float32 once x >= 8, so shift, copy, unshift."""
    fusion = build_fusion(widths, swiglu=False, recon_act=recon_act)
    with torch.no_grad():
        for m, w in widths.items():
            cut = fusion.splits[m]
            expand, specific = fusion.expand[m].linear, fusion.specific[m].linear
            expand.weight.zero_()
            expand.weight[cut : cut + w].copy_(torch.eye(w))  # specific slice starts with V + shift
            expand.bias.fill_(shift)
            specific.weight.zero_()
            specific.weight[:, :w].copy_(torch.eye(w))  # Z_sp = V + shift
            specific.bias.zero_()
            rec = fusion.reconstruct[m].linear
            rec.weight.zero_()
            rec.weight[:, :w].copy_(torch.eye(w))  # reads Z_sp, the first l_m entries of Z
            rec.bias.fill_(-shift if recon_act == "identity" else 0.0)
    return fusion


@pytest.mark.parametrize("recon_act", ["identity", "gelu"])
def test_module_loss_is_zero_with_a_constructed_exact_reconstruction(recon_act):
    widths = {"a": 4, "b": 7}
    fusion = _exact_autoencoder(widths, recon_act)
    features = random_features(widths)
    if recon_act == "gelu":  # a GELU decoder (App. A) can only reproduce V where GELU(V) = V
        features = {m: v.abs() + 8.0 for m, v in features.items()}
        fusion = _exact_autoencoder(widths, recon_act, shift=0.0)
    _, output = run(fusion, features)
    for m in widths:
        torch.testing.assert_close(output.diagnostics["scfae"]["recon"][m], features[m])
    assert float(output.diagnostics["scfae"]["recon_loss"]) == pytest.approx(0.0, abs=1e-5)


def _tiny_pair():
    """M = 2 modalities, B = 2 samples, chosen so that every cosine is a simple number."""
    targets = [torch.tensor([[1.0, 0.0], [3.0, 4.0]]), torch.tensor([[1.0, 1.0, 0.0], [2.0, 0, 0]])]
    recons = [torch.tensor([[0.0, 1.0], [4.0, 3.0]]), torch.tensor([[-1.0, -1, 0], [1.0, 1, 0]])]
    return targets, recons


def test_cosine_loss_equals_eq5_worked_by_hand_on_a_tiny_batch():
    """L = (1/B) Σ_i Σ_m mask_im (1 − cos(V_i^m, V̂_i^m)) (Eq. 5 with the sign fixed, Eq. 6).

    Worked by hand: modality 1: cos([1,0],[0,1]) = 0 -> 1; cos([3,4],[4,3]) = 24/25 -> 0.04.
    Modality 2: cos([1,1,0],[-1,-1,0]) = -1 -> 2; cos([2,0,0],[1,1,0]) = 1/√2 -> 1 − 1/√2.
    All present: (1 + 0.04 + 2 + 1 − 1/√2) / 2. Sample 2 of modality 2 absent: (1 + 0.04 + 2) / 2.
    """
    targets, recons = _tiny_pair()
    present = torch.ones(2, 2, dtype=torch.bool)
    expected = (1.0 + 0.04 + 2.0 + 1.0 - 2**-0.5) / 2
    value = reconstruction_loss(targets, recons, present)
    assert float(value) == pytest.approx(expected, rel=1e-6)
    present[1, 1] = False  # the division stays by B, not by the number of present pairs
    assert float(reconstruction_loss(targets, recons, present)) == pytest.approx(1.52, rel=1e-6)
    rescaled = reconstruction_loss([4.0 * v for v in targets], recons, present)  # cosine: no scale
    assert float(rescaled) == pytest.approx(1.52, rel=1e-6)
    opposite = reconstruction_loss(targets, [-v for v in targets], torch.ones(2, 2, dtype=bool))
    assert float(opposite) == pytest.approx(2 * 2, abs=1e-6)  # cos = −1 everywhere: 2 per pair


def test_mse_loss_equals_the_hand_computed_value_on_the_tiny_batch():
    """Table 9's MSE form, (1/B) Σ_i Σ_m mask_im mean_j (V − V̂)²_ij, by hand on the same batch.

    Modality 1: (1 + 1)/2 = 1 for both samples; modality 2: (4 + 4 + 0)/3 = 8/3 and
    (1 + 1 + 0)/3 = 2/3. Total (1 + 1 + 8/3 + 2/3) / 2 = 8/3.
    """
    targets, recons = _tiny_pair()
    value = reconstruction_loss(targets, recons, torch.ones(2, 2, dtype=torch.bool), "mse")
    assert float(value) == pytest.approx(8 / 3, rel=1e-6)


def test_module_loss_is_lambda_times_eq5_with_the_sign_fixed():
    fusion = build_fusion(WIDTHS, lam=0.7)
    _, output = run(fusion, random_features(WIDTHS))
    diag = output.diagnostics["scfae"]
    present = torch.ones(6, 3)
    expected = _eq5_sign_fixed(
        [diag["inputs"][m] for m in WIDTHS], [diag["recon"][m] for m in WIDTHS], present
    )
    total = float(output.aux_losses["scfae_recon"].detach())
    assert total == pytest.approx(0.7 * float(expected), rel=1e-5)
    assert float(diag["recon_loss"]) == pytest.approx(float(expected), rel=1e-5)


def test_mse_variant_is_mean_squared_error_per_modality():
    fusion = build_fusion(WIDTHS, recon="mse")
    _, output = run(fusion, random_features(WIDTHS))
    diag = output.diagnostics["scfae"]
    expected = sum(F.mse_loss(diag["recon"][m], diag["inputs"][m]) for m in WIDTHS)
    assert float(diag["recon_loss"]) == pytest.approx(float(expected), rel=1e-5)


def test_one_sgd_step_on_the_reconstruction_loss_increases_the_mean_cosine():
    torch.manual_seed(0)
    fusion = build_fusion(WIDTHS)
    features = random_features(WIDTHS, batch=32)

    def mean_cos():
        _, output = run(fusion, features)
        diag = output.diagnostics["scfae"]
        return sum(
            F.cosine_similarity(diag["inputs"][m], diag["recon"][m], dim=1).mean() for m in WIDTHS
        )

    before = float(mean_cos())
    _, output = run(fusion, features)
    output.aux_losses["scfae_recon"].backward()
    with torch.no_grad():
        for p in fusion.parameters():
            if p.grad is not None:
                p -= 0.05 * p.grad
    assert float(mean_cos()) > before


def _network(fusion, widths=WIDTHS):
    return FusionNetwork(
        {m: (w,) for m, w in widths.items()},
        {m: MLPBackbone(hidden=w) for m, w in widths.items()},
        NoCalibration(),
        fusion,
        NoWeighting(),
        n_outputs=3,
        task="classification",
    )


def _batch(widths=WIDTHS, batch=8):
    features = random_features(widths, batch=batch, seed=3)
    return ModalityBatch(features, torch.ones(batch, len(widths), dtype=torch.bool))


def test_lambda_zero_leaves_only_the_task_loss():
    torch.manual_seed(0)
    network = _network(SCFAEFusion(lam=0.0))
    batch, target = _batch(), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    output = network(batch)
    assert "scfae_recon" not in output.aux_losses
    task = torch.nn.functional.cross_entropy(output.logits, target)
    total = network.loss(output, target, batch, True).detach()
    assert float(total) == pytest.approx(float(task.detach()))


def _grads(module):
    return {name: p.grad for name, p in module.named_parameters()}


def _nonzero(grad):
    return grad is not None and float(grad.abs().sum()) > 0


@pytest.mark.parametrize("recon_from", ["z", "post"])
def test_gradient_routing_of_task_and_reconstruction_losses(recon_from):
    torch.manual_seed(0)
    network = _network(SCFAEFusion(recon_from=recon_from))
    fusion = network.fusion
    batch, target = _batch(), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])

    output = network(batch)
    torch.nn.functional.cross_entropy(output.logits, target).backward()  # L_task alone
    assert not any(_nonzero(g) for g in _grads(fusion.reconstruct).values())
    network.zero_grad(set_to_none=True)

    output = network(batch)
    features = output.features
    for h in features.values():
        h.retain_grad()
    output.aux_losses["scfae_recon"].backward()  # λ L_recon alone
    assert not any(_nonzero(g) for g in _grads(network.head).values())
    post_grads = [_nonzero(g) for g in _grads(fusion.post).values()]
    assert any(post_grads) == (recon_from == "post")
    for m in WIDTHS:  # every modality's pre/expand/shared/specific and encoder output
        for part in (fusion.pre, fusion.expand, fusion.shared, fusion.specific, fusion.reconstruct):
            assert any(_nonzero(g) for g in _grads(part[m]).values()), (part, m)
        assert _nonzero(features[m].grad)


def test_total_loss_reaches_every_encoder():
    torch.manual_seed(0)
    network = _network(SCFAEFusion())
    batch, target = _batch(), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    network.loss(network(batch), target, batch, True).backward()
    for m in WIDTHS:
        assert all(_nonzero(p.grad) for p in network.modality_parameters(m)), m


def test_detach_target_stops_the_gradient_through_v_only():
    widths = {"a": 4, "b": 6}
    grads = {}
    for detach in (False, True):
        torch.manual_seed(0)
        fusion = build_fusion(widths, detach_target=detach)
        features = {m: v.requires_grad_() for m, v in random_features(widths).items()}
        _, output = run(fusion, features)
        output.aux_losses["scfae_recon"].backward()
        assert all(_nonzero(v.grad) for v in features.values())  # the prediction path remains
        grads[detach] = features["a"].grad
    assert not torch.allclose(grads[False], grads[True])


def test_mse_loss_skips_an_absent_sample_and_divides_by_b():
    # tiny batch, sample 2 of modality 2 absent: (1 + 1 + 8/3) / 2 = 7/3 (the absent row's
    # squared errors count neither in its own mean nor in another row's)
    targets, recons = _tiny_pair()
    present = torch.tensor([[True, True], [True, False]])
    value = reconstruction_loss(targets, recons, present, "mse")
    assert float(value) == pytest.approx(7 / 3, rel=1e-6)


def test_loss_of_a_single_sample_batch_is_not_halved():
    # B = 1: cos([3, 4], [4, 3]) = 24/25 -> 1 − 24/25 = 0.04, divided by B = 1
    value = reconstruction_loss(
        [torch.tensor([[3.0, 4.0]])], [torch.tensor([[4.0, 3.0]])], torch.ones(1, 1, dtype=bool)
    )
    assert float(value) == pytest.approx(0.04, rel=1e-5)


def _info_nce(a, b, temperature):
    """Symmetric InfoNCE of paired rows, written with logsumexp (no cross_entropy)."""
    a = a / a.norm(dim=1, keepdim=True)
    b = b / b.norm(dim=1, keepdim=True)
    logits = a @ b.T / temperature  # (P, P)
    rows = (torch.logsumexp(logits, dim=1) - logits.diagonal()).mean()
    columns = (torch.logsumexp(logits, dim=0) - logits.diagonal()).mean()
    return 0.5 * (rows + columns)


def test_contrastive_loss_closed_form_for_orthogonal_pairs():
    # two modalities, P = 2, a = I, b = the swapped I, τ = 0.5: logits [[0, 2], [2, 0]], so
    # log(1 + e²) − 0 in both directions; one pair (0, 1) only for M = 2
    eye = torch.eye(2, dtype=torch.float64)
    swapped = eye.flip(0)
    value = contrastive_loss([eye, 3.0 * swapped], torch.ones(2, 2, dtype=torch.bool), 0.5)
    assert float(value) == pytest.approx(math.log(1.0 + math.exp(2.0)), rel=1e-12)


def test_contrastive_loss_pairs_each_modality_with_the_next_one():
    # M = 4: the cycle (0, 1), (1, 2), (2, 3), (3, 0), not (0, 2), (1, 3)
    generator = torch.Generator().manual_seed(6)
    embeddings = [torch.randn(4, 3, generator=generator, dtype=torch.float64) for _ in range(4)]
    expected = sum(_info_nce(embeddings[i], embeddings[(i + 1) % 4], 0.2) for i in range(4))
    value = contrastive_loss(embeddings, torch.ones(4, 4, dtype=torch.bool), 0.2)
    assert float(value) == pytest.approx(float(expected), rel=1e-10)


def test_contrastive_loss_over_the_cycle_with_missing_samples():
    # M = 3: pairs (0, 1), (1, 2), (2, 0) on the samples where both are present; pair (1, 2)
    # shares one sample only and is skipped
    generator = torch.Generator().manual_seed(5)
    embeddings = [torch.randn(5, 4, generator=generator, dtype=torch.float64) for _ in range(3)]
    present = torch.tensor(
        [[1, 1, 0], [1, 1, 0], [1, 0, 1], [1, 1, 1], [0, 0, 1]], dtype=torch.bool
    )
    first = present[:, 0] & present[:, 1]  # samples 0, 1, 3
    third = present[:, 2] & present[:, 0]  # samples 2, 3
    expected = _info_nce(embeddings[0][first], embeddings[1][first], 0.3) + _info_nce(
        embeddings[2][third], embeddings[0][third], 0.3
    )
    value = contrastive_loss(embeddings, present, 0.3)
    assert float(value) == pytest.approx(float(expected), rel=1e-10)


def test_mse_preset_reconstructs_a_detached_target_and_the_literal_variant_stays_settable():
    """``scfae_mse`` = MSE metric + stop-gradient on V (the literal, undetached MSE collapses
    with trainable encoders; presets.py). Its reconstruction gradient on V equals that of
    SCFAE with ``recon="mse", detach_target=True`` and differs from the undetached one."""
    from fusekit_scfae import PRESETS

    preset = PRESETS["scfae_mse"]
    params = preset().get_params()
    assert params["recon"] == "mse" and params["detach_target"] is True
    assert preset(detach_target=False).get_params()["detach_target"] is False
    widths = {"a": 4, "b": 6}
    grads = []
    for cls, extra in (
        (preset, {}),
        (SCFAEFusion, {"recon": "mse", "detach_target": True}),
        (SCFAEFusion, {"recon": "mse"}),
    ):
        torch.manual_seed(0)
        fusion = build_fusion(widths, cls=cls, **extra)
        features = {m: v.requires_grad_() for m, v in random_features(widths).items()}
        _, output = run(fusion, features)
        output.aux_losses["scfae_recon"].backward()
        grads.append(features["a"].grad)
    assert torch.equal(grads[0], grads[1])
    assert not torch.allclose(grads[0], grads[2])
