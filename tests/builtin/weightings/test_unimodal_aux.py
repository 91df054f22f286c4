"""unimodal_aux: λ · Σ_m mean CE of modality m's head over the rows where m is present."""

import pytest
import torch
from torch.nn import functional as F
from weightings_helpers import build_network, loss_context, make_batch

from fusekit.builtin.unimodal_aux_weighting import UnimodalAuxWeighting


def test_loss_term_is_weighted_sum_of_present_unimodal_losses():
    weighting = UnimodalAuxWeighting(weight=0.5)
    network = build_network(weighting)
    mask = torch.tensor([[True, True], [True, False], [False, True], [True, True]])
    batch = make_batch(n=4, mask=mask)
    target = torch.tensor([0, 1, 2, 1])
    output = network(batch)
    term = weighting.loss_terms(output, loss_context(network, batch, target))["unimodal"]
    expected = 0
    for position, name in enumerate(network.names):
        rows = mask[:, position]
        expected += F.cross_entropy(output.unimodal_logits[name][rows], target[rows])
    torch.testing.assert_close(term, 0.5 * expected)


def test_absent_rows_do_not_change_the_loss():
    weighting = UnimodalAuxWeighting()
    network = build_network(weighting)
    mask = torch.tensor([[True, True], [True, False], [False, True]])
    batch = make_batch(n=3, mask=mask)
    target = torch.tensor([0, 1, 2])
    output = network(batch)
    before = weighting.loss_terms(output, loss_context(network, batch, target))["unimodal"]
    output.unimodal_logits["b"] = output.unimodal_logits["b"].clone()
    output.unimodal_logits["b"][1] = 100.0  # row 1 has b absent
    after = weighting.loss_terms(output, loss_context(network, batch, target))["unimodal"]
    torch.testing.assert_close(before, after)


def test_default_weight_is_one():
    weighting = UnimodalAuxWeighting()
    network = build_network(weighting)
    batch = make_batch(n=3)
    target = torch.tensor([0, 1, 2])
    output = network(batch)
    terms = weighting.loss_terms(output, loss_context(network, batch, target))
    expected = sum(F.cross_entropy(output.unimodal_logits[m], target) for m in "ab")
    torch.testing.assert_close(sum(terms.values()), expected)


def test_bad_weight_and_missing_heads_name_the_weighting():
    with pytest.raises(
        ValueError,
        match=r"The 'weight' parameter of weighting unimodal_aux must be a float in the range "
        r"\[0.0, inf\). Got -1.0",
    ):
        build_network(UnimodalAuxWeighting(weight=-1.0))
    weighting = UnimodalAuxWeighting()
    network = build_network(weighting)
    batch = make_batch(n=2)
    output = network(batch)
    output.unimodal_logits = None
    with pytest.raises(RuntimeError, match="^unimodal_aux needs unimodal logits"):
        weighting.loss_terms(output, loss_context(network, batch, torch.tensor([0, 1])))
