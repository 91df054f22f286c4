"""The meta-device contract check: every first-party component runs a training batch with the
network on torch's ``meta`` device, and deliberately wrong components are caught by name."""

import pytest
import torch
from first_party import NEEDS_A_USER_MODEL, first_party_entries

from fusekit import Weighting
from fusekit.engine.registry import get_registry
from fusekit.plugin import COMPONENT_KINDS, KINDS, expand_mask
from fusekit.testing import ContractError, checks_for
from fusekit.testing.checks import check_runs_on_meta_device
from fusekit.testing.meta_device import MetaUnsupported

_COMPONENTS = [
    pytest.param(entry.kind, entry.name, id=f"{entry.kind}-{entry.name}")
    for entry in first_party_entries(get_registry())
    if entry.kind in COMPONENT_KINDS and (entry.kind, entry.name) not in NEEDS_A_USER_MODEL
]


@pytest.mark.parametrize(("kind", "name"), _COMPONENTS)
def test_every_first_party_component_runs_a_batch_on_the_meta_device(kind, name):
    check_runs_on_meta_device(kind, name)


def test_every_kind_has_a_component_under_test_and_runs_the_check():
    assert {kind for kind, _ in (p.values for p in _COMPONENTS)} == set(COMPONENT_KINDS)
    for kind in KINDS:
        if kind in COMPONENT_KINDS:
            assert check_runs_on_meta_device in checks_for(kind)


class ZerosOnTheCpu(Weighting):
    """Adds a loss term made with ``torch.zeros(n)``: on the CPU whatever the network's device."""

    def loss_terms(self, output, ctx):
        return {"zero": (output.logits.sum(dim=1) * torch.zeros(len(output.logits))).sum()}


class PlainTensorState(Weighting):
    """Keeps a per-modality scale as a plain attribute: ``module.to()`` does not move it."""

    def build(self, spec):
        self.scale = torch.ones(len(spec.names))

    def reweight(self, features, mask, output):
        weights = mask.to(torch.float32) * self.scale  # (B, M) * (M,): a CPU (M,) tensor
        return {m: h * expand_mask(weights[:, i], h) for i, (m, h) in enumerate(features.items())}


class BranchesOnTheHost(Weighting):
    """``if mask.any():`` every batch: a host read of the device."""

    def reweight(self, features, mask, output):
        if not mask.all():
            return {m: h * 1.0 for m, h in features.items()}
        return features


class DeclaredHostValues(BranchesOnTheHost):
    needs_host_values = "a test: the branch is the method"


class UsesMaskedSelect(Weighting):
    """An op torch's meta device has no kernel for."""

    def loss_terms(self, output, ctx):
        return {"selected": output.logits.masked_select(output.logits > 0).sum() * 0.0}


def test_a_tensor_created_on_the_cpu_is_caught_with_its_line():
    with pytest.raises(ContractError, match="tensors on the network's device") as caught:
        check_runs_on_meta_device("weighting", ZerosOnTheCpu)
    assert "test_meta_device.py" in str(caught.value) and "in loss_terms" in str(caught.value)
    assert "device=x.device" in str(caught.value)


def test_tensor_state_that_does_not_follow_module_to_is_caught():
    with pytest.raises(ContractError, match=r"tensors on the network's device.*register_buffer"):
        check_runs_on_meta_device("weighting", PlainTensorState)


def test_a_host_branch_on_the_training_path_is_caught():
    with pytest.raises(ContractError, match=r"no host sync on the training path.*in reweight"):
        check_runs_on_meta_device("weighting", BranchesOnTheHost)


def test_a_declared_host_value_passes():
    check_runs_on_meta_device("weighting", DeclaredHostValues)


def test_an_op_meta_cannot_run_is_a_skip_naming_it():
    with pytest.raises(MetaUnsupported, match=r"masked_select.*test_meta_device\.py"):
        check_runs_on_meta_device("weighting", UsesMaskedSelect)
