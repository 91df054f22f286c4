"""Which label-free predict-time weights? none vs btw / btw_local with predict_weights modes.

Synthetic task (as ``tests/test_weighting.py::make_data``): 3 classes, 400 rows, 3 modalities
(m0 strong, m1 pure noise, m2 weak), 30 % of each modality absent; regression variant with two
outputs. 3-fold CV, 20 epochs, concat fusion, BTW defaults otherwise.

    .venv/bin/python plugins/fusekit-btw/benchmarks/predict_weights.py
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from sklearn.model_selection import cross_val_score

from fusekit import FusionClassifier, FusionRegressor, Modalities


def make_data(task: str, n: int = 400, missing: float = 0.3, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    blocks = {}
    for m, signal in enumerate((2.0, 0.0, 0.5)):
        block = rng.normal(size=(n, 3 + m)) + signal * y[:, None]
        absent = rng.random(n) < missing
        absent[rng.integers(0, n, 5)] = False
        block[absent] = np.nan
        blocks[f"m{m}"] = block
    if task == "regression":
        y = np.stack([y + 0.3 * rng.normal(size=n), -y + 0.3 * rng.normal(size=n)], axis=1)
    return Modalities(**blocks), y


def main() -> None:
    torch.set_num_threads(1)
    print("command:", " ".join([sys.executable, *sys.argv]), f"| torch {torch.__version__}")
    for task in ("classification", "regression"):
        X, y = make_data(task)
        estimator = FusionClassifier if task == "classification" else FusionRegressor
        metric = "accuracy" if task == "classification" else "R²"
        plain = cross_val_score(estimator(max_epochs=20, random_state=0), X, y, cv=3).mean()
        print(f"{task} ({metric}) none: {plain:.3f}", flush=True)
        for weighting in ("btw", "btw_local"):
            for mode in ("mean", "recompute", "ones"):
                model = estimator(
                    max_epochs=20,
                    random_state=0,
                    weighting=weighting,
                    weighting__predict_weights=mode,
                )
                score = cross_val_score(model, X, y, cv=3).mean()
                print(f"{task} ({metric}) {weighting} {mode}: {score:.3f}", flush=True)


if __name__ == "__main__":
    main()
