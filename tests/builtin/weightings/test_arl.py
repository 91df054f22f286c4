"""arl: unimodal losses through the shared head and variance coefficients on the encoder
gradients, (A1)-(A4).

Expected values are worked by hand or re-computed with the official step
(shicaiwei123/ICCV2025-ARL ``main_arl_variance.py``: the "modality analysis" of ``train_epoch``,
``models/backbone.py``: ``GradScale``) re-implemented here in numpy, never read back from the
implementation.
"""

import math

import numpy as np
import pytest
import torch
from balancing_helpers import (
    build_network,
    loss_context,
    make_data,
    padded_sequence_batch,
    training_context,
)

from fusekit import FusionClassifier, FusionRegressor
from fusekit.builtin.arl_weighting import ARLWeighting, modality_coefficients, prediction_entropy
from fusekit.plugin import ModalityBatch
from fusekit.testing import parametrize_with_checks


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _official_weight(out_a, out_v, T):
    """``train_epoch``'s modality analysis on two unimodal logit arrays ``(B, K)``."""
    calculate_a = np.mean(np.abs(out_a), 0).sum()
    calculate_b = np.mean(np.abs(out_v), 0).sum()
    p_a, p_v = _softmax(out_a), _softmax(out_v)
    H_a = np.sum(-p_a * np.log(p_a + 1e-16), axis=1).mean()
    H_v = np.sum(-p_v * np.log(p_v + 1e-16), axis=1).mean()
    H_a, H_v = max(H_a / (H_a + H_v), 0.3), max(H_v / (H_a + H_v), 0.3)
    a_weight, v_weight = 1 / H_a, 1 / H_v
    calculate_a, calculate_b = (
        calculate_a / (calculate_a + calculate_b),
        calculate_b / (calculate_a + calculate_b),
    )
    a_weight, v_weight = a_weight / (a_weight + v_weight), v_weight / (a_weight + v_weight)
    return _softmax(np.array([calculate_b * a_weight * T, calculate_a * v_weight * T]))


def _stats(out):
    p = _softmax(out)
    return np.mean(np.abs(out), 0).sum(), np.sum(-p * np.log(p + 1e-16), axis=1).mean()


@pytest.mark.parametrize("seed", range(4))
def test_two_modality_coefficients_match_the_official_analysis(seed):
    """Seed 3 makes one modality nearly certain, so the entropy floor 0.3 is active."""
    rng = np.random.default_rng(seed)
    out_a = rng.normal(size=(16, 5)) * (1 + seed)
    out_v = rng.normal(size=(16, 5)) * (20.0 if seed == 3 else 1.0)
    stats = [_stats(out_a), _stats(out_v)]
    magnitude = torch.tensor([s[0] for s in stats])
    entropy = torch.tensor([s[1] for s in stats])
    omega = modality_coefficients(magnitude, entropy, torch.tensor([True, True]), 8.0)
    torch.testing.assert_close(omega, torch.tensor(_official_weight(out_a, out_v, 8.0)))


def test_three_modality_coefficients_by_hand():
    """c = (1, 1, 2): shares (1/4, 1/4, 1/2); equal entropies: ũ = 1/3 each (floor 0.2 not
    reached); others' mean share (3/8, 3/8, 1/4); T = 3: scores (3/8, 3/8, 1/4)."""
    omega = modality_coefficients(
        torch.tensor([1.0, 1.0, 2.0]), torch.ones(3), torch.ones(3, dtype=torch.bool), 3.0
    )
    scores = [3 / 8, 3 / 8, 1 / 4]
    total = sum(math.exp(s) for s in scores)
    torch.testing.assert_close(omega, torch.tensor([math.exp(s) / total for s in scores]))


def test_absent_modalities_get_no_coefficient_and_a_lone_one_the_released_constant():
    seen = torch.tensor([True, False, True])
    omega = modality_coefficients(torch.tensor([1.0, 9.0, 3.0]), torch.ones(3), seen, 8.0)
    assert float(omega[1]) == 0.0
    two = modality_coefficients(torch.tensor([1.0, 3.0]), torch.ones(2), torch.ones(2) > 0, 8.0)
    torch.testing.assert_close(omega[[0, 2]], two)  # the game over the seen ones
    lone = modality_coefficients(torch.ones(2), torch.ones(2), torch.tensor([True, False]), 8.0)
    torch.testing.assert_close(lone, torch.tensor([0.5, 0.0]))


@pytest.mark.parametrize("unseen", [(9.0, 7.0), (0.0, 0.0)])
def test_an_unseen_modality_is_left_out_of_every_normalisation(unseen):
    """Three modalities, b unseen, its magnitude and entropy (large, or the zero mean of no rows)
    must not count:
    c = (1, ·, 3), H = (0.5, ·, 1.5). By hand over a and c: c̃ = (1/4, 3/4); H̃ = (1/4, 3/4),
    floored at 0.6/2 = 0.3: (0.3, 0.75); u = (10/3, 4/3), ũ = (5/7, 2/7); the other's share
    (3/4, 1/4); T = 8: scores (30/7, 4/7); ω = softmax of those, 0 for b."""
    seen = torch.tensor([True, False, True])
    omega = modality_coefficients(
        torch.tensor([1.0, unseen[0], 3.0]), torch.tensor([0.5, unseen[1], 1.5]), seen, 8.0
    )
    scores = np.array([30 / 7, 4 / 7])
    expected = np.exp(scores) / np.exp(scores).sum()
    torch.testing.assert_close(omega, torch.tensor([expected[0], 0.0, expected[1]]).float())


