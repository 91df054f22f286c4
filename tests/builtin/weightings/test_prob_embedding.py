"""prob_embedding: Gaussian embeddings, inverse-variance weights, KL to N(0, I)."""

import pytest
import torch
from weightings_helpers import build_network, loss_context, make_batch

from fusekit.builtin.prob_embedding_weighting import ProbEmbeddingWeighting
from fusekit.plugin import FusionOutput


def _set_log_variance(weighting, values):
    for name, value in values.items():
        torch.nn.init.zeros_(weighting.log_variance_heads[name].weight)
        torch.nn.init.constant_(weighting.log_variance_heads[name].bias, value)


def test_weights_are_inverse_variance_over_present_modalities():
    weighting = ProbEmbeddingWeighting()
    network = build_network(weighting)
    _set_log_variance(weighting, {"a": -2.0, "b": 0.0})  # σ²_a = e⁻², σ²_b = 1
    network.eval()
    mask = torch.tensor([[True, True], [False, True]])
    output = network(make_batch(n=2, mask=mask))
    precision = torch.tensor([torch.e**2, 1.0])
    torch.testing.assert_close(output.modality_weights[0], precision / precision.sum())
    torch.testing.assert_close(output.modality_weights[1], torch.tensor([0.0, 1.0]))


def test_sampling_only_in_training():
    weighting = ProbEmbeddingWeighting()
    network = build_network(weighting)
    _set_log_variance(weighting, {"a": 0.0, "b": 0.0})
    batch = make_batch(n=4)
    network.eval()
    assert torch.equal(network(batch).logits, network(batch).logits)
    network.train()
    assert not torch.equal(network(batch).logits, network(batch).logits)


def test_kl_term_is_zero_for_standard_normal_and_skips_absent_rows():
    weighting = ProbEmbeddingWeighting(kl_weight=0.5)
    network = build_network(weighting, shapes={"a": (2,), "b": (2,)})
    _set_log_variance(weighting, {"a": 0.0, "b": 0.0})
    for backbone in network.backbones.values():  # μ = 0 for every sample
        for parameter in backbone.parameters():
            torch.nn.init.zeros_(parameter)
    batch = make_batch(shapes={"a": (2,), "b": (2,)}, n=3)
    output = network(batch)
    ctx = loss_context(network, batch, torch.zeros(3).long())
    assert weighting.loss_terms(output, ctx)["pe_kl"].abs().item() < 1e-6
    _set_log_variance(weighting, {"a": 1.0, "b": 0.0})
    mask = torch.tensor([[False, True], [False, True], [False, True]])
    absent_a = make_batch(shapes={"a": (2,), "b": (2,)}, n=3, mask=mask)
    output = network(absent_a)
    assert weighting.loss_terms(output, ctx)["pe_kl"].abs().item() < 1e-6


def test_kl_term_on_numbers():
    """Eq. (4) with μ = 0 (zeroed MLP backbones, D = 6 features) and log σ² = 1 everywhere:
    ½ Σ_d (0 + e − 1 − 1) = 3 (e − 2) per sample and modality; λ = 0.5, two modalities ->
    0.5 · 2 · 3 (e − 2) = 2.154845."""
    shapes = {"a": (2,), "b": (2,)}
    weighting = ProbEmbeddingWeighting(kl_weight=0.5)
    network = build_network(weighting, shapes=shapes)
    _set_log_variance(weighting, {"a": 1.0, "b": 1.0})
    for backbone in network.backbones.values():
        for parameter in backbone.parameters():
            torch.nn.init.zeros_(parameter)
    batch = make_batch(shapes=shapes, n=3)
    output = network(batch)
    term = weighting.loss_terms(output, loss_context(network, batch, torch.zeros(3).long()))
    torch.testing.assert_close(term["pe_kl"], torch.tensor(3 * (torch.e - 2.0)))


def test_training_samples_have_the_predicted_spread():
    """Eq. (2): s = μ + σ ε; with μ = 0 and log σ² = log 4 (σ = 2) the samples of 4000 rows have
    std 2 (standard error 2/sqrt(2·8000) ≈ 0.016; allow 0.1) and mean 0. Weights are equal, so
    the features reach the fusion unscaled."""
    shapes = {"a": (2,), "b": (2,)}
    weighting = ProbEmbeddingWeighting()
    network = build_network(weighting, shapes=shapes, identity=True)
    _set_log_variance(weighting, {"a": float(torch.log(torch.tensor(4.0))), "b": 0.0})
    network.train()
    torch.manual_seed(0)
    zeros = {"a": torch.zeros(4000, 2), "b": torch.zeros(4000, 2)}
    sampled = weighting.reweight(
        zeros,
        torch.ones(4000, 2, dtype=torch.bool),
        FusionOutput(mask=torch.ones(4000, 2, dtype=torch.bool)),
    )
    weights = torch.tensor([0.25, 1.0]) / 1.25  # precision 1/4 and 1, n_i = 2
    spread_a = sampled["a"].std() / (2 * weights[0])
    assert abs(spread_a.item() - 2.0) < 0.1
    assert abs(sampled["a"].mean().item()) < 0.1


