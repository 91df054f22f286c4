"""ogm_ge: k = 1 − tanh(α·ρ) for the dominant modality's encoder gradients only (Eq. 10)."""

import math

import pytest
import torch
from torch.nn import functional as F
from weightings_helpers import build_network, loss_context, make_batch, make_data

from fusekit import FusionClassifier
from fusekit.builtin.concat_fusion import ConcatFusion
from fusekit.builtin.late_fusion import LateFusion
from fusekit.builtin.ogm_ge_weighting import (
    OGMGEWeighting,
    modulation_coefficients,
    split_head_logits,
)
from fusekit.builtin.sum_fusion import SumFusion
from fusekit.plugin import ModalityBatch, TrainingContext


def test_coefficient_for_known_ratio_two_modalities():
    k = modulation_coefficients(torch.tensor([0.8, 0.4]), torch.tensor([True, True]), alpha=0.5)
    torch.testing.assert_close(k, torch.tensor([1 - math.tanh(0.5 * 2.0), 1.0]))


def test_three_modalities_use_mean_one_to_others_ratio():
    scores = torch.tensor([0.6, 0.3, 0.2])
    k = modulation_coefficients(scores, torch.tensor([True, True, True]), alpha=1.0)
    rho = torch.tensor([(2 + 3) / 2, (0.5 + 1.5) / 2, (1 / 3 + 2 / 3) / 2])
    assert rho[1] == 1.0  # not > 1: unmodulated
    torch.testing.assert_close(k, torch.tensor([1 - math.tanh(rho[0].item()), 1.0, 1.0]))


def test_absent_modality_is_left_out_of_ratios():
    scores = torch.tensor([0.6, 0.3, 0.0])
    k = modulation_coefficients(scores, torch.tensor([True, True, False]), alpha=1.0)
    torch.testing.assert_close(k, torch.tensor([1 - math.tanh(2.0), 1.0, 1.0]))


def _with_gradients(network):
    for parameter in network.parameters():
        parameter.grad = torch.randn_like(parameter)
    return {name: p.grad.clone() for name, p in network.named_parameters()}


def test_scales_only_dominant_encoder_weights_not_head_or_biases():
    weighting = OGMGEWeighting(alpha=0.5, noise=False)
    network = build_network(weighting)
    before = _with_gradients(network)
    weighting.coefficients = torch.tensor([0.3, 1.0])
    weighting.on_grad_computed(TrainingContext(network, None, None, epoch=0))
    for name, parameter in network.named_parameters():
        scaled = name.startswith("backbones.a.") and parameter.dim() >= 2
        factor = 0.3 if scaled else 1.0
        torch.testing.assert_close(parameter.grad, before[name] * factor, msg=name)


def test_generalisation_enhancement_adds_noise_with_gradient_std():
    weighting = OGMGEWeighting(noise=True)
    network = build_network(weighting, shapes={"a": (200,), "b": (3,)})
    before = _with_gradients(network)
    weighting.coefficients = torch.tensor([0.3, 1.0])
    weighting.on_grad_computed(TrainingContext(network, None, None, epoch=0))
    grad = before["backbones.a.layers.0.weight"]
    noise = network.backbones["a"].layers[0].weight.grad - 0.3 * grad
    assert abs(noise.std().item() / grad.std().item() - 1) < 0.1
    assert abs(noise.mean().item()) < 0.1
    torch.testing.assert_close(network.head.weight.grad, before["head.weight"])


def test_no_modulation_outside_the_epoch_window():
    weighting = OGMGEWeighting(start_epoch=2, end_epoch=4, noise=False)
    network = build_network(weighting)
    before = _with_gradients(network)
    for epoch in (1, 5):
        weighting.coefficients = torch.tensor([0.3, 1.0])
        weighting.on_grad_computed(TrainingContext(network, None, None, epoch=epoch))
    for name, parameter in network.named_parameters():
        torch.testing.assert_close(parameter.grad, before[name])


