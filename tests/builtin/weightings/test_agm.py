"""agm: Shapley mono-modal responses from masked passes and exp(α·(η − r)) gradient scales."""

import math

import pytest
import torch
from balancing_helpers import build_network, loss_context, make_batch, training_context

from fusekit.builtin.agm_weighting import (
    AGMWeighting,
    coalition_logits,
    modulation_coefficients,
    shapley_responses,
)
from fusekit.plugin import Fusion, ModalityBatch


def _values(**named):
    """Coalition outputs keyed by letters: ``ab`` -> frozenset({0, 1})."""
    return {frozenset("abc".index(ch) for ch in key): value for key, value in named.items()}


def test_two_modality_shapley_matches_the_official_formula():
    T, A, V = torch.tensor([[4.0, 1.0]]), torch.tensor([[1.0, 0.0]]), torch.tensor([[2.0, 3.0]])
    phi = shapley_responses(_values(ab=T, a=A, b=V), 2)
    torch.testing.assert_close(phi[0], 0.5 * (T - V + A))  # Modality_Audio_2
    torch.testing.assert_close(phi[1], 0.5 * (T - A + V))  # Modality_Visual_2


def test_three_modality_shapley_matches_the_official_formula():
    g = torch.Generator().manual_seed(0)
    v = {k: torch.randn(2, 3, generator=g) for k in ["abc", "ab", "ac", "bc", "a", "b", "c"]}
    phi = shapley_responses(_values(**v), 3)
    expected_a = (v["abc"] - v["bc"]) / 3 + (v["ab"] - v["b"] + v["ac"] - v["c"]) / 6 + v["a"] / 3
    torch.testing.assert_close(phi[0], expected_a)  # Modality_Audio of the official code
    torch.testing.assert_close(phi.sum(0), v["abc"])  # efficiency: Σ φ_m = v(N) − v(∅)


class InteractionFusion(Fusion):
    """Known masked outputs: z = 2·a + 3·b + a⊙b on the first two features (absent rows = 0)."""

    emits_logits = True

    def build(self, spec):
        return spec.n_outputs

    def forward(self, features, mask, output):
        a, b = features["a"][:, :2], features["b"][:, :2]
        return 2 * a + 3 * b + a * b


def test_contributions_of_a_model_with_known_masked_outputs():
    network = build_network(
        AGMWeighting(),
        shapes={"a": (2,), "b": (2,)},
        n_outputs=2,
        fusion=InteractionFusion(),
        identity=True,
    )
    mask = torch.tensor([[True, True], [True, False]])
    batch = make_batch(shapes={"a": (2,), "b": (2,)}, n=2, mask=mask)
    output = network(batch)
    values = coalition_logits(network, output.calibrated, mask, output.logits)
    phi = shapley_responses(values, 2)
    a, b = batch.features["a"], batch.features["b"]  # b's row 1 is zero (absent)
    torch.testing.assert_close(phi[0], 2 * a + 0.5 * a * b)  # own term + half the interaction
    torch.testing.assert_close(phi[1], 3 * b + 0.5 * a * b)
    assert (phi[1][1] == 0).all()  # an absent modality contributes nothing to its sample


# Expected coefficients below are worked by hand from the authors' code (lihong2303/AGM_ICCV2023):
# two modalities, run/CREMAD_main.py: ratio_a = exp(s_v − s_a), optimal_ratio_a = exp(ŝ_v − ŝ_a),
# coeff_a = exp(α·min(optimal_ratio_a − ratio_a, 10)), symmetric for v; three modalities,
# run/URFunny_main.py: ratio_m = exp((mean_j s_j − s_m)·3/2), optimal ratio likewise on ŝ, cap 7.

BOTH = torch.tensor([True, True])


def test_two_modalities_official_direction_at_the_first_step():
    # issue 25's example, α = 0.1: s = (0.5, 2.0), ŝ = (0, 0)
    # ratio_a = e^(2.0 − 0.5) = 4.481689, optimal_a = e^0 = 1 -> k_a = e^(0.1·(1 − 4.481689))
    # ratio_v = e^(0.5 − 2.0) = 0.223130, optimal_v = 1        -> k_v = e^(0.1·(1 − 0.223130))
    k = modulation_coefficients(torch.tensor([0.5, 2.0]), torch.zeros(2), BOTH, alpha=0.1)
    torch.testing.assert_close(k, torch.tensor([0.705980, 1.080784]), atol=1e-6, rtol=0)
    # the weaker modality (higher loss, v) is amplified, the stronger one (a) damped
    assert k[1] > 1 > k[0]


def test_two_modalities_cap_the_gap_at_ten():
    # α = 0.1, s = (3, 0), ŝ = (0, 3): optimal_a − ratio_a = e^3 − e^−3 = 20.04 -> min(·, 10) = 10
    # so k_a = e^(0.1·10) = e; k_v = e^(0.1·(e^−3 − e^3)) = e^−2.00357 = 0.134852 (no cap below)
    k = modulation_coefficients(torch.tensor([3.0, 0.0]), torch.tensor([0.0, 3.0]), BOTH, 0.1)
    torch.testing.assert_close(k, torch.tensor([math.e, 0.134852]), atol=1e-6, rtol=0)


