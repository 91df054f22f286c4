"""``fusekit.plugin.masks``: the mask-aware reductions weightings and fusions build their equations
on. Every expected value is written out by hand (or with plain torch ops row by row), never taken
from the helper itself."""

import math

import pytest
import torch

from fusekit.plugin import (
    expand_mask,
    masked_mean,
    present_mean,
    present_softmax,
    scale_features,
    zero_absent,
)

MASK = torch.tensor([[True, False], [False, True], [True, True], [False, False]])  # (B=4, M=2)


def test_expand_mask_broadcasts_a_column_over_every_trailing_axis_in_the_features_dtype():
    column = torch.tensor([True, False, True])
    for like, shape in [
        (torch.zeros(3, dtype=torch.float64), (3,)),
        (torch.zeros(3, 5, dtype=torch.float64), (3, 1)),
        (torch.zeros(3, 2, 4, dtype=torch.float64), (3, 1, 1)),
        (torch.zeros(3, 2, 4, 5, dtype=torch.float64), (3, 1, 1, 1)),
    ]:
        expanded = expand_mask(column, like)
        assert expanded.shape == shape
        assert expanded.dtype == torch.float64
        assert expanded.flatten().tolist() == [1.0, 0.0, 1.0]


def test_zero_absent_zeroes_only_the_rows_where_each_modality_is_absent():
    a = torch.arange(1.0, 9.0).reshape(4, 2)  # (B, D)
    b = torch.arange(1.0, 25.0).reshape(4, 3, 2)  # (B, T, D)
    out = zero_absent({"a": a, "b": b}, MASK)
    assert list(out) == ["a", "b"]
    expected_a = torch.stack([a[0], torch.zeros(2), a[2], torch.zeros(2)])
    expected_b = torch.stack([torch.zeros(3, 2), b[1], b[2], torch.zeros(3, 2)])
    torch.testing.assert_close(out["a"], expected_a, rtol=0, atol=0)
    torch.testing.assert_close(out["b"], expected_b, rtol=0, atol=0)


def test_masked_mean_averages_present_modalities_and_gives_zero_for_none():
    mask = torch.tensor([[True, False, True], [False, True, False], [True, True, True]])
    mask = torch.cat([mask, torch.zeros(1, 3, dtype=torch.bool)])  # (B=4, M=3), last row: none
    stacked = torch.tensor(
        [
            [[1.0, 2.0], [100.0, 100.0], [3.0, 6.0]],
            [[100.0, 100.0], [5.0, -1.0], [100.0, 100.0]],
            [[1.0, 1.0], [2.0, 4.0], [6.0, 7.0]],
            [[9.0, 9.0], [9.0, 9.0], [9.0, 9.0]],
        ]
    )  # (B, M, D=2)
    expected = torch.tensor([[2.0, 4.0], [5.0, -1.0], [3.0, 4.0], [0.0, 0.0]])
    torch.testing.assert_close(masked_mean(stacked, mask), expected)
    # (B, M) scalars per modality -> (B,)
    torch.testing.assert_close(masked_mean(stacked[..., 0], mask), expected[:, 0])


def test_masked_mean_refuses_a_mask_that_is_not_b_by_m():
    """A ``(M,)`` mask used to give sums instead of means (or a shape error); now it is named."""
    stacked = torch.zeros(3, 3, 3)
    with pytest.raises(ValueError, match=r"\(B, M\) mask .*\(3, 3\).*shape \(3,\)"):
        masked_mean(stacked, torch.tensor([True, False, True]))


def test_present_mean_is_the_mean_over_present_rows_and_zero_without_any():
    values = torch.tensor([2.0, 10.0, 4.0, 7.0])
    torch.testing.assert_close(
        present_mean(values, torch.tensor([True, False, True, False])), torch.tensor(3.0)
    )
    torch.testing.assert_close(
        present_mean(values, torch.tensor([False, True, False, False])), torch.tensor(10.0)
    )
    assert present_mean(values, torch.zeros(4, dtype=torch.bool)).item() == 0.0


def test_present_softmax_is_a_softmax_over_present_modalities_and_zero_elsewhere():
    scores = torch.tensor(
        [[1.0, 2.0, 3.0], [0.5, -1.0, 2.0], [-2.0, 4.0, 1.0], [1.0, 1.0, 1.0]],
        requires_grad=True,
    )
    mask = torch.tensor(
        [[True, True, True], [True, False, True], [False, True, False], [False, False, False]]
    )
    weights = present_softmax(scores, mask)
    e = math.exp
    total0 = e(1.0) + e(2.0) + e(3.0)
    total1 = e(0.5) + e(2.0)
    expected = torch.tensor(
        [
            [e(1.0) / total0, e(2.0) / total0, e(3.0) / total0],
            [e(0.5) / total1, 0.0, e(2.0) / total1],
            [0.0, 1.0, 0.0],
            [0.0, 0.0, 0.0],
        ]
    )
    torch.testing.assert_close(weights, expected)
    weights[:, 0].sum().backward()
    assert torch.isfinite(scores.grad).all()
    assert scores.grad[3].abs().sum().item() == 0.0  # no modality present: no gradient either


def test_present_softmax_ignores_absent_scores_far_above_the_present_ones():
    """An absent modality with a huge score takes no share (filled with the dtype's minimum)."""
    scores = torch.tensor([[1.0e30, 0.0, 1.0]], dtype=torch.float64)
    weights = present_softmax(scores, torch.tensor([[False, True, True]]))
    expected = torch.tensor([[0.0, 1.0 / (1.0 + math.e), math.e / (1.0 + math.e)]])
    torch.testing.assert_close(weights, expected.double())


def test_scale_features_multiplies_each_modality_by_its_weight_times_the_present_count():
    a = torch.arange(1.0, 9.0).reshape(4, 2)  # (B, D)
    b = torch.arange(1.0, 13.0).reshape(4, 3, 1)  # (B, T, 1)
    weights = torch.tensor([[0.25, 0.75], [0.5, 0.5], [1.0, 0.0], [0.3, 0.6]])  # (B, M)
    mask = torch.tensor([[True, True], [True, False], [True, True], [False, False]])
    out = scale_features({"a": a, "b": b}, weights, mask)
    assert list(out) == ["a", "b"]
    counts = [2.0, 1.0, 2.0, 0.0]  # present modalities per row
    for row in range(4):
        torch.testing.assert_close(out["a"][row], counts[row] * weights[row, 0].item() * a[row])
        torch.testing.assert_close(out["b"][row], counts[row] * weights[row, 1].item() * b[row])
    assert out["a"].shape == a.shape and out["b"].shape == b.shape
