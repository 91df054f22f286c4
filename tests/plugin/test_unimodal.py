"""``unimodal_losses``: each modality head's task loss averaged over the rows where the modality
is present (sample-weighted when the fit is), and the missing-heads error. The cross-entropies
are computed by hand from log-softmax in the test."""

import math

import pytest
import torch

from fusekit.plugin import (
    FusionOutput,
    LossContext,
    ModalityBatch,
    TaskCriterion,
    require_unimodal_logits,
    unimodal_losses,
)


class CrossEntropyNetwork:
    names = ("a", "b", "c")
    training = True


def _ce(row: list[float], label: int) -> float:
    """−log softmax(row)[label], by hand."""
    return math.log(sum(math.exp(v) for v in row)) - row[label]


LOGITS = {
    "a": [[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]],
    "b": [[0.0, 3.0], [2.0, -1.0], [0.5, 0.0]],
    "c": [[1.0, 0.0], [0.0, 0.0], [-1.0, 2.0]],
}
TARGET = [0, 1, 1]
MASK = torch.tensor([[True, False, True], [True, True, False], [False, True, True]])


def _output_and_ctx(sample_weight=None):
    output = FusionOutput(
        mask=MASK, unimodal_logits={m: torch.tensor(v) for m, v in LOGITS.items()}
    )
    batch = ModalityBatch(
        features={m: torch.zeros(3, 1) for m in LOGITS}, mask=MASK, sample_weight=sample_weight
    )
    ctx = LossContext(
        network=CrossEntropyNetwork(),
        batch=batch,
        target=torch.tensor(TARGET),
        training=True,
        criterion=TaskCriterion("classification"),
    )
    return output, ctx


def _expected(weights: list[float]) -> list[float]:
    losses = []
    for position, m in enumerate(LOGITS):
        rows = [i for i in range(3) if MASK[i, position]]
        total = sum(weights[i] * _ce(LOGITS[m][i], TARGET[i]) for i in rows)
        losses.append(total / sum(weights[i] for i in rows))
    return losses


def test_each_heads_loss_is_its_mean_cross_entropy_over_the_rows_where_it_is_present():
    output, ctx = _output_and_ctx()
    losses = unimodal_losses(output, ctx, "test weighting")
    assert losses.shape == (3,)
    torch.testing.assert_close(losses, torch.tensor(_expected([1.0, 1.0, 1.0])))


def test_heads_losses_are_sample_weighted_when_the_fit_is():
    weights = [1.0, 3.0, 0.5]
    output, ctx = _output_and_ctx(sample_weight=torch.tensor(weights))
    losses = unimodal_losses(output, ctx, "test weighting")
    torch.testing.assert_close(losses, torch.tensor(_expected(weights)))


def test_missing_unimodal_heads_are_a_clear_error_naming_the_component():
    output, ctx = _output_and_ctx()
    assert require_unimodal_logits(output, "x") is output.unimodal_logits
    output.unimodal_logits = None
    message = (
        r"^my weighting needs unimodal logits, but the network built no unimodal heads\. "
        r"Set needs_unimodal_heads = True on the component\.$"
    )
    with pytest.raises(RuntimeError, match=message):
        unimodal_losses(output, ctx, "my weighting")