def test_split_head_logits_of_three_modalities_with_padded_steps():
    """z_m = v_m W_mᵀ + b / M with v_m the mean over real steps: the blocks sum to the logits."""
    shapes = {"a": (4, 3), "b": (2,), "c": (3,)}
    network = build_network(OGMGEWeighting(unimodal="split_head"), shapes=shapes, identity=True)
    batch = make_batch(shapes=shapes, n=3)
    steps = torch.tensor([[True, True, False, False], [True] * 4, [True, False, False, False]])
    batch = ModalityBatch(batch.features, batch.mask, index=batch.index, steps={"a": steps})
    output = network(batch)
    parts = split_head_logits(network, output)
    weight, bias = network.head.weight, network.head.bias  # (K, 3 + 2 + 3)
    x = batch.features
    v_a = (x["a"] * steps[..., None]).sum(1) / steps.sum(1, keepdim=True)  # mean of real steps
    torch.testing.assert_close(parts["a"], v_a @ weight[:, :3].T + bias / 3)
    torch.testing.assert_close(parts["b"], x["b"] @ weight[:, 3:5].T + bias / 3)
    torch.testing.assert_close(parts["c"], x["c"] @ weight[:, 5:].T + bias / 3)
    torch.testing.assert_close(sum(parts.values()), output.logits)


def test_auto_does_not_split_a_linear_head_of_another_fusion():
    weighting = OGMGEWeighting(unimodal="auto")
    network = build_network(weighting, fusion=SumFusion())
    assert isinstance(network.head, torch.nn.Linear)
    weighting.on_train_begin(TrainingContext(network, None, None, epoch=0))
    assert not weighting._split


@pytest.mark.parametrize(
    "params, message",
    [
        (
            {"alpha": 0.0},
            "The 'alpha' parameter of weighting ogm_ge must be a float in the range \\(0.0, inf\\)",
        ),
        ({"unimodal": "both"}, "The 'unimodal' parameter of weighting ogm_ge must be a str among"),
        (
            {"start_epoch": 3, "end_epoch": 2},
            r"ogm_ge: end_epoch must be None or >= start_epoch \(3\)",
        ),
    ],
)
def test_bad_parameters_name_themselves(params, message):
    with pytest.raises(ValueError, match=message):
        build_network(OGMGEWeighting(**params))


def test_one_epoch_window_is_valid_and_inclusive():
    weighting = OGMGEWeighting(start_epoch=2, end_epoch=2, noise=False)
    network = build_network(weighting)
    before = _with_gradients(network)
    weighting.coefficients = torch.tensor([0.3, 1.0])
    weighting.on_grad_computed(TrainingContext(network, None, None, epoch=2))
    weight = network.backbones["a"].layers[0].weight
    torch.testing.assert_close(weight.grad, 0.3 * before["backbones.a.layers.0.weight"])


@pytest.mark.parametrize("indicators", [False, True])
def test_split_head_logits_decompose_the_concat_head(indicators):
    network = build_network(
        OGMGEWeighting(unimodal="split_head"), fusion=ConcatFusion(indicators=indicators)
    )
    batch = make_batch(mask=torch.rand(8, 2) > 0.3)
    output = network(batch)
    parts = split_head_logits(network, output)
    torch.testing.assert_close(sum(parts.values()), output.logits)


