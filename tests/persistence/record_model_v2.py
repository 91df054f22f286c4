"""Writes ``data/model_v2_*.safetensors`` and ``data/model_v2_expected.json``: model files in
format 2 (written before fitted attributes were stored by type) and what they must load as.

Run once on the code that writes format 2 (``FORMAT_VERSION = 2``), with
``FUSEKIT_DISABLE_PLUGIN_AUTOLOAD=1``: it fits a classifier (string labels, early stopping, a
``WarmupCosine`` schedule, a plugin instance, a class weight dict, callbacks and a ``ValidSplit``
left on the estimator) and a two-output regressor on a DataFrame, saves them, and records the
fitted attributes and predicted values that the saving code had.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from skorch.callbacks import EarlyStopping, GradientNormClipping
from skorch.dataset import ValidSplit

from fusekit import FusionClassifier, FusionRegressor, Modalities
from fusekit.builtin.late_fusion import LateFusion
from fusekit.plugin import WarmupCosine


def classification() -> tuple[Modalities, np.ndarray]:
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 3, 40)
    X = Modalities(a=rng.normal(size=(40, 3)) + codes[:, None], b=rng.normal(size=(40, 2)))
    return X, np.array(["high", "low", "mid"])[codes]


def regression() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(30, 4)), columns=["a__x", "a__y", "b__x", "b__y"])
    y = np.stack([frame["a__x"] * 3, frame["b__y"] - 1], axis=1)
    return frame, y


def record(model) -> dict:
    return {
        "n_iter_": model.n_iter_,
        "loss_curve_": model.loss_curve_,
        "validation_scores_": model.validation_scores_,
        "best_epoch_": model.best_epoch_,
        "lr_": model.lr_,
        "optimizer_": model.optimizer_.__name__,
        "training_settings_": {k: repr(v) for k, v in model.training_settings_.items()},
    }


def main(folder: Path) -> None:
    torch.set_num_threads(1)
    X, labels = classification()
    classifier = FusionClassifier(
        fusion=LateFusion(weights="learned"),
        lr_schedule=WarmupCosine(),
        class_weight={"low": 2.0, "mid": 1.0, "high": 1.0},
        early_stopping=True,
        n_iter_no_change=2,
        max_epochs=5,
        batch_size=16,
        random_state=0,
    ).fit(X, labels)
    classifier.set_params(
        train_split=ValidSplit(0.25, stratified=True, random_state=3),
        callbacks=[EarlyStopping(patience=2), ("clip", GradientNormClipping(0.5))],
        early_stopping=False,
    )
    classifier.save(folder / "model_v2_classifier.safetensors")
    frame, y = regression()
    regressor = FusionRegressor(fusion="late", optimizer="sgd", max_epochs=2, random_state=0)
    regressor.fit(frame, y).save(folder / "model_v2_regressor.safetensors")
    expected = {
        "classifier": {
            **record(classifier),
            "classes_": classifier.classes_.tolist(),
            "proba": classifier.predict_proba(X)[:5].tolist(),
        },
        "regressor": {
            **record(regressor),
            "feature_names_in_": regressor.feature_names_in_.tolist(),
            "predict": regressor.predict(frame)[:5].tolist(),
        },
    }
    (folder / "model_v2_expected.json").write_text(json.dumps(expected, indent=1) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "data")
