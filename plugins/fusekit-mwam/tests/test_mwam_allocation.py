"""Weight function and FRM bank, from the official code (github.com/a6103121/MWAM).

    bank_m ← (1 − a) · FRM_m first (soft begin), then a · bank_m + (1 − a) · FRM_m    (a = 0.5)
    r_m = FRM_m / (mean over present m' of bank_m' + ε);  w_m = α − β · sigmoid(s · (r_m − γ))
with α = 1.5, β = 1, γ = 1, s = 10, so w ∈ (0.5, 1.5). Expected numbers are worked in comments.
"""

import math

import numpy as np
import pytest
import torch
from fusekit_mwam import allocation_weight, update_and_allocate


def run_steps(frms, steps, **kwargs):
    """Weights after each of ``steps`` updates with the constant FRM vector ``frms``."""
    bank = torch.zeros(len(frms), dtype=torch.float64)
    started = torch.zeros(len(frms), dtype=torch.bool)
    frm = torch.tensor(frms, dtype=torch.float64)
    return [update_and_allocate(frm, bank, started, **kwargs).tolist() for _ in range(steps)]


def test_weight_function_values():
    # w(r) = 1.5 − sigmoid(10 (r − 1)): sigmoid(1) = 0.73106 -> 0.76894; sigmoid(−1) = 0.26894
    # -> 1.23106; sigmoid(5) = 0.99331 -> 0.50669; sigmoid(−10) = 4.54e-5 -> 1.49995
    assert allocation_weight(1.0) == 1.0
    for ratio, expected in [(1.1, 0.76894), (0.9, 1.23106), (1.5, 0.50669), (0.0, 1.49995)]:
        assert allocation_weight(ratio) == pytest.approx(expected, abs=1e-5)


def test_weight_function_is_bounded_and_strictly_decreasing():
    ratios = torch.linspace(0, 3, 301, dtype=torch.float64)
    weights = allocation_weight(ratios)
    assert ((weights > 0.5) & (weights < 1.5)).all()
    assert (weights.diff() < 0).all()


def test_bank_warm_up_trajectory():
    trajectory = run_steps([3.0, 3.0, 3.0], steps=20)
    # bank 1.5, 2.25, 2.625, 2.8125, ... (soft begin, then EMA towards 3); r = 3 / bank = 2,
    # 1.3333, 1.1429, 1.0667, 1.0323 -> w = 1.5 − sigmoid(10 (r − 1)) as listed
    first = [step[0] for step in trajectory]
    np.testing.assert_allclose(first[:5], [0.50005, 0.53445, 0.69332, 0.83924, 0.92005], atol=1e-5)
    assert all(abs(w - 1) < 1e-3 for w in first[11:])  # from step 12 on
    assert all(len(set(step)) == 1 for step in trajectory)  # all modalities always equal


def test_steady_state_for_unequal_frms():
    final = run_steps([10.0, 5.0, 2.5], steps=60)[-1]
    mean = (10 + 5 + 2.5) / 3
    ratios = [10 / mean, 5 / mean, 2.5 / mean]
    np.testing.assert_allclose(ratios, [1.71429, 0.85714, 0.42857], atol=1e-5)
    # banks converge to the FRMs: w = 1.5 − sigmoid(10 (r − 1)) = 1.5 − 0.99921, 1.5 − 0.19332,
    # 1.5 − 0.00329
    np.testing.assert_allclose(final, [0.50079, 1.30668, 1.49671], atol=1e-5)
    assert np.argmin(final) == 0


def test_modality_absent_from_batch_keeps_weight_one_and_bank():
    bank = torch.zeros(3, dtype=torch.float64)
    started = torch.zeros(3, dtype=torch.bool)
    update_and_allocate(torch.tensor([4.0, 2.0, 1.0], dtype=torch.float64), bank, started)
    before = bank.clone()
    weights = update_and_allocate(
        torch.tensor([4.0, float("nan"), 1.0], dtype=torch.float64), bank, started
    )
    assert weights[1] == 1.0
    assert bank[1] == before[1]
    mean = bank[[0, 2]].mean()  # μ over the present modalities only
    expected = allocation_weight(4.0 / (mean.item() + 1e-6))
    assert weights[0].item() == pytest.approx(expected)


def test_zero_bank_gives_all_weights_one():
    assert run_steps([0.0, 5.0], steps=3)[-1] == [1.0, 1.0]


def test_without_soft_begin_first_weights_are_one_for_equal_frms():
    first = run_steps([2.0, 2.0], steps=1, soft_begin=False)[0]
    assert first == pytest.approx([1.0, 1.0], abs=1e-4)


def test_nothing_present_changes_nothing():
    bank = torch.tensor([1.0, 2.0], dtype=torch.float64)
    started = torch.ones(2, dtype=torch.bool)
    nan = torch.full((2,), math.nan, dtype=torch.float64)
    assert update_and_allocate(nan, bank, started).tolist() == [1.0, 1.0]
    assert bank.tolist() == [1.0, 2.0]


def test_eps_and_sharpness_enter_the_ratio_and_the_sigmoid():
    # FRM (3, 1), no soft begin: banks (3, 1), μ = 2; eps = 0.5: r = (3, 1) / 2.5 = (1.2, 0.4);
    # s = 2: w = 1.5 − 1 / (1 + exp(−2 (r − 1)))
    frm = torch.tensor([3.0, 1.0], dtype=torch.float64)
    bank = torch.zeros(2, dtype=torch.float64)
    started = torch.zeros(2, dtype=torch.bool)
    weights = update_and_allocate(frm, bank, started, soft_begin=False, eps=0.5, sharpness=2.0)
    expected = [1.5 - 1.0 / (1.0 + math.exp(-2.0 * (r - 1.0))) for r in (1.2, 0.4)]
    np.testing.assert_allclose(weights.tolist(), expected, rtol=1e-12)
