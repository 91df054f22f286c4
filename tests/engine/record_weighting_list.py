"""Writes ``weighting_list_expected.json``: the numbers a list of weightings must reproduce.

Run once on the code *before* the list replaced the ``compose`` weighting (commit 8ca90a5), with
``FUSEKIT_DISABLE_PLUGIN_AUTOLOAD=1``; it trains ``weighting="compose", weighting__steps=[...]``
and records the per-epoch training losses and the predicted probabilities of a few rows. The test
``test_weighting_list.py`` trains the list form ``weighting=[...]`` and compares.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from fusekit import FusionClassifier
from fusekit.datasets import make_multimodal_classification

STEPS = [
    ["ogm_ge", "modality_dropout"],
    ["modality_dropout", "unimodal_aux"],
    ["static", "qmf"],
    ["unimodal_aux", "tmc"],
    ["mmpareto", "static"],
]


def run(weighting: dict) -> dict:
    torch.set_num_threads(1)
    X, y = make_multimodal_classification(n_samples=120, random_state=0)
    model = FusionClassifier(max_epochs=3, batch_size=32, random_state=0, **weighting).fit(X, y)
    return {
        "train_loss": [row["train_loss"] for row in model.net_.history],
        "proba": model.predict_proba(X)[:5].round(6).tolist(),
    }


if __name__ == "__main__":
    out = {
        " + ".join(steps): run({"weighting": "compose", "weighting__steps": steps})
        for steps in STEPS
    }
    Path(sys.argv[1]).write_text(json.dumps(out, indent=1) + "\n")
    print(np.asarray(out[" + ".join(STEPS[0])]["train_loss"]))