SEQUENCE_SHAPES = {"a": (3, 2), "b": (2,)}  # a: T = 3 steps of D = 2, b: a vector of 2


def _sequence_weighting(bias: dict[str, list[float]]) -> ProbEmbeddingWeighting:
    weighting = ProbEmbeddingWeighting()
    build_network(weighting, shapes=SEQUENCE_SHAPES, identity=True)
    for name, values in bias.items():
        torch.nn.init.zeros_(weighting.log_variance_heads[name].weight)
        with torch.no_grad():
            weighting.log_variance_heads[name].bias.copy_(torch.tensor(values))
    return weighting


def test_kl_of_a_padded_sequence_uses_the_mean_over_real_steps():
    """Eq. (4) with σ² = 1: KL(N(μ, 1) ‖ N(0, 1)) = μ²/2 per dim (torch.distributions). μ_a is the
    mean of the 2 real steps (1, 3) and (3, 5) = (2, 4), the padded (100, 100) left out: KL 10;
    μ_b = (3, 0): KL 4.5."""
    weighting = _sequence_weighting({"a": [0.0, 0.0], "b": [0.0, 0.0]})
    weighting.eval()
    features = {
        "a": torch.tensor([[[1.0, 3.0], [3.0, 5.0], [100.0, 100.0]]]),
        "b": torch.tensor([[3.0, 0.0]]),
    }
    mask = torch.ones(1, 2, dtype=torch.bool)
    output = FusionOutput(mask=mask, steps={"a": torch.tensor([[True, True, False]])})
    weighting.reweight(features, mask, output)
    normal = torch.distributions.Normal
    expected = [
        torch.distributions.kl_divergence(normal(mu, 1.0), normal(0.0, 1.0)).sum()
        for mu in (torch.tensor([2.0, 4.0]), torch.tensor([3.0, 0.0]))
    ]
    torch.testing.assert_close(output.diagnostics["pe_kl"], torch.stack(expected).reshape(1, 2))
    torch.testing.assert_close(output.diagnostics["pe_kl"], torch.tensor([[10.0, 4.5]]))


def test_log_variance_starts_at_minus_four_and_is_clipped_to_plus_minus_ten():
    weighting = ProbEmbeddingWeighting()
    network = build_network(weighting)
    network.eval()
    output = network(make_batch(n=2))
    torch.testing.assert_close(output.diagnostics["pe_variance"], torch.full((2, 2), torch.e**-4.0))
    _set_log_variance(weighting, {"a": 20.0, "b": -20.0})
    output = network(make_batch(n=2))
    expected = torch.tensor([[torch.e**10.0, torch.e**-10.0]] * 2)
    torch.testing.assert_close(output.diagnostics["pe_variance"], expected)


def test_training_sample_is_mean_plus_sigma_times_noise_per_dim_and_shared_over_steps():
    """Eq. (2) s = μ + σ ⊙ ε with σ_a = (2, 3) per dim (the same for every step of the sequence),
    σ²_b = 6.5 = mean(4, 9): equal uncertainty, so the weights leave the features unscaled. ε is
    torch's N(0, 1) stream under the same seed (a drawn first, then b)."""
    log = torch.log(torch.tensor([4.0, 9.0, 6.5])).tolist()
    weighting = _sequence_weighting({"a": log[:2], "b": [log[2], log[2]]})
    weighting.train()
    features = {"a": torch.arange(12.0).reshape(2, 3, 2), "b": torch.ones(2, 2)}
    mask = torch.ones(2, 2, dtype=torch.bool)
    torch.manual_seed(3)
    sampled = weighting.reweight(features, mask, FusionOutput(mask=mask))
    torch.manual_seed(3)
    noise_a, noise_b = torch.randn(2, 3, 2), torch.randn(2, 2)
    expected_a = features["a"] + torch.tensor([2.0, 3.0]) * noise_a
    torch.testing.assert_close(sampled["a"], expected_a)
    torch.testing.assert_close(sampled["b"], 1.0 + 6.5**0.5 * noise_b)


def test_default_kl_weight_is_one_hundredth_and_a_bad_one_is_named():
    """λ = 0.01 with μ = 0, log σ² = 1 over D = 6: 0.01 · 2 · 3 (e − 2) (as above)."""
    shapes = {"a": (2,), "b": (2,)}
    weighting = ProbEmbeddingWeighting()
    network = build_network(weighting, shapes=shapes)
    _set_log_variance(weighting, {"a": 1.0, "b": 1.0})
    for backbone in network.backbones.values():
        for parameter in backbone.parameters():
            torch.nn.init.zeros_(parameter)
    batch = make_batch(shapes=shapes, n=3)
    output = network(batch)
    term = weighting.loss_terms(output, loss_context(network, batch, torch.zeros(3).long()))
    torch.testing.assert_close(term["pe_kl"], torch.tensor(0.01 * 6 * (torch.e - 2.0)))
    with pytest.raises(
        ValueError, match="The 'kl_weight' parameter of weighting prob_embedding must be"
    ):
        build_network(ProbEmbeddingWeighting(kl_weight=-1.0))
