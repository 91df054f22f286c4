"""opm: drop the dominant modality's features with q = q_base·(1 + λ·tanh(ρ − 1)) (O1)-(O5).

Expected values are worked by hand from the equations in the module docstring (math.tanh and
math.exp only), never read back from the implementation.
"""

import math

import numpy as np
import pytest
import torch
from weightings_helpers import build_network, make_data

from fusekit import FusionClassifier, FusionRegressor
from fusekit.builtin import opm_weighting
from fusekit.builtin.late_fusion import LateFusion
from fusekit.builtin.opm_weighting import (
    OPMWeighting,
    discrepancy_ratios,
    drop_probabilities,
    drop_rescale,
    keep_matrix,
)
from fusekit.data import Modalities
from fusekit.datasets import make_imbalanced_classification
from fusekit.plugin import ModalityBatch, TrainingContext
from fusekit.testing import parametrize_with_checks

ALL2 = torch.tensor([True, True])
ALL3 = torch.tensor([True, True, True])


def test_two_modalities_ratio_and_drop_probability():
    """s = (0.8, 0.4): ρ = (2, 0.5); q_a = 0.5·(1 + 0.5·tanh(1)), q_b = 0 (O2, O3)."""
    rho = discrepancy_ratios(torch.tensor([0.8, 0.4]), ALL2)
    torch.testing.assert_close(rho, torch.tensor([2.0, 0.5]))
    q = drop_probabilities(rho, q_base=0.5, lam=0.5)
    torch.testing.assert_close(q, torch.tensor([0.5 * (1 + 0.5 * math.tanh(1.0)), 0.0]))


def test_three_modalities_use_the_mean_one_to_others_ratio():
    """s = (0.6, 0.3, 0.2): ρ_a = (2 + 3)/2, ρ_b = (0.5 + 1.5)/2 = 1 (not > 1), ρ_c = 0.5."""
    rho = discrepancy_ratios(torch.tensor([0.6, 0.3, 0.2]), ALL3)
    torch.testing.assert_close(rho, torch.tensor([2.5, 1.0, 0.5]))
    q = drop_probabilities(rho, q_base=0.4, lam=1.0)
    torch.testing.assert_close(q, torch.tensor([0.4 * (1 + math.tanh(1.5)), 0.0, 0.0]))


def test_drop_probability_is_clipped_to_one():
    """q_base = 0.9, λ = 1, ρ = 3: 0.9·(1 + tanh 2) = 1.77 -> 1."""
    q = drop_probabilities(torch.tensor([3.0, 1 / 3]), q_base=0.9, lam=1.0)
    torch.testing.assert_close(q, torch.tensor([1.0, 0.0]))


def test_an_absent_modality_is_never_dominant_nor_in_the_others_ratios():
    """c absent from the batch: ρ over a, b only, (0.3, 0.6) -> (0.5, 2); ρ_c = 0."""
    rho = discrepancy_ratios(torch.tensor([0.3, 0.6, 0.9]), torch.tensor([True, True, False]))
    torch.testing.assert_close(rho, torch.tensor([0.5, 2.0, 0.0]))
    assert torch.isfinite(discrepancy_ratios(torch.zeros(2), ALL2)).all()  # no 0/0


def test_rescale_uses_width_weighted_drop_rate():
    """q = (0.6, 0), widths (4, 2): θ = 4·0.6/6 = 0.4, 1/(1 − θ) = 5/3 (O5)."""
    scale = drop_rescale(torch.tensor([0.6, 0.0]), torch.tensor([4.0, 2.0]))
    torch.testing.assert_close(scale, torch.tensor(5 / 3))


def test_keep_matrix_keeps_with_probability_one_minus_q():
    """q = (0.5, 0): a kept where u < 0.5, b always; an absent entry is kept (O4)."""
    uniforms = torch.tensor([[0.2, 0.9], [0.7, 0.99], [0.5, 0.1], [0.9, 0.3]])
    mask = torch.tensor([[True, True], [True, True], [True, True], [False, True]])
    keep = keep_matrix(torch.tensor([0.5, 0.0]), mask, uniforms)
    expected = torch.tensor([[True, True], [False, True], [False, True], [True, True]])
    torch.testing.assert_close(keep, expected)


def test_a_row_that_would_lose_every_present_modality_keeps_them():
    """Row 0 has a, b present (c absent) and both draws drop them: it keeps a and b."""
    mask = torch.tensor([[True, True, False], [True, True, True]])
    uniforms = torch.tensor([[0.9, 0.9, 0.0], [0.9, 0.9, 0.0]])
    keep = keep_matrix(torch.tensor([0.6, 0.6, 0.0]), mask, uniforms)
    expected = torch.tensor([[True, True, True], [False, False, True]])
    torch.testing.assert_close(keep, expected)


# A hand-built pass: identity backbones, concat head W (2 classes × 4 features), bias 0.
# h_a = h_b = (1, 0) in both rows, y = 0: z_a = (2, 0), z_b = (0.5, 0) (split head, O1).
S_A = 1 / (1 + math.exp(-2.0))  # softmax((2, 0))[0]
S_B = 1 / (1 + math.exp(-0.5))  # softmax((0.5, 0))[0]
Q_A = 0.5 * (1 + 0.5 * math.tanh(S_A / S_B - 1))  # q_base = λ = 0.5 (O3)
SCALE = 1 / (1 - 2 * Q_A / 4)  # θ = (2·q_a + 2·0) / 4 (O5)


