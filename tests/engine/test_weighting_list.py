"""A list of weightings reproduces the removed ``compose`` weighting's numbers exactly.

``qmf`` was recorded before it detached its confidences in the fusion; it runs here with
``detach_confidence=False``, the behaviour recorded.

The expected losses and probabilities were recorded by ``record_weighting_list.py`` on the code
before the list replaced ``compose`` (``weighting="compose", weighting__steps=[a, b]``); the list
form ``weighting=[a, b]`` trains with the same seed and must give the same numbers.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from record_weighting_list import STEPS, run

from fusekit.builtin.qmf_weighting import QMFWeighting

EXPECTED = json.loads((Path(__file__).parent / "weighting_list_expected.json").read_text())


@pytest.mark.parametrize("steps", STEPS, ids=" + ".join)
def test_a_list_gives_the_numbers_compose_gave(steps):
    torch.manual_seed(0)
    recorded = [QMFWeighting(detach_confidence=False) if s == "qmf" else s for s in steps]
    got = run({"weighting": recorded})
    expected = EXPECTED[" + ".join(steps)]
    np.testing.assert_allclose(got["train_loss"], expected["train_loss"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["proba"], expected["proba"], atol=2e-6)
