"""Model files written before the weighting list (format 1) still load and predict the same.

``data/model_v1_*.safetensors`` and ``model_v1_proba.json`` were written by the code before the
redesign (a single weighting ``static``, and ``compose`` with steps ``[static, modality_dropout]``).
"""

import json
from pathlib import Path

import numpy as np
import pytest

import fusekit
from fusekit.datasets import make_multimodal_classification

DATA = Path(__file__).parent / "data"
EXPECTED = json.loads((DATA / "model_v1_proba.json").read_text())


@pytest.mark.parametrize("name", ["static", "compose"])
def test_a_version_1_file_loads_and_predicts_as_saved(name):
    X, _ = make_multimodal_classification(n_samples=60, random_state=0)
    model = fusekit.load(DATA / f"model_v1_{name}.safetensors")
    np.testing.assert_allclose(model.predict_proba(X)[:5], EXPECTED[name], atol=2e-6)
    expected = ["StaticWeighting"] if name == "static" else ["StaticWeighting", "ModalityDropout"]
    assert [type(w).__name__ for w in model.module_.weightings] == expected


def test_a_list_of_weightings_round_trips(tmp_path):
    X, y = make_multimodal_classification(n_samples=60, random_state=0)
    model = fusekit.FusionClassifier(
        weighting=["static", "modality_dropout"], max_epochs=2, random_state=0
    ).fit(X, y)
    restored = fusekit.load(model.save(tmp_path / "model.safetensors"))
    np.testing.assert_array_equal(restored.predict_proba(X), model.predict_proba(X))
    assert restored.weighting == ["static", "modality_dropout"]