def test_three_modalities_official_formula():
    # α = 0.5, s = (0.5, 1.0, 3.0), mean 1.5; ŝ = (2, 1, 0), mean 1; scale M/(M−1) = 3/2
    # ratio   = e^(1.5·(1.5 − s)) = (e^1.5, e^0.75, e^−2.25) = (4.481689, 2.117000, 0.105399)
    # optimal = e^(1.5·(1 − ŝ))   = (e^−1.5, e^0, e^1.5)     = (0.223130, 1.000000, 4.481689)
    # gap = (−4.258559, −1.117000, 4.376290), all below 7 -> k = e^(0.5·gap)
    k = modulation_coefficients(
        torch.tensor([0.5, 1.0, 3.0]), torch.tensor([2.0, 1.0, 0.0]), torch.ones(3, dtype=bool), 0.5
    )
    torch.testing.assert_close(k, torch.tensor([0.118923, 0.572067, 8.918653]), atol=1e-5, rtol=0)


def test_three_modalities_cap_the_gap_at_seven():
    # α = 0.1, s = (0, 0, 0) -> ratio = 1; ŝ = (3, 3, 0), mean 2 -> optimal = (e^−1.5, e^−1.5, e^3)
    # gap_c = e^3 − 1 = 19.09 -> 7: k_c = e^0.7 = 2.013753
    # k_a = k_b = e^(0.1·(e^−1.5 − 1)) = 0.925254
    k = modulation_coefficients(
        torch.zeros(3), torch.tensor([3.0, 3.0, 0.0]), torch.ones(3, dtype=bool), alpha=0.1
    )
    torch.testing.assert_close(k, torch.tensor([0.925254, 0.925254, 2.013753]), atol=1e-6, rtol=0)


def test_absent_modality_is_left_out_and_the_rest_use_the_two_modality_rule():
    # c absent: a, b follow the two-modality rule (scale 2/1, cap 10), α = 0.1
    # s = (0, 5), ŝ = (5, 0): ratio_a = e^5, optimal_a = e^−5 -> k_a = e^(0.1·(e^−5 − e^5)) = 3.6e-7
    # ratio_b = e^−5, optimal_b = e^5 -> gap 148.4 capped at 10 -> k_b = e^1
    k = modulation_coefficients(
        torch.tensor([0.0, 5.0, 9.0]),
        torch.tensor([5.0, 0.0, 0.0]),
        torch.tensor([True, True, False]),
        alpha=0.1,
    )
    expected = torch.tensor([math.exp(0.1 * (math.exp(-5) - math.exp(5))), math.e, 1.0])
    torch.testing.assert_close(k, expected)
    one = modulation_coefficients(
        torch.tensor([1.0, 2.0]), torch.zeros(2), torch.tensor([True, False]), alpha=1.0
    )
    torch.testing.assert_close(one, torch.ones(2))


class AdditiveFusion(Fusion):
    """z = a + b: the Shapley responses are then exactly φ_a = a, φ_b = b."""

    emits_logits = True

    def build(self, spec):
        return spec.n_outputs

    def forward(self, features, mask, output):
        return features["a"] + features["b"]


def _additive_network(weighting):
    shapes = {"a": (2,), "b": (2,)}
    network = build_network(
        weighting, shapes=shapes, n_outputs=2, fusion=AdditiveFusion(), identity=True
    )
    a = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    batch = ModalityBatch({"a": a, "b": b}, torch.ones(2, 2, dtype=torch.bool), torch.arange(2))
    return network, batch, torch.tensor([0, 1])


def test_eta_uses_the_running_means_from_before_the_batch():
    weighting = AGMWeighting(alpha=0.1)
    network, batch, target = _additive_network(weighting)
    weighting.on_train_begin(training_context(network))
    weighting.running_scores.copy_(torch.tensor([1.0, 0.0]))  # ŝ after one earlier iteration
    weighting.score_counts.fill_(1)
    output = network(batch)
    weighting.loss_terms(output, loss_context(network, batch, target))
    # φ_a = a, φ_b = b; two classes, so −log p(y) = log(1 + e^−(z_y − z_other)):
    s_a = (math.log1p(math.exp(-2)) + math.log1p(math.exp(-1))) / 2  # 0.220095
    s_b = (math.log(2) + math.log1p(math.exp(1))) / 2  # 1.003204
    # η from ŝ = (1, 0) (before the update): optimal_a = e^(0 − 1), optimal_b = e^1
    k_a = math.exp(0.1 * (math.exp(-1) - math.exp(s_b - s_a)))
    k_b = math.exp(0.1 * (math.exp(1) - math.exp(s_a - s_b)))
    torch.testing.assert_close(weighting.coefficients, torch.tensor([k_a, k_b]))
    assert abs(k_a - 0.833569) < 1e-6 and abs(k_b - 1.253739) < 1e-6  # the worked numbers
    # then ŝ ← ŝ·(t − 1)/t + s/t with t = 2
    torch.testing.assert_close(weighting.running_scores, torch.tensor([(1 + s_a) / 2, s_b / 2]))