def test_padded_sequences_pool_over_their_real_steps_in_the_unimodal_passes():
    """a is a padded sequence (9s in the padding), b absent in row 2, a in row 3: (A1)-(A3) on
    the head applied to a's mean over its real steps, each modality over its present rows."""
    batch, mask, pooled = padded_sequence_batch()
    rng = np.random.default_rng(8)
    weight, bias = rng.normal(size=(3, 4)), rng.normal(size=3)
    target = np.array([0, 2, 1, 1])
    weighting = ARLWeighting(gamma=2.0, temperature=4.0, warmup_epochs=0)
    network = build_network(weighting, shapes={"a": (3, 2), "b": (2,)}, identity=True)
    with torch.no_grad():
        network.head.weight.copy_(torch.tensor(weight, dtype=torch.float32))
        network.head.bias.copy_(torch.tensor(bias, dtype=torch.float32))
    network.train()
    output = network(batch)
    terms = weighting.loss_terms(output, loss_context(network, batch, torch.tensor(target)))
    unimodal = [pooled["a"] @ weight[:, :2].T + bias, pooled["b"] @ weight[:, 2:].T + bias]
    expected = sum(_ce(z, target)[mask[:, p]].mean() for p, z in enumerate(unimodal))
    torch.testing.assert_close(terms["arl_unimodal"], torch.tensor(2.0 * expected).float())
    official = _official_weight(unimodal[0][mask[:, 0]], unimodal[1][mask[:, 1]], 4.0)
    torch.testing.assert_close(
        weighting.omega, torch.tensor(official, dtype=torch.float32), rtol=1e-5, atol=1e-6
    )
    torch.testing.assert_close(output.diagnostics["arl_coefficients"], weighting.omega)


def test_a_certain_prediction_has_zero_entropy_not_nan():
    """The code's log(p + 1e−16): a class probability that underflows to 0 adds 0 · log(1e−16)."""
    entropy = prediction_entropy(torch.tensor([[0.0, 200.0], [0.0, 0.0]]))
    torch.testing.assert_close(entropy, torch.tensor([0.0, math.log(2.0)]))


def _linear_case(weighting, seed=0):
    rng = np.random.default_rng(seed)
    features = {"a": rng.normal(size=(10, 2)), "b": rng.normal(size=(10, 3))}
    mask = np.ones((10, 2), dtype=bool)
    mask[[1, 6], 1] = False
    weight, bias = rng.normal(size=(3, 5)) * 2, rng.normal(size=3)
    target = rng.integers(0, 3, 10)
    network = build_network(weighting, shapes={"a": (2,), "b": (3,)}, identity=True)
    with torch.no_grad():
        network.head.weight.copy_(torch.tensor(weight, dtype=torch.float32))
        network.head.bias.copy_(torch.tensor(bias, dtype=torch.float32))
    tensors = {m: torch.tensor(v * mask[:, [p]], dtype=torch.float32)
               for p, (m, v) in enumerate(features.items())}  # fmt: skip
    batch = ModalityBatch(tensors, torch.tensor(mask)).with_mask(torch.tensor(mask))
    blocks = [features["a"], np.zeros((10, 3))], [np.zeros((10, 2)), features["b"]]
    unimodal = [np.concatenate(b, axis=1) @ weight.T + bias for b in blocks]  # (A1)
    return network, batch, torch.tensor(target), unimodal, mask, target


def _ce(z, target):
    p = _softmax(z)
    return -np.log(p[np.arange(len(target)), target])


@pytest.mark.parametrize("active", [True, False])
def test_loss_terms_of_a_linear_model_match_the_official_step(active):
    """(A3): γ Σ_m CE(head on m alone) over m's present rows (γ = 1 in the warm-up); (A2): ω
    from the same unimodal logits, b's statistics over its present rows."""
    weighting = ARLWeighting(gamma=3.0, temperature=4.0, warmup_epochs=0 if active else 5)
    network, batch, target_t, unimodal, mask, target = _linear_case(weighting)
    network.train()
    output = network(batch)
    terms = weighting.loss_terms(output, loss_context(network, batch, target_t))
    gamma = 3.0 if active else 1.0
    expected = sum(_ce(z, target)[mask[:, p]].mean() for p, z in enumerate(unimodal))
    torch.testing.assert_close(
        terms["arl_unimodal"], torch.tensor(gamma * expected, dtype=torch.float32)
    )
    if active:
        official = _official_weight(unimodal[0], unimodal[1][mask[:, 1]], 4.0)
        torch.testing.assert_close(
            weighting.omega, torch.tensor(official, dtype=torch.float32), rtol=1e-5, atol=1e-6
        )
    else:
        assert "arl_coefficients" not in output.diagnostics