def _hand_network(**params):
    shapes = {"a": (2,), "b": (2,)}
    weighting = OPMWeighting(**{"unimodal": "split_head", "warmup_epochs": 0, **params})
    network = build_network(weighting, shapes=shapes, n_outputs=2, identity=True)
    with torch.no_grad():
        network.head.weight.copy_(torch.tensor([[2.0, 0.0, 0.5, 0.0], [0.0, 0.0, 0.0, 0.0]]))
        network.head.bias.zero_()
    features = {m: torch.tensor([[1.0, 0.0], [1.0, 0.0]]) for m in shapes}
    batch = ModalityBatch(features, torch.ones(2, 2, dtype=torch.bool), torch.tensor([4, 7]))
    return network, weighting, batch


def _announce(network, weighting, batch, epoch=0):
    weighting.on_train_begin(TrainingContext(network, None, None, epoch=epoch))
    target = torch.tensor([0, 0])
    weighting.on_batch_begin(
        TrainingContext(network, None, None, epoch=epoch, batch=batch, target=target)
    )


def _draws(matrix, execute=0.0):
    def fake(shape, device):
        return torch.tensor(execute) if shape == () else matrix

    return fake


def test_training_pass_drops_the_dominant_features_and_rescales(monkeypatch):
    """Row 0 keeps a (u = 0 < 1 − q_a), row 1 drops it (u = 0.99); b is never dropped; every
    kept feature is scaled by 1/(1 − θ): logits = W · h̃."""
    network, weighting, batch = _hand_network()
    monkeypatch.setattr(
        opm_weighting, "uniform_draws", _draws(torch.tensor([[0.0, 0.5], [0.99, 0.5]]))
    )
    network.train()
    _announce(network, weighting, batch)
    output = network(batch)
    torch.testing.assert_close(
        output.diagnostics["opm_scores"], torch.tensor([S_A, S_B]), atol=1e-6, rtol=1e-6
    )
    torch.testing.assert_close(weighting.drop_probability, torch.tensor([Q_A, 0.0]))
    torch.testing.assert_close(
        output.modality_weights, torch.tensor([[SCALE, SCALE], [0.0, SCALE]])
    )
    expected = torch.tensor([[(2.0 + 0.5) * SCALE, 0.0], [0.5 * SCALE, 0.0]])
    torch.testing.assert_close(output.logits, expected)


def test_batch_not_drawn_for_execution_is_not_modulated(monkeypatch):
    """p_exe = 0.7: a batch draw of 0.8 (not < p_exe) leaves the features alone."""
    network, weighting, batch = _hand_network()
    monkeypatch.setattr(opm_weighting, "uniform_draws", _draws(torch.ones(2, 2), execute=0.8))
    network.train()
    _announce(network, weighting, batch)
    output = network(batch)
    assert output.modality_weights is None
    torch.testing.assert_close(output.logits, torch.tensor([[2.5, 0.0], [2.5, 0.0]]))


@pytest.mark.parametrize("case", ["eval", "warmup", "other_batch", "not_announced"])
def test_no_modulation_outside_the_announced_training_pass(case, monkeypatch):
    network, weighting, batch = _hand_network(warmup_epochs=2 if case == "warmup" else 0)
    monkeypatch.setattr(opm_weighting, "uniform_draws", _draws(torch.ones(2, 2)))
    network.train()
    if case != "not_announced":
        _announce(network, weighting, batch, epoch=1)
    if case == "eval":
        network.eval()
    if case == "other_batch":  # same size, other rows: an extra pass of another plugin
        batch = ModalityBatch(batch.features, batch.mask, torch.tensor([0, 1]))
    output = network(batch)
    assert output.modality_weights is None
    torch.testing.assert_close(output.logits, torch.tensor([[2.5, 0.0], [2.5, 0.0]]))


def test_absent_rows_are_never_dropped_and_stay_finite(monkeypatch):
    """a is absent in row 1: the score of a is over row 0 only and row 1's a stays zero; b (the
    non-dominant one) is kept everywhere."""
    network, weighting, batch = _hand_network()
    mask = torch.tensor([[True, True], [False, True]])
    features = {"a": torch.tensor([[1.0, 0.0], [0.0, 0.0]]), "b": batch.features["b"]}
    batch = ModalityBatch(features, mask, batch.index)
    monkeypatch.setattr(opm_weighting, "uniform_draws", _draws(torch.full((2, 2), 0.99)))
    network.train()
    _announce(network, weighting, batch)
    output = network(batch)
    torch.testing.assert_close(
        output.diagnostics["opm_scores"], torch.tensor([S_A, S_B]), atol=1e-6, rtol=1e-6
    )
    # row 0 loses a (u = 0.99); row 1 has no a to lose; b kept, both scaled by 1/(1 − θ)
    torch.testing.assert_close(
        output.modality_weights, torch.tensor([[0.0, SCALE], [SCALE, SCALE]])
    )
    torch.testing.assert_close(
        output.logits, torch.tensor([[0.5 * SCALE, 0.0], [0.5 * SCALE, 0.0]])
    )


