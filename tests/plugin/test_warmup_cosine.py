"""``WarmupCosine`` against hand-worked values and torch's own SequentialLR(LinearLR,
CosineAnnealingLR), the paper's schedule as the SCFAE spec writes it (§5)."""

import math

import pytest
import torch

from fusekit.plugin import WarmupCosine


def test_paper_schedule_by_hand():
    """SCFAE paper: 2.5e-5 -> 5e-4 linearly over 20 % of training, then cosine to 0.
    Peak 5e-4: p = 0 -> 2.5e-5; p = 0.1 (half of warm-up) -> (2.5e-5 + 5e-4) / 2 = 2.625e-4;
    p = 0.2 -> 5e-4; p = 0.6 (half of the decay) -> 2.5e-4; p = 0.8 -> 5e-4 (1 + cos(3 pi/4)) / 2
    = 7.32233e-5; p = 1 -> 0."""
    schedule = WarmupCosine()
    peak = 5e-4
    expected = {0.0: 2.5e-5, 0.1: 2.625e-4, 0.2: 5e-4, 0.6: 2.5e-4, 0.8: 7.3223305e-5, 1.0: 0.0}
    for progress, lr in expected.items():
        assert peak * schedule(progress) == pytest.approx(lr, rel=1e-7, abs=1e-12)


def test_final_factor_and_no_warmup():
    schedule = WarmupCosine(warmup=0.0, final_factor=0.1)
    assert schedule(0.0) == pytest.approx(1.0)
    assert schedule(0.5) == pytest.approx(0.1 + 0.9 * 0.5)
    assert schedule(1.0) == pytest.approx(0.1)


@pytest.mark.parametrize("total, warmup_steps", [(50, 10), (20, 4)])
def test_matches_torch_sequential_linear_then_cosine(total, warmup_steps):
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=5e-4)
    reference = torch.optim.lr_scheduler.SequentialLR(
        optimizer,
        [
            torch.optim.lr_scheduler.LinearLR(
                optimizer, start_factor=0.05, end_factor=1.0, total_iters=warmup_steps
            ),
            torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total - warmup_steps),
        ],
        milestones=[warmup_steps],
    )
    schedule = WarmupCosine(warmup=warmup_steps / total, start_factor=0.05)
    for step in range(total):
        assert optimizer.param_groups[0]["lr"] == pytest.approx(
            5e-4 * schedule(step / total), rel=1e-6, abs=1e-12
        ), step
        optimizer.step()
        reference.step()


@pytest.mark.parametrize(
    "kwargs, match",
    [({"warmup": 1.0}, "warmup must be in"), ({"start_factor": -0.1}, "start_factor must be")],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        WarmupCosine(**kwargs)


def test_progress_is_clipped_to_the_unit_interval():
    schedule = WarmupCosine()
    assert schedule(-1.0) == schedule(0.0) and schedule(2.0) == schedule(1.0)
    assert schedule(1.0) == pytest.approx(0.5 * (1 + math.cos(math.pi)))
