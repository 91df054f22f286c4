"""prob_embedding: Gaussian embeddings, inverse-variance weights, KL to N(0, I)."""

import torch
from weightings_helpers import build_network, loss_context, make_batch

from fusekit.builtin.prob_embedding_weighting import ProbEmbeddingWeighting


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
