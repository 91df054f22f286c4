"""split_concat_head: z_m = v_m W_mᵀ + b / M (+ the indicator column), Σ_m z_m = the head."""

import numpy as np
import pytest
import torch

from fusekit.plugin import split_concat_head


def test_blocks_by_hand_and_their_sum_is_the_head():
    """Widths (2, 1), K = 2: z_a = [1, 2]·W[:, :2]ᵀ + b/2, z_b = 3·W[:, 2] + b/2."""
    weight = torch.tensor([[1.0, 0.0, 2.0], [0.0, -1.0, 1.0]])
    bias = torch.tensor([2.0, -4.0])
    fused = torch.tensor([[1.0, 2.0, 3.0]])
    z = split_concat_head(fused, weight, bias, [2, 1])
    torch.testing.assert_close(z[0, 0], torch.tensor([1.0 + 1.0, -2.0 - 2.0]))
    torch.testing.assert_close(z[0, 1], torch.tensor([6.0 + 1.0, 3.0 - 2.0]))
    torch.testing.assert_close(z.sum(dim=1), fused @ weight.T + bias)


def test_indicator_columns_belong_to_their_modality():
    rng = np.random.default_rng(0)
    weight = torch.tensor(rng.normal(size=(3, 5)), dtype=torch.float32)  # widths 2, 1 + 2 flags
    bias = torch.tensor(rng.normal(size=3), dtype=torch.float32)
    fused = torch.tensor([[0.5, -1.0, 2.0, 1.0, 0.0]])  # b absent: its flag is 0
    z = split_concat_head(fused, weight, bias, [2, 1], indicators=True)
    expected_a = fused[:, :2] @ weight[:, :2].T + weight[:, 3] + bias / 2
    torch.testing.assert_close(z[:, 0], expected_a)
    torch.testing.assert_close(z.sum(dim=1), fused @ weight.T + bias)


def test_a_mismatched_layout_is_refused_with_the_widths():
    with pytest.raises(ValueError, match=r"expected 3 \(widths \[2, 1\]"):
        split_concat_head(torch.zeros(1, 4), torch.zeros(2, 4), torch.zeros(2), [2, 1])
