"""Deliberately broken plugins are caught, each with a message naming the broken promise."""

import pytest
import torch
from torch import nn

from fusekit import Fusion, Weighting
from fusekit.plugin import as_vector, vector_size
from fusekit.testing import ContractError, check_fusion, check_weighting
from fusekit.testing.checks import (
    check_absent_finite,
    check_absent_invariance,
    check_constructible,
    check_deterministic,
    check_gradients_reach_encoders,
    check_output_shapes,
    check_trains_in_chunks,
)


class _Projected(Fusion):
    """Mean of per-modality projections (a correct base for the defects below)."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.width = width

    def build(self, spec):
        self.projections = nn.ModuleDict(
            {m: nn.Linear(vector_size(s), self.width) for m, s in spec.feature_shapes.items()}
        )
        return self.width

    def project(self, features, steps=None):
        steps = steps or {}
        return torch.stack(
            [self.projections[m](as_vector(h, steps.get(m))) for m, h in features.items()], 1
        )


class IgnoresMask(_Projected):
    """Averages every modality, absent or not."""

    def forward(self, features, mask, output):
        return self.project(features).mean(dim=1)


class WrongWidth(_Projected):
    """Promises one more column than it returns."""

    def build(self, spec):
        return super().build(spec) + 1

    def forward(self, features, mask, output):
        weights = mask.unsqueeze(-1).float()
        return (self.project(features) * weights).sum(1) / weights.sum(1).clamp(min=1)


class NaNOnAbsent(_Projected):
    """Divides by the number of present modalities without guarding zero."""

    def forward(self, features, mask, output):
        weights = mask.unsqueeze(-1).float()
        return (self.project(features) * weights).sum(1) / weights.sum(1)


class StoresConverted(_Projected):
    """Converts a parameter in __init__ (breaks clone/get_params)."""

    def __init__(self, width: int = 8) -> None:
        super().__init__(width=width)
        self.width = str(width)


class DetachesEncoders(_Projected):
    def forward(self, features, mask, output):
        weights = mask.unsqueeze(-1).float()
        projected = self.project({m: h.detach() for m, h in features.items()})
        return (projected * weights).sum(1) / weights.sum(1).clamp(min=1)


class UnseededNoise(Weighting):
    """Adds noise from an unseeded private generator."""

    def __init__(self) -> None:
        super().__init__()

    def perturb(self, batch):
        generator = torch.Generator()
        generator.seed()
        features = {
            m: v + torch.randn(v.shape, generator=generator) for m, v in batch.features.items()
        }
        return type(batch)(features, batch.mask, batch.index, batch.steps, batch.extras)


@pytest.mark.parametrize(
    "defect, check, promise",
    [
        (IgnoresMask, check_absent_invariance, "absent values are ignored"),
        (WrongWidth, check_output_shapes, "output shapes"),
        (NaNOnAbsent, check_absent_finite, "finite with absent modalities"),
        (StoresConverted, check_constructible, "parameters stored unchanged"),
        (DetachesEncoders, check_gradients_reach_encoders, "gradients reach every encoder"),
    ],
)
def test_broken_fusion_is_caught_with_the_promise_named(defect, check, promise):
    with pytest.raises(ContractError, match=f"fusion {defect.__name__}: promise '{promise}'"):
        check("fusion", defect, None)


@pytest.mark.parametrize("defect", [IgnoresMask, WrongWidth, NaNOnAbsent])
def test_check_fusion_runs_everything_and_fails(defect):
    with pytest.raises(ContractError, match="Fix: "):
        check_fusion(defect)


def test_unseeded_randomness_is_caught():
    with pytest.raises(ContractError, match="deterministic under a seed"):
        check_deterministic("weighting", UnseededNoise, None)


class Correct(_Projected):
    """Mean over present modalities, guarded."""

    def forward(self, features, mask, output):
        weights = mask.unsqueeze(-1).float()
        projected = self.project(features, output.steps)  # pooled over real steps
        return (projected * weights).sum(1) / weights.sum(1).clamp(min=1)


def test_a_correct_plugin_passes_everything():
    check_fusion(Correct)
    check_weighting("modality_dropout")


class PerRowHistory(Weighting):
    """Keeps a loss history per training row, sized at ``on_train_begin`` (QMF's pattern)."""

    def __init__(self) -> None:
        super().__init__()

    def build(self, spec):
        self.register_buffer("history", torch.zeros(0))

    def on_train_begin(self, ctx):
        self.history = torch.zeros(len(ctx.data))

    def loss_terms(self, output, ctx):
        if ctx.training and ctx.batch.index is not None:
            self.history[ctx.batch.index] += 1.0  # rows of a larger later chunk: out of range
        return {}


class DeclaresPerRowHistory(PerRowHistory):
    needs_all_training_rows = True


def test_undeclared_per_row_state_is_caught_by_the_chunked_training_check():
    with pytest.raises(ContractError, match="promise 'trains one chunk per partial_fit call'"):
        check_trains_in_chunks("weighting", PerRowHistory, None)
    check_trains_in_chunks("weighting", DeclaresPerRowHistory, None)  # refused by name: passes
