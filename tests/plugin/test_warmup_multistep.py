"""``WarmupMultiStep`` against hand-worked values, torch's own SequentialLR(LinearLR, MultiStepLR)
and the per-epoch lr of MWAM's official demo schedule (MMANet's GradualWarmupScheduler +
MultiStepLR, 100 epochs: lr 0 at epoch 0, peak from epoch 6, x0.1 from epochs 22, 39, 56)."""

import pickle

import pytest
import torch
from sklearn.base import clone

from fusekit import FusionClassifier
from fusekit.plugin import WarmupMultiStep


def test_defaults_by_hand():
    """Peak 1e-3, warm-up from 0 over 5 % of training, x0.1 at 22 %, 39 %, 56 %:
    p = 0 -> 0; p = 0.025 (half of warm-up) -> 5e-4; p = 0.05 -> 1e-3; p = 0.2199 -> 1e-3;
    p = 0.22 -> 1e-4; p = 0.39 -> 1e-5; p = 0.56 -> 1e-6; p = 1 -> 1e-6."""
    schedule = WarmupMultiStep()
    peak = 1e-3
    expected = {
        0.0: 0.0,
        0.025: 5e-4,
        0.05: 1e-3,
        0.2199: 1e-3,
        0.22: 1e-4,
        0.3: 1e-4,
        0.39: 1e-5,
        0.56: 1e-6,
        1.0: 1e-6,
    }
    for progress, lr in expected.items():
        assert peak * schedule(progress) == pytest.approx(lr, rel=1e-9, abs=1e-15), progress


def test_official_demo_epochs():
    """The first batch of epoch e of 100 (p = e / 100) against the lr that the demo's
    scheduler sets for that epoch (peak 1): epochs 6..21 -> 1, 22..38 -> 0.1, 39..55 -> 0.01,
    56..99 -> 0.001."""
    schedule = WarmupMultiStep()
    for epoch, factor in {6: 1.0, 21: 1.0, 22: 0.1, 38: 0.1, 39: 0.01, 55: 0.01, 56: 1e-3}.items():
        assert schedule(epoch / 100) == pytest.approx(factor, rel=1e-9), epoch


def test_custom_parameters_by_hand():
    """s = 0.5, w = 0.2, x0.5 at 50 % and 75 %: p = 0.1 -> 0.75; p = 0.5 -> 0.5; p = 0.8 ->
    0.25; no warm-up, no milestones -> constant 1."""
    schedule = WarmupMultiStep(warmup=0.2, start_factor=0.5, milestones=[0.5, 0.75], gamma=0.5)
    assert schedule(0.1) == pytest.approx(0.75)
    assert schedule(0.2) == pytest.approx(1.0)
    assert schedule(0.5) == pytest.approx(0.5)
    assert schedule(0.8) == pytest.approx(0.25)
    assert schedule.milestones == (0.5, 0.75)
    flat = WarmupMultiStep(warmup=0.0, milestones=())
    assert [flat(p) for p in (0.0, 0.5, 1.0)] == [1.0, 1.0, 1.0]


@pytest.mark.parametrize(
    "total, warmup_steps, milestones, start, gamma",
    [(100, 5, (22, 39, 56), 0.01, 0.1), (40, 8, (20, 30), 0.25, 0.5), (30, 6, (6, 29), 0.5, 0.3)],
)
def test_matches_torch_sequential_linear_then_multistep(
    total, warmup_steps, milestones, start, gamma
):
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=1e-3)
    reference = torch.optim.lr_scheduler.SequentialLR(
        optimizer,
        [
            torch.optim.lr_scheduler.LinearLR(
                optimizer, start_factor=start, end_factor=1.0, total_iters=warmup_steps
            ),
            torch.optim.lr_scheduler.MultiStepLR(
                optimizer, milestones=[m - warmup_steps for m in milestones], gamma=gamma
            ),
        ],
        milestones=[warmup_steps],
    )
    schedule = WarmupMultiStep(
        warmup=warmup_steps / total,
        start_factor=start,
        milestones=tuple(m / total for m in milestones),
        gamma=gamma,
    )
    for step in range(total):
        assert optimizer.param_groups[0]["lr"] == pytest.approx(
            1e-3 * schedule(step / total), rel=1e-6, abs=1e-15
        ), step
        optimizer.step()
        reference.step()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"warmup": 1.0}, "warmup must be in"),
        ({"start_factor": -0.1}, "start_factor must be"),
        ({"gamma": 0.0}, "gamma must be > 0"),
        ({"milestones": (0.5, 0.3)}, "strictly increasing"),
        ({"milestones": (0.02, 0.5)}, r"in \[warmup=0.05, 1\]"),
        ({"milestones": (0.5, 1.5)}, "milestones must be"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        WarmupMultiStep(**kwargs)


def test_progress_is_clipped_to_the_unit_interval():
    schedule = WarmupMultiStep()
    assert schedule(-1.0) == schedule(0.0) == 0.0
    assert schedule(2.0) == schedule(1.0)


def test_pickles_and_clones_inside_an_estimator():
    schedule = WarmupMultiStep(milestones=[0.5, 0.75])
    assert pickle.loads(pickle.dumps(schedule)) == schedule
    model = FusionClassifier(optimizer="sgd", lr_schedule=schedule)
    assert clone(model).get_params()["lr_schedule"] == schedule