def _gradients(coefficients, warmup_epochs=0):
    torch.manual_seed(0)
    weighting = ARLWeighting(warmup_epochs=warmup_epochs, coefficients=coefficients)
    network = build_network(weighting, shapes={"a": (4,), "b": (3,)})
    batch = ModalityBatch(
        {"a": torch.randn(8, 4), "b": torch.randn(8, 3)}, torch.ones(8, 2, dtype=torch.bool)
    )
    network.train()
    loss = network.loss(network(batch), torch.arange(8) % 3, batch, training=True)
    loss.backward()
    before = {m: [p.grad.clone() for p in network.modality_parameters(m)] for m in ("a", "b")}
    head = network.head.weight.grad.clone()
    weighting.on_epoch_begin(training_context(network, epoch=1))
    weighting.on_grad_computed(training_context(network, epoch=1))
    return weighting, network, before, head


@pytest.mark.parametrize("coefficients", ["variance", "released"])
def test_encoder_gradients_are_scaled_by_one_plus_omega(coefficients):
    """(A4): g_m ← (1 + ω_m) g_m on every parameter of encoder m, the head untouched; released:
    ω = 0.5 for both (×1.5), as the code's GradScale with its unchanged weights."""
    weighting, network, before, head = _gradients(coefficients)
    omega = weighting.omega
    if coefficients == "released":
        torch.testing.assert_close(omega, torch.tensor([0.5, 0.5]))
    else:
        torch.testing.assert_close(omega.sum(), torch.tensor(1.0))
        assert float(omega[0]) != 0.5
    for position, name in enumerate(("a", "b")):
        for grad, old in zip(network.modality_parameters(name), before[name], strict=True):
            torch.testing.assert_close(grad.grad, (1 + omega[position]) * old)
    torch.testing.assert_close(network.head.weight.grad, head)


def test_no_scaling_in_the_warmup():
    weighting, network, before, _ = _gradients("variance", warmup_epochs=5)
    assert not weighting.active
    for name in ("a", "b"):
        for grad, old in zip(network.modality_parameters(name), before[name], strict=True):
            torch.testing.assert_close(grad.grad, old)


def test_the_warmup_ends_at_epoch_warmup_epochs():
    """(A2)-(A4) act from the zero-based epoch ``warmup_epochs`` on (the code's ``start``):
    with warmup_epochs=2, epochs 0 and 1 are warm-up, epoch 2 is the first modulated one."""
    weighting = ARLWeighting(warmup_epochs=2)
    network = build_network(weighting)
    weighting.on_train_begin(training_context(network))
    seen = []
    for epoch in range(4):
        weighting.on_epoch_begin(training_context(network, epoch=epoch))
        seen.append(bool(weighting.active))
    assert seen == [False, False, True, True]


def test_nothing_in_validation_passes():
    weighting = ARLWeighting(warmup_epochs=0)
    network, batch, target_t, *_ = _linear_case(weighting)
    output = network(batch)
    assert weighting.loss_terms(output, loss_context(network, batch, target_t, False)) == {}


def test_fits_with_three_modalities_and_is_reproducible():
    X, y = make_data(3)
    kwargs = {"weighting": "arl", "max_epochs": 3, "random_state": 0}
    first = FusionClassifier(**kwargs).fit(X, y)
    second = FusionClassifier(**kwargs).fit(X, y)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    omega = first.module_.weighting.omega
    torch.testing.assert_close(omega.sum(), torch.tensor(1.0))
    assert first.score(X, y) > 0.6


def test_composes_with_another_weighting():
    X, y = make_data(2)
    model = FusionClassifier(weighting=["modality_dropout", "arl"], max_epochs=2, random_state=0)
    assert np.isfinite(model.fit(X, y).predict_proba(X)).all()


def test_regression_is_refused():
    X, y = make_data(2)
    with pytest.raises(ValueError, match="arl: needs a classification task"):
        FusionRegressor(weighting="arl", max_epochs=1).fit(X, y.astype(float))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"gamma": -1.0}, "'gamma' parameter of weighting arl must be a float"),
        ({"temperature": -1.0}, "'temperature' parameter of weighting arl must be"),
        ({"warmup_epochs": -1}, "'warmup_epochs' parameter of weighting arl must be"),
        ({"coefficients": "paper"}, "'coefficients' parameter of weighting arl must be a str"),
    ],
)
def test_bad_parameters_are_clear_errors(params, message):
    X, y = make_data(2)
    params = {f"weighting__{k}": v for k, v in params.items()}
    model = FusionClassifier(weighting="arl", max_epochs=1, **params)
    with pytest.raises(ValueError, match=message):
        model.fit(X, y)


@parametrize_with_checks("weighting", ["arl"], params={"warmup_epochs": 0})
def test_contract_checks_pass_with_the_coefficients_from_the_first_epoch(plugin, check):
    check(plugin)
