import pytest
import torch

torch.set_num_threads(1)

REGISTER = """
import fusekit_transformers
from fusekit.engine.registry import get_registry

registry = get_registry()
if "wordllama" not in registry.names("backbone"):  # a source checkout: not installed
    registry.register(fusekit_transformers, "fusekit-transformers", "0.1.0")
"""


@pytest.fixture(autouse=True, scope="session")
def _registered():
    """The plugin's backbones in the registry, also where the distribution is not installed
    (its tests then run from the source folder); ``REGISTER`` does the same in a subprocess."""
    exec(REGISTER, {})  # noqa: S102 - the constant above