def test_coefficients_come_from_the_batch_scores():
    weighting = OGMGEWeighting(alpha=0.7, unimodal="split_head")
    network = build_network(weighting)
    weighting._split = True
    mask = torch.tensor([[True, True], [True, False], [True, True], [False, True]])
    batch = make_batch(n=4, mask=mask)
    target = torch.tensor([0, 1, 2, 0])
    output = network(batch)
    assert weighting.loss_terms(output, loss_context(network, batch, target)) == {}
    parts = split_head_logits(network, output)
    s = [
        F.softmax(parts[m], 1)[torch.arange(4), target][mask[:, i]].mean().item()
        for i, m in enumerate("ab")
    ]  # Eq. (9) as means over present rows
    # Eq. (10): only the modality with ρ = s_m / s_other > 1 is slowed, by 1 − tanh(α·ρ)
    rho = s[0] / s[1]
    expected = [1 - math.tanh(0.7 * rho), 1.0] if rho > 1 else [1.0, 1 - math.tanh(0.7 / rho)]
    torch.testing.assert_close(weighting.coefficients, torch.tensor(expected))


def test_a_modality_absent_from_the_batch_is_left_out():
    weighting = OGMGEWeighting(alpha=0.7, unimodal="split_head")
    shapes = {"a": (4,), "b": (3,), "c": (2,)}
    network = build_network(weighting, shapes=shapes)
    weighting._split = True
    mask = torch.tensor([[True, True, False]] * 4)  # c absent from the whole batch
    batch = make_batch(shapes=shapes, n=4, mask=mask)
    target = torch.tensor([0, 1, 2, 0])
    output = network(batch)
    weighting.loss_terms(output, loss_context(network, batch, target))
    parts = split_head_logits(network, output)
    s_a, s_b = (F.softmax(parts[m], 1)[torch.arange(4), target].mean().item() for m in "ab")
    rho = s_a / s_b  # the two-modality rule between a and b; c keeps k = 1
    expected = [1 - math.tanh(0.7 * rho), 1.0] if rho > 1 else [1.0, 1 - math.tanh(0.7 / rho)]
    torch.testing.assert_close(weighting.coefficients, torch.tensor([*expected, 1.0]))


def test_split_head_needs_concat_fusion():
    X, y = make_data(2)
    model = FusionClassifier(
        fusion=LateFusion(), weighting="ogm_ge", weighting__unimodal="split_head", max_epochs=1
    )
    with pytest.raises(ValueError, match="concat"):
        model.fit(X, y)


def test_probes_do_not_send_gradient_to_encoders():
    weighting = OGMGEWeighting(unimodal="heads")
    network = build_network(weighting)
    weighting._split = False
    batch = make_batch()
    output = network(batch)
    term = weighting.loss_terms(output, loss_context(network, batch, torch.zeros(8).long()))
    term["ogm_probes"].backward()
    assert all(p.grad is None for p in network.backbones.parameters())
    assert network.unimodal_heads["a"].weight.grad is not None


def test_auto_uses_the_split_head_for_concat_and_probes_otherwise():
    X, y = make_data(2, missing=0.0)
    concat = FusionClassifier(weighting="ogm_ge", max_epochs=1, random_state=0).fit(X, y)
    assert concat.module_.weighting._split
    late = FusionClassifier(fusion="late", weighting="ogm_ge", max_epochs=1, random_state=0)
    assert not late.fit(X, y).module_.weighting._split


def test_probe_logits_pool_sequences_over_real_steps():
    shapes = {"a": (4, 3), "b": (2,)}
    weighting = OGMGEWeighting(unimodal="heads")
    network = build_network(weighting, shapes=shapes, identity=True)
    weighting._split = False
    batch = make_batch(shapes=shapes, n=3)
    steps = torch.tensor([[True, True, False, False], [True] * 4, [True, False, False, False]])
    batch = ModalityBatch(batch.features, batch.mask, index=batch.index, steps={"a": steps})
    output = network(batch)
    logits = weighting._unimodal_logits(output, loss_context(network, batch, torch.zeros(3).long()))
    x = batch.features["a"]
    v_a = (x * steps[..., None]).sum(1) / steps.sum(1, keepdim=True)  # mean of the real steps
    torch.testing.assert_close(logits["a"], network.unimodal_heads["a"](v_a))


def test_generalisation_enhancement_is_on_by_default():
    assert OGMGEWeighting().noise is True  # the "GE" of OGM-GE
