"""The auxiliary losses of §3.8: Δ_m from masked fusion passes, L_value, L_reg (our forms)."""

from __future__ import annotations

import pytest
import torch
from fusekit_vgmr import DIAGNOSTICS_KEY, ValueGatedModalityRefiner, objective
from fusekit_vgmr.refiner import RefinerSignals

from fusekit import FusionNetwork, LossContext, ModalityBatch
from fusekit.builtin.concat_fusion import ConcatFusion
from fusekit.builtin.identity_backbone import IdentityBackbone
from fusekit.builtin.no_weighting import NoWeighting

SHAPES = {"text": (4, 5), "audio": (3,), "video": (6,)}
B = 8


def make_network(**params) -> FusionNetwork:
    torch.manual_seed(0)
    return FusionNetwork(
        input_shapes=SHAPES,
        backbones={m: IdentityBackbone() for m in SHAPES},
        calibration=ValueGatedModalityRefiner(**{"latent_dim": 8, **params}),
        fusion=ConcatFusion(),
        weighting=NoWeighting(),
        n_outputs=3,
        task="classification",
    )


def make_batch(mask: torch.Tensor | None = None) -> tuple[ModalityBatch, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    features = {m: torch.randn(B, *shape, generator=generator) for m, shape in SHAPES.items()}
    mask = torch.ones(B, len(SHAPES), dtype=torch.bool) if mask is None else mask
    batch = ModalityBatch(features=features, mask=torch.ones_like(mask)).with_mask(mask)
    return batch, torch.randint(0, 3, (B,), generator=generator)


def forward(network, mask=None, training=True):
    batch, target = make_batch(mask)
    network.train(training)
    output = network(batch)
    ctx = LossContext(network=network, batch=batch, target=target, training=training)
    return output, ctx


def test_removal_contribution_is_loss_increase_without_the_modality():
    network = make_network(dropout=0.0)
    output, ctx = forward(network, training=False)
    contributions = objective.removal_contributions(output, ctx, network.names)  # (B, M)
    full = ctx.per_sample_loss(output.logits)
    # concat: removing m zeroes its slice of the fused vector; recompute that by hand
    widths = [5, 3, 6]
    start = 0
    for position, width in enumerate(widths):
        fused = output.fused.detach().clone()
        fused[:, start : start + width] = 0
        start += width
        expected = ctx.per_sample_loss(network.head(fused)) - full
        torch.testing.assert_close(contributions[:, position], expected.detach())
    assert not contributions.requires_grad


def test_removal_contribution_is_zero_where_the_modality_is_absent():
    mask = torch.ones(B, 3, dtype=torch.bool)
    mask[:4, 2] = False
    network = make_network()
    output, ctx = forward(network, mask)
    contributions = objective.removal_contributions(output, ctx, network.names)
    assert torch.equal(contributions[:4, 2], torch.zeros(4))
    assert contributions[4:, 2].abs().sum() > 0


def test_value_targets_are_monotone_in_the_unit_interval():
    delta = torch.linspace(-5, 5, 21).reshape(-1, 1)
    signed = objective.value_targets(delta, 1.0, "signed")
    assert ((signed > 0) & (signed < 1)).all() and (signed.diff(dim=0) > 0).all()
    torch.testing.assert_close(signed[10], torch.tensor([0.5]))  # Δ = 0 -> 0.5
    impact = objective.value_targets(delta, 1.0, "abs")
    torch.testing.assert_close(impact, impact.flip(0))  # sign does not matter
    assert impact[10] == 0 and ((impact >= 0) & (impact < 1)).all()


def _signals(global_value, channel_mean, mask, gate=0.5):
    n, m = global_value.shape
    names = tuple(f"m{i}" for i in range(m))
    signals = RefinerSignals(mask=mask)
    for i, name in enumerate(names):
        signals.global_value[name] = global_value[:, i]
        signals.channel_value[name] = channel_mean[:, i : i + 1].expand(n, 4)
        signals.gate[name] = torch.full((n, 1, 3), gate)
        signals.steps[name] = None
    return signals, names


def test_value_loss_is_zero_at_the_target_and_ignores_absent_pairs():
    targets = torch.rand(B, 2)
    mask = torch.ones(B, 2, dtype=torch.bool)
    mask[0, 1] = False
    signals, names = _signals(targets.clone(), targets.clone(), mask)
    assert objective.value_loss(signals, targets, names) == 0
    signals.global_value["m1"] = signals.global_value["m1"].clone()
    signals.global_value["m1"][0] = 0.99  # only an absent pair differs
    assert objective.value_loss(signals, targets, names) == 0
    signals.global_value["m0"] = targets[:, 0] + 0.1
    # only g_m0 is off, by 0.1 in each of the B = 8 rows: Σ (0.1)² = 8 · 0.01, averaged over the
    # 2B − 1 = 15 present pairs -> 0.08 / 15 = 0.005333 (p_m0 is still on target)
    assert objective.value_loss(signals, targets, names) == pytest.approx(0.08 / 15)


def test_regularisation_penalises_collapsed_values_and_off_centre_gates():
    mask = torch.ones(B, 2, dtype=torch.bool)
    spread = torch.linspace(0.1, 0.9, B).reshape(-1, 1).expand(B, 2)
    signals, names = _signals(spread, spread, mask)
    assert objective.regularisation_loss(signals, names, floor=0.05) == pytest.approx(0.0)
    collapsed, names = _signals(torch.full((B, 2), 0.7), torch.full((B, 2), 0.7), mask)
    # constant values: std 0 -> each hinge relu(γ − sqrt(0 + 1e-8)) = 0.05 − 1e-4 ≈ 0.05;
    # two hinges (g, Avg p) × two modalities = 4 · 0.05 = 0.2; gate 0.5 -> no centring term
    assert objective.regularisation_loss(collapsed, names, floor=0.05) == pytest.approx(
        4 * 0.05, abs=1e-3
    )
    shifted, names = _signals(spread, spread, mask, gate=0.8)
    # spread values: std of linspace(0.1, 0.9, 8) = 0.262 > γ, no hinge; gate term
    # (mean G − 0.5)² = (0.8 − 0.5)² = 0.09 per modality, two modalities -> 0.18
    assert objective.regularisation_loss(shifted, names, floor=0.05) == pytest.approx(0.18)


def test_loss_terms_are_scaled_by_the_lambdas_and_skipped_outside_training():
    network = make_network(lambda_value=0.3, lambda_reg=0.2)
    output, ctx = forward(network)
    terms = network.calibration.loss_terms(output, ctx)
    assert set(terms) == {"vgmr_value", "vgmr_reg"}
    signals = output.diagnostics[DIAGNOSTICS_KEY]
    contributions = objective.removal_contributions(output, ctx, network.names)
    targets = objective.value_targets(contributions, 1.0, "signed")
    expected = 0.3 * objective.value_loss(signals, targets, network.names)
    torch.testing.assert_close(terms["vgmr_value"], expected)
    evaluation, eval_ctx = forward(network, training=False)
    assert network.calibration.loss_terms(evaluation, eval_ctx) == {}
    silent = make_network(lambda_value=0.0, lambda_reg=0.0)
    assert silent.calibration.loss_terms(*forward(silent)) == {}


def test_value_loss_trains_the_value_heads_but_not_the_fusion():
    network = make_network(lambda_value=1.0, lambda_reg=0.0)
    output, ctx = forward(network)
    network.calibration.loss_terms(output, ctx)["vgmr_value"].backward()
    assert network.head.weight.grad is None
    for branch in network.calibration.branches.values():
        assert branch.global_value.weight.grad.abs().sum() > 0
        assert branch.channel_value.weight.grad.abs().sum() > 0


def test_network_loss_adds_both_terms_and_stays_finite_with_absent_modalities():
    mask = torch.ones(B, 3, dtype=torch.bool)
    mask[0] = False
    mask[1, :2] = False
    network = make_network()
    output, ctx = forward(network, mask)
    total = network.loss(output, ctx.target, ctx.batch, training=True)
    task = ctx.per_sample_loss(output.logits).mean()
    terms = network.calibration.loss_terms(output, ctx)
    torch.testing.assert_close(total, task + terms["vgmr_value"] + terms["vgmr_reg"])
    assert torch.isfinite(total)
    total.backward()
    assert all(torch.isfinite(p.grad).all() for p in network.parameters() if p.grad is not None)


def test_value_targets_use_the_temperature():
    # τ = 2: signed σ(Δ/τ) at Δ = 1 -> σ(0.5) = 0.622459; abs tanh(|Δ|/2τ) at Δ = −1 -> tanh(0.25)
    delta = torch.tensor([[1.0, -1.0]])
    signed = objective.value_targets(delta, 2.0, "signed")
    torch.testing.assert_close(signed, torch.tensor([[0.622459, 0.377541]]))
    impact = objective.value_targets(delta, 2.0, "abs")
    torch.testing.assert_close(impact, torch.tensor([[0.244919, 0.244919]]))


def test_value_loss_with_a_single_present_pair():
    # one sample, m1 absent: the only pair is (0, m0): g off by 0.3, Avg p on target -> 0.09 / 1
    targets = torch.tensor([[0.5, 0.5]])
    mask = torch.tensor([[True, False]])
    signals, names = _signals(torch.tensor([[0.8, 0.1]]), torch.tensor([[0.5, 0.9]]), mask)
    assert objective.value_loss(signals, targets, names) == pytest.approx(0.09)


def test_regularisation_spread_is_the_population_std_from_two_rows():
    # two rows, g = Avg p = (0, 1) for m0: population std 0.5 (sample std would be 0.707);
    # γ = 1 -> two hinges relu(1 − sqrt(0.25 + 1e-8)) = 0.5 each; gate 0.5 -> no centring term.
    # m1 is absent from both rows and adds nothing (and does not stop the loop for m2 = m0's copy)
    values = torch.tensor([[0.0, 0.3, 0.0], [1.0, 0.3, 1.0]])
    mask = torch.tensor([[True, False, True], [True, False, True]])
    signals, names = _signals(values, values, mask)
    signals.mask = mask
    loss = objective.regularisation_loss(signals, names, floor=1.0)
    assert loss.item() == pytest.approx(4 * 0.5, abs=1e-6)  # m0 and m2, two hinges each


def test_regularisation_gate_mean_counts_real_steps_only():
    # one modality, 2 rows, gates (B, T = 3, d = 2); row 0 has 1 real step with G = 0.9,
    # row 1 has 3 real steps with G = 0.6; padded steps hold G = 0.0.
    # mean over real (step, channel) entries: (2·0.9 + 6·0.6) / 8 = 0.675
    # -> (0.675 − 0.5)² = 0.030625
    gate = torch.zeros(2, 3, 2)
    gate[0, 0] = 0.9
    gate[1] = 0.6
    signals = RefinerSignals(mask=torch.ones(2, 1, dtype=torch.bool))
    signals.gate["m0"] = gate
    signals.steps["m0"] = torch.tensor([[True, False, False], [True, True, True]])
    loss = objective.regularisation_loss(signals, ("m0",), floor=0.05)
    assert loss.item() == pytest.approx(0.030625, abs=1e-6)


def test_reg_term_is_lambda_times_the_regulariser_and_one_value_signal_suffices():
    network = make_network(lambda_value=0.3, lambda_reg=0.2)
    output, ctx = forward(network)
    terms = network.calibration.loss_terms(output, ctx)
    signals = output.diagnostics[DIAGNOSTICS_KEY]
    expected = 0.2 * objective.regularisation_loss(signals, network.names, 0.05)
    torch.testing.assert_close(terms["vgmr_reg"], expected)
    only_global = make_network(lambda_value=0.3, use_channel_value=False)
    output, ctx = forward(only_global)
    assert "vgmr_value" in only_global.calibration.loss_terms(output, ctx)


def test_regularisation_gate_mean_of_a_single_real_entry():
    # one row, one real step of two, d = 1, G = 0.9 on it: mean 0.9 -> (0.9 − 0.5)² = 0.16
    signals = RefinerSignals(mask=torch.ones(1, 1, dtype=torch.bool))
    signals.gate["m0"] = torch.tensor([[[0.9], [0.1]]])
    signals.steps["m0"] = torch.tensor([[True, False]])
    loss = objective.regularisation_loss(signals, ("m0",), floor=0.05)
    assert loss.item() == pytest.approx(0.16, abs=1e-6)
