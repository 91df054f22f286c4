"""fusekit's plugin contract checks for the BTW weightings (both reference protocols)."""

import numpy as np
import pytest
from fusekit_btw import BTW

from fusekit import FusionClassifier
from fusekit.testing import parametrize_with_checks


class BTWHeads(BTW):
    """BTW with the cheap protocol by default (the checks build plugins from their defaults)."""

    def __init__(self, level: str = "bi", unimodal: str = "heads") -> None:
        super().__init__(level=level, unimodal=unimodal)


@parametrize_with_checks("weighting", ["btw", "btw_local", BTWHeads])
def test_weighting_contract(plugin, check):
    check(plugin)


def test_partial_fit_refuses_btw_by_name():
    """W holds one row per training row, so BTW declares needs_all_training_rows."""
    rng = np.random.default_rng(0)
    X = {"a": rng.normal(size=(12, 2)), "b": rng.normal(size=(12, 3))}
    model = FusionClassifier(weighting="btw")
    with pytest.raises(ValueError, match=r"cannot train weighting 'btw' \(BTW\): it needs ev") as e:
        model.partial_fit(X, np.arange(12) % 2, classes=[0, 1])
    assert type(e.value) is ValueError and not hasattr(model, "net_")
