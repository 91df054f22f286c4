"""Contract checks name the broken promise, and exemptions are keyed one way everywhere."""

import pytest
import torch

from fusekit.plugin import BuildSpec, Fusion, FusionOutput, as_vector, vector_size
from fusekit.testing import ContractError, check_fusion
from fusekit.testing.checks import check_constructible


class RenamedParameter(Fusion):
    """Stores ``width`` as ``self.size``: get_params cannot read it back."""

    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.size = width

    def build(self, spec: BuildSpec) -> int:
        return sum(vector_size(s) for s in spec.feature_shapes.values())

    def forward(self, features, mask: torch.Tensor, output: FusionOutput) -> torch.Tensor:
        return torch.cat([as_vector(h, output.steps.get(m)) for m, h in features.items()], 1)


def test_a_parameter_stored_under_another_name_breaks_a_named_promise():
    with pytest.raises(ContractError, match="parameters stored unchanged.*\\['width'\\]"):
        check_constructible("fusion", RenamedParameter)


def test_check_fusion_takes_exemptions_keyed_like_parametrize_with_checks():
    exempt = {("RenamedParameter", "check_constructible"): "reason"}
    with pytest.raises(ContractError) as raised:
        check_fusion(RenamedParameter, exemptions=exempt)
    assert "parameters stored unchanged" not in str(raised.value)  # that check was skipped
