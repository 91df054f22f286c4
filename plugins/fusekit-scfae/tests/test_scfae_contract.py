"""fusekit's plugin contract checks for the fusion kind (shapes, absent-modality finiteness and
invariance, gradients, hooks, determinism, sklearn compatibility, recommended settings, learning
an easy task with the recommended settings), on SCFAE and every preset."""

from fusekit_scfae import PRESETS

from fusekit.testing import parametrize_with_checks


@parametrize_with_checks("fusion", ["scfae", *PRESETS])
def test_contract(plugin, check):
    check(plugin)
