"""prob_embedding: Gaussian embeddings, inverse-variance weights, KL to N(0, I)."""

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
