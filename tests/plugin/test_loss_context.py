"""``LossContext``'s task-loss helpers and sample weighting, ``TrainingContext``'s loop guard.

The criterion is a stand-in whose per-sample loss is the squared error (so every expected value is
worked by hand); it counts its calls to show the unweighted mean is one fused call. The network
hands the criterion over; the context never calls back into the network for a loss.
"""

import pytest
import torch

from fusekit.plugin import LossContext, ModalityBatch, NetworkView, TrainingContext


class SquaredErrorNetwork:
    """Names only: a loss asked of the network itself is an error."""

    names = ("a", "b")
    training = True


class SquaredError:
    """Per-sample loss (logit − target)², mean loss its mean; counts the calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def per_sample(self, logits, target):
        self.calls.append("per_sample")
        return (logits.reshape(-1) - target) ** 2

    def mean(self, logits, target):
        self.calls.append("mean")
        return ((logits.reshape(-1) - target) ** 2).mean()


LOGITS = torch.tensor([[1.0], [2.0], [4.0], [0.0]])
TARGET = torch.tensor([0.0, 0.0, 1.0, 2.0])  # squared errors 1, 4, 9, 4
OTHER = torch.tensor([1.0, 1.0, 1.0, 1.0])  # squared errors 0, 1, 9, 1


def _ctx(sample_weight=None, network=None, criterion=None):
    network = SquaredErrorNetwork() if network is None else network
    batch = ModalityBatch(
        features={"a": torch.zeros(4, 1), "b": torch.zeros(4, 1)},
        mask=torch.ones(4, 2, dtype=torch.bool),
        sample_weight=sample_weight,
    )
    criterion = SquaredError() if criterion is None else criterion
    return LossContext(
        network=network, batch=batch, target=TARGET, training=True, criterion=criterion
    )


def test_a_network_is_wrapped_in_a_view_once_and_names_come_from_it():
    network = SquaredErrorNetwork()
    ctx = _ctx(network=network)
    assert isinstance(ctx.network, NetworkView)
    assert ctx.names == ("a", "b")
    view = NetworkView(network)
    assert _ctx(network=view).network is view
    training = TrainingContext(network=network, loop=None, data=None, epoch=0)
    assert isinstance(training.network, NetworkView)
    assert TrainingContext(network=view, loop=None, data=None, epoch=0).network is view


def test_per_sample_loss_uses_the_batch_target_unless_given_one():
    ctx = _ctx()
    assert ctx.per_sample_loss(LOGITS).tolist() == [1.0, 4.0, 9.0, 4.0]
    assert ctx.per_sample_loss(LOGITS, OTHER).tolist() == [0.0, 1.0, 9.0, 1.0]


def test_unweighted_mean_loss_is_one_fused_call_on_the_right_target():
    criterion = SquaredError()
    ctx = _ctx(criterion=criterion)
    assert ctx.mean_loss(LOGITS).item() == 18.0 / 4
    assert ctx.mean_loss(LOGITS, OTHER).item() == 11.0 / 4
    assert criterion.calls == ["mean", "mean"]


def test_the_sample_weights_are_the_batchs():
    weights = torch.tensor([1.0, 0.0, 2.0, 1.0])
    ctx = _ctx(sample_weight=weights)
    assert ctx.sample_weight is ctx.batch.sample_weight is weights
    assert LossContext(SquaredErrorNetwork(), None, TARGET, True).sample_weight is None


def test_a_network_built_context_uses_the_networks_criterion_and_a_hand_built_one_takes_it():
    from fusekit.testing.fixtures import build_network, make_batch

    network = build_network()
    batch = make_batch()
    target = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    ctx = LossContext(network, batch, target, True)
    assert ctx.criterion is None
    logits = network(batch).logits
    by_hand = -torch.log_softmax(logits, dim=1)[torch.arange(8), target]
    torch.testing.assert_close(ctx.per_sample_loss(logits), by_hand)
    assert ctx.criterion is network.criterion


def test_weighted_mean_loss_is_the_sample_weighted_mean_on_the_right_target():
    weights = torch.tensor([1.0, 0.0, 2.0, 1.0])
    ctx = _ctx(sample_weight=weights)
    assert ctx.mean_loss(LOGITS).item() == pytest.approx((1.0 + 18.0 + 4.0) / 4.0)
    assert ctx.mean_loss(LOGITS, OTHER).item() == pytest.approx((0.0 + 18.0 + 1.0) / 4.0)


def test_weighted_mean_unweighted_is_the_plain_mean_or_the_mean_over_where():
    ctx = _ctx()
    values = torch.tensor([1.0, 4.0, 9.0, 2.0])
    assert ctx.weighted_mean(values).item() == 4.0
    assert ctx.weighted_mean(values, torch.tensor([False, True, True, False])).item() == 6.5
    assert ctx.weighted_mean(values, torch.zeros(4, dtype=torch.bool)).item() == 0.0


def test_weighted_mean_weighs_rows_restricts_to_where_and_is_zero_when_no_row_counts():
    values = torch.tensor([1.0, 4.0, 9.0, 2.0])
    ctx = _ctx(sample_weight=torch.tensor([2.0, 1.0, 0.0, 1.0]))
    assert ctx.weighted_mean(values).item() == pytest.approx((2.0 + 4.0 + 2.0) / 4.0)
    where = torch.tensor([True, False, True, True])
    assert ctx.weighted_mean(values, where).item() == pytest.approx((2.0 + 2.0) / 3.0)
    assert ctx.weighted_mean(values, torch.tensor([False, False, True, False])).item() == 0.0
    # weights below one in total are still divided by their sum (not by one)
    small = _ctx(sample_weight=torch.tensor([0.25, 0.25, 0.0, 0.0]))
    assert small.weighted_mean(values).item() == pytest.approx((0.25 + 1.0) / 0.5)
    assert _ctx(sample_weight=torch.zeros(4)).weighted_mean(values).item() == 0.0


def test_two_equal_rows_of_weight_one_count_like_one_row_of_weight_two():
    twice = _ctx(sample_weight=torch.tensor([1.0, 1.0, 1.0, 0.0]))
    once = _ctx(sample_weight=torch.tensor([2.0, 0.0, 1.0, 0.0]))
    values_twice = torch.tensor([3.0, 3.0, 6.0, 100.0])
    values_once = torch.tensor([3.0, 50.0, 6.0, 100.0])
    assert twice.weighted_mean(values_twice).item() == pytest.approx(4.0)
    assert once.weighted_mean(values_once).item() == pytest.approx(4.0)


def test_float32_weights_are_summed_in_the_float64_of_the_values():
    """In float32, 1 + 1e-8 rounds to 1; summed in the values' float64 the mean of equal values
    is exactly that value."""
    ctx = _ctx(sample_weight=torch.tensor([1.0, 1e-8, 0.0, 0.0], dtype=torch.float32))
    values = torch.tensor([1.0, 1.0, 5.0, 5.0], dtype=torch.float64)
    result = ctx.weighted_mean(values)
    assert result.dtype == torch.float64
    assert result.item() == 1.0


def test_training_context_without_a_loop_names_the_fact_it_needed():
    ctx = TrainingContext(network=SquaredErrorNetwork(), loop=None, data=None, epoch=0)
    with pytest.raises(RuntimeError, match=r"TrainingContext\.max_epochs needs the training loop"):
        ctx.max_epochs  # noqa: B018
    with pytest.raises(RuntimeError, match=r"TrainingContext\.batch_size needs the training loop"):
        ctx.batch_size  # noqa: B018


def test_training_context_reads_max_epochs_and_batch_size_from_the_loop():
    class Loop:
        max_epochs = 7
        batch_size = 32

    ctx = TrainingContext(network=SquaredErrorNetwork(), loop=Loop(), data=None, epoch=2)
    assert (ctx.max_epochs, ctx.batch_size) == (7, 32)
