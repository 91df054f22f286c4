"""Masking is real: for every built-in fusion, a sample's output ignores the values inside its
absent modalities and its padded steps, stays finite (values and gradients) when everything is
absent, and does not depend on the other samples in the batch."""

import pytest
import torch
from catalogue_helpers import BUILTIN_FUSIONS

from fusekit.engine.registry import get_registry
from fusekit.plugin import BuildSpec, FusionOutput

SHAPES = {"vec": (5,), "narrow": (3,), "seq": (6, 4), "img": (2, 3, 3)}
B = 12


def _spec():
    return BuildSpec(
        names=tuple(SHAPES),
        input_shapes=dict(SHAPES),
        feature_shapes=dict(SHAPES),
        n_outputs=3,
        task="classification",
    )


def _inputs(seed):
    generator = torch.Generator().manual_seed(seed)
    features = {m: torch.randn(B, *s, generator=generator) for m, s in SHAPES.items()}
    mask = torch.rand(B, len(SHAPES), generator=generator) > 0.4
    mask[0] = False  # nothing present
    mask[1] = True  # everything present
    mask[2] = torch.tensor([True, False, False, False])  # only one
    steps = torch.ones(B, SHAPES["seq"][0], dtype=torch.bool)
    steps[:, 4:] = False  # trailing padding
    steps[3, 1] = False  # a hole
    return features, mask, {"seq": steps}


def _garbage(features, mask, steps, seed):
    """Same features except absent rows and padded steps, which get large random values."""
    generator = torch.Generator().manual_seed(seed)
    changed = {}
    for position, (m, h) in enumerate(features.items()):
        noise = 100 * torch.randn(h.shape, generator=generator)
        absent = ~mask[:, position]
        h = torch.where(absent.reshape(-1, *([1] * (h.dim() - 1))), noise, h)
        if m in steps:
            h = torch.where(~steps[m].unsqueeze(-1), noise, h)
        changed[m] = h
    return changed


def _fusion(name, seed=0):
    torch.manual_seed(seed)
    fusion = get_registry().get("fusion", name)()
    fusion.build(_spec())
    return fusion


def _run(fusion, features, mask, steps, seed=0):
    torch.manual_seed(seed)  # same stochastic draws (e.g. EmbraceNet) in both runs
    return fusion(features, mask, FusionOutput(mask=mask, steps=steps))


@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("fusion_name", BUILTIN_FUSIONS)
def test_output_ignores_values_of_absent_modalities_and_padded_steps(fusion_name, training):
    fusion = _fusion(fusion_name).train(training)
    features, mask, steps = _inputs(seed=1)
    clean = {
        m: h * mask[:, i].reshape(-1, *([1] * (h.dim() - 1)))
        for i, (m, h) in enumerate(features.items())
    }  # what the network hands over: absent rows zeroed
    reference = _run(fusion, clean, mask, steps)
    for seed in (2, 3):
        changed = _run(fusion, _garbage(features, mask, steps, seed), mask, steps)
        torch.testing.assert_close(changed, reference, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fusion_name", BUILTIN_FUSIONS)
def test_all_absent_gives_finite_values_and_gradients(fusion_name):
    fusion = _fusion(fusion_name).train()
    features, _, steps = _inputs(seed=4)
    features = {m: torch.zeros_like(h, requires_grad=True) for m, h in features.items()}
    mask = torch.zeros(B, len(SHAPES), dtype=torch.bool)
    out = _run(fusion, features, mask, steps)
    assert torch.isfinite(out).all()
    out.square().sum().backward()
    for name, parameter in fusion.named_parameters():
        assert parameter.grad is None or torch.isfinite(parameter.grad).all(), name


@pytest.mark.parametrize("fusion_name", BUILTIN_FUSIONS)
def test_a_sample_does_not_depend_on_the_rest_of_the_batch(fusion_name):
    fusion = _fusion(fusion_name).eval()
    features, mask, steps = _inputs(seed=5)
    full = _run(fusion, features, mask, steps)
    rows = slice(1, 4)
    part = _run(
        fusion,
        {m: h[rows] for m, h in features.items()},
        mask[rows],
        {m: s[rows] for m, s in steps.items()},
    )
    torch.testing.assert_close(part, full[rows], rtol=1e-5, atol=1e-5)