def test_modality_absent_from_the_whole_batch_is_not_dominant():
    network, weighting, batch = _hand_network(p_exe=1.0)
    mask = torch.tensor([[False, True], [False, True]])
    features = {"a": torch.zeros(2, 2), "b": batch.features["b"]}
    batch = ModalityBatch(features, mask, batch.index)
    network.train()
    _announce(network, weighting, batch)
    output = network(batch)
    torch.testing.assert_close(weighting.drop_probability, torch.zeros(2))
    assert output.modality_weights is None
    assert torch.isfinite(output.logits).all()


def test_drop_frequency_matches_q_with_torch_generator():
    """4000 identical rows, p_exe = 1, seeded: the share of rows that lose a is q_a within 4
    standard errors (sqrt(q(1 − q)/4000) ≈ 0.0073); b is never dropped."""
    network, weighting, _ = _hand_network(p_exe=1.0)
    n = 4000
    features = {m: torch.tensor([[1.0, 0.0]]).repeat(n, 1) for m in ("a", "b")}
    batch = ModalityBatch(features, torch.ones(n, 2, dtype=torch.bool), torch.arange(n))
    weighting.on_train_begin(TrainingContext(network, None, None, epoch=0))
    weighting.on_batch_begin(
        TrainingContext(network, None, None, epoch=0, batch=batch, target=torch.zeros(n).long())
    )
    network.train()
    torch.manual_seed(0)
    keep = network(batch).diagnostics["opm_keep"]
    assert abs((~keep[:, 0]).float().mean().item() - Q_A) < 4 * math.sqrt(Q_A * (1 - Q_A) / n)
    assert keep[:, 1].all()


def test_probe_heads_train_on_detached_features_when_the_head_cannot_be_split():
    weighting = OPMWeighting(unimodal="auto")
    network = build_network(weighting, fusion=LateFusion())
    weighting.on_train_begin(TrainingContext(network, None, None, epoch=0))
    assert not weighting._split and network.unimodal_heads is not None


def test_split_head_needs_concat_fusion():
    weighting = OPMWeighting(unimodal="split_head")
    network = build_network(weighting, fusion=LateFusion())
    with pytest.raises(ValueError, match="opm: unimodal='split_head' needs fusion='concat'"):
        weighting.on_train_begin(TrainingContext(network, None, None, epoch=0))


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("q_base", 1.5),
        ("q_base", "0.5"),
        ("lam", -0.1),
        ("p_exe", -0.1),
        ("warmup_epochs", -1),
        ("warmup_epochs", 1.5),
        ("unimodal", "both"),
    ],
)
def test_bad_parameter_is_a_clear_error(parameter, value):
    X, y = make_data(2)
    model = FusionClassifier(weighting="opm", max_epochs=1, **{f"weighting__{parameter}": value})
    with pytest.raises(
        ValueError, match=f"The '{parameter}' parameter of weighting opm must be"
    ) as raised:
        model.fit(X, y)
    assert repr(value) in str(raised.value)


def test_rejects_regression():
    X, y = make_data(2)
    with pytest.raises(ValueError, match="opm: needs a classification task"):
        FusionRegressor(weighting="opm", max_epochs=1).fit(X, y.astype(float))


def test_short_fit_on_imbalanced_data_modulates_and_uses_the_slow_modality(monkeypatch):
    """make_imbalanced_classification: the 'fast' modality alone is capped at Bayes 0.50, 'slow'
    at 0.77, both at 0.90. Held-out accuracy after 3 epochs with OPM from epoch 0 was 0.75-0.78
    over seeds 0-2 (threshold 0.6, above what the fast modality alone can reach); the drop was
    executed on training batches."""
    calls = []
    real = opm_weighting.keep_matrix

    def counting(q, mask, uniforms):
        calls.append(q.clone())
        return real(q, mask, uniforms)

    monkeypatch.setattr(opm_weighting, "keep_matrix", counting)
    X, y = make_imbalanced_classification(n_samples=240, random_state=0)
    train = Modalities({name: value[:120] for name, value in X.items()})
    test = Modalities({name: value[120:] for name, value in X.items()})
    model = FusionClassifier(
        weighting="opm", weighting__warmup_epochs=0, max_epochs=3, random_state=0
    )
    model.fit(train, y[:120])
    assert calls, "no batch was modulated"
    assert all(int((q > 0).sum()) == 1 for q in calls)  # exactly one dominant modality
    assert np.isfinite(model.predict_proba(test)).all()
    assert model.score(test, y[120:]) > 0.6


@parametrize_with_checks("weighting", ["opm"], params={"warmup_epochs": 0, "p_exe": 1.0})
def test_contract_checks_pass_with_modulation_from_the_first_step(plugin, check):
    """The default warm-up (6 epochs) outlasts the contract checks' short fits; here every
    training batch is modulated."""
    check(plugin)