def test_first_batch_targets_one_and_scores_floor_the_probability():
    weighting = AGMWeighting(alpha=0.1)
    network, batch, target = _additive_network(weighting)
    batch.features["a"][0] = torch.tensor([0.0, 30.0])  # p(y=0) = 1/(1 + e^30) < 1e-8
    weighting.on_train_begin(training_context(network))
    weighting.loss_terms(network(batch), loss_context(network, batch, target))
    s_a = (-math.log(1e-8) + math.log1p(math.exp(-1))) / 2  # (18.420681 + 0.313262) / 2
    s_b = (math.log(2) + math.log1p(math.exp(1))) / 2
    torch.testing.assert_close(weighting.running_scores, torch.tensor([s_a, s_b]))  # t = 1
    # ŝ = 0 before the first update -> optimal ratios 1
    k_a = math.exp(0.1 * min(1 - math.exp(s_b - s_a), 10))
    k_b = math.exp(0.1 * min(1 - math.exp(s_a - s_b), 10))
    torch.testing.assert_close(weighting.coefficients, torch.tensor([k_a, k_b]))


def test_loss_terms_average_the_scores_over_iterations():
    weighting = AGMWeighting(alpha=0.5)
    network = build_network(weighting)
    batch = make_batch(n=6)
    target = torch.tensor([0, 1, 2, 0, 1, 2])
    weighting.on_train_begin(training_context(network))
    scores = []
    for _ in range(3):
        output = network(batch)
        assert weighting.loss_terms(output, loss_context(network, batch, target)) == {}
        phi = output.diagnostics["agm_responses"]  # (M, B, K)
        log_p = torch.log_softmax(phi, dim=-1)[:, torch.arange(6), target]  # (M, B)
        scores.append(-log_p.mean(dim=1))
    torch.testing.assert_close(weighting.running_scores, sum(scores) / 3)


def _with_gradients(network):
    for parameter in network.parameters():
        parameter.grad = torch.randn_like(parameter)
    return {name: p.grad.clone() for name, p in network.named_parameters()}


@pytest.mark.parametrize("epoch", [0, 2, 3])  # end_epoch = 2 is inside the window
def test_scales_encoder_weights_only_inside_the_window(epoch):
    weighting = AGMWeighting(end_epoch=2)
    network = build_network(weighting)
    before = _with_gradients(network)
    weighting.coefficients = torch.tensor([0.5, 2.0])
    weighting.on_grad_computed(training_context(network, epoch=epoch))
    for name, parameter in network.named_parameters():
        factor = 1.0
        if epoch <= 2 and name.startswith("backbones.") and parameter.dim() >= 2:
            factor = 0.5 if name.startswith("backbones.a.") else 2.0
        torch.testing.assert_close(parameter.grad, before[name] * factor, msg=name)
    assert weighting.coefficients is None


@pytest.mark.parametrize(
    "params, message",
    [
        ({"alpha": -0.1}, "'alpha' parameter of weighting agm must be a float"),
        ({"start_epoch": -1}, "'start_epoch' parameter of weighting agm must be an int"),
        (
            {"start_epoch": 3, "end_epoch": 2},
            r"agm: end_epoch must be None or >= start_epoch \(3\)",
        ),
    ],
)
def test_bad_parameters_name_themselves(params, message):
    with pytest.raises(ValueError, match=message):
        build_network(AGMWeighting(**params))


def test_a_one_epoch_window_is_valid():
    build_network(AGMWeighting(start_epoch=2, end_epoch=2))


def test_default_alpha_is_the_authors_one():
    """lihong2303/AGM_ICCV2023 ``utils/config.py``: alpha defaults to 1.0."""
    assert AGMWeighting().alpha == 1.0


def test_masked_passes_pool_sequences_over_real_steps_only():
    """v(S) of a padded sequence is that of the same rows with the padding cut off: concat fusion
    pools per-step features over the real steps only when the pass hands the step masks on."""
    shapes = {"a": (5, 3), "b": (4,)}
    network = build_network(AGMWeighting(), shapes=shapes, identity=True).eval()
    batch = make_batch(shapes, n=4)
    real = torch.ones(4, 5, dtype=torch.bool)
    real[:, 3:] = False  # the last two steps are padding (zeros, as the data layer leaves them)
    features = {"a": batch.features["a"] * real.unsqueeze(-1), "b": batch.features["b"]}
    mask = torch.ones(4, 2, dtype=torch.bool)
    full = network.fuse(features, mask, steps={"a": real})
    values = coalition_logits(network.view, features, mask, full, {"a": real})
    cut = build_network(AGMWeighting(), shapes={"a": (3, 3), "b": (4,)}, identity=True).eval()
    cut.load_state_dict(network.state_dict())  # identity backbones: the head is all there is
    expected = cut.fuse(
        {"a": features["a"][:, :3], "b": features["b"] * 0}, mask & torch.tensor([True, False])
    )
    torch.testing.assert_close(values[frozenset({0})], expected)
