"""Every built-in plugin passes the contract checks of fusekit.testing."""

from fusekit.engine.registry import Registry
from fusekit.testing import parametrize_with_checks

_BUILTINS = Registry(autoload=False)


def _names(kind):
    return _BUILTINS.names(kind)


@parametrize_with_checks("fusion", _names("fusion"))
def test_fusion_contract(plugin, check):
    check(plugin)


@parametrize_with_checks("backbone", _names("backbone"))
def test_backbone_contract(plugin, check):
    check(plugin)


@parametrize_with_checks("calibration", _names("calibration"))
def test_calibration_contract(plugin, check):
    check(plugin)


WEIGHTING_EXEMPTIONS = {
    ("mla", "check_gradients_reach_encoders"): (
        "MLA alternates by design: each training step updates one modality's encoder through "
        "the shared head (Zhang et al., CVPR 2024), so one step never reaches every encoder"
    ),
    ("reconboost", "check_gradients_reach_encoders"): (
        "ReconBoost's boosting phase trains one modality's learner at a time (Hua et al., ICML "
        "2024); every encoder trains in the rectification phase that follows"
    ),
}


@parametrize_with_checks("weighting", _names("weighting"), exemptions=WEIGHTING_EXEMPTIONS)
def test_weighting_contract(plugin, check):
    check(plugin)
