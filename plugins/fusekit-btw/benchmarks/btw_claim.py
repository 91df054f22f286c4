"""Does BTW help when a modality is noisy? none vs btw_local vs btw, with concat and moe fusion.

The paper's claim (Hou et al., Findings of EMNLP 2025, Tables 3-4): bi-level KL/MI weighting
(``btw``) and its KL-only variant (``btw_local``) improve a MoE fusion model's regression and
multi-class results. Tasks here (mean ± std over K folds, same folds for every method):

- ``mfeat``: UCI Multiple Features, views fou/kar/zer; view ``kar`` replaced by Gaussian noise
  (its own column std, still marked present) for ``--noise-fraction`` of training and test rows.
  Accuracy and macro-F1.
- ``clothing-rating``, ``clothing-rating-cls``: Women's Clothing Reviews (``--clothing-rows``
  stratified rows), text (TF-IDF + SVD 32, absent where there is no review) + tabular; rating
  1-5 as regression (MAE, R²) and as 5-class classification (accuracy, macro-F1).
- ``synthetic``: ``make_multimodal_regression`` with three modalities, the third mostly noise
  (``informative=[1, 1, 0.05]``). MAE and R².

    .venv/bin/python plugins/fusekit-btw/benchmarks/btw_claim.py [--folds 3] [--epochs 20]

Writes ``plugins/fusekit-btw/benchmarks/results.md`` entirely (rerunning it loses nothing); the
reading of the numbers lives in the plugin's README.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, r2_score
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from fusekit import FusionClassifier, FusionRegressor, Modalities
from fusekit.datasets import (
    AbsentWhereMissing,
    load_clothing_reviews,
    load_mfeat,
    make_multimodal_regression,
)

WEIGHTINGS = ["none", "btw_local", "btw"]
FUSIONS = ["concat", "moe"]
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
import provenance  # noqa: E402

RESULTS = Path(__file__).with_name("results.md")


def mfeat_task(noise_fraction: float, seed: int):
    X, y = load_mfeat(views=["fou", "kar", "zer"])
    rng = np.random.default_rng(seed)
    kar = np.array(X["kar"], copy=True)
    noisy = rng.random(len(y)) < noise_fraction
    kar[noisy] = rng.normal(size=(noisy.sum(), kar.shape[1])) * kar.std(axis=0)
    return Modalities(fou=X["fou"], kar=kar, zer=X["zer"]), y, "classification"


def clothing_features(frame_train, frame_test):
    text = AbsentWhereMissing(
        make_pipeline(TfidfVectorizer(min_df=3), TruncatedSVD(32, random_state=0))
    )
    numeric, categorical = ["age", "positive_feedback_count"], ["division", "department"]
    tabular = ColumnTransformer(
        [
            ("numeric", StandardScaler(), numeric),
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                categorical,
            ),
        ]
    )
    text_train = text.fit_transform(frame_train["text"])
    tab_train = tabular.fit_transform(frame_train)
    text_test, tab_test = text.transform(frame_test["text"]), tabular.transform(frame_test)
    return (
        Modalities(text=text_train, tabular=tab_train),
        Modalities(text=text_test, tabular=tab_test),
    )


def clothing_task(rows: int, seed: int):
    frame, y = load_clothing_reviews(target="rating")
    frame = frame.fillna({"division": "none", "department": "none", "age": 0})
    keep, _ = train_test_split(np.arange(len(y)), train_size=rows, stratify=y, random_state=seed)
    return frame.iloc[keep].reset_index(drop=True), y.to_numpy()[keep]


def synthetic_task(seed: int):
    X, y = make_multimodal_regression(
        n_samples=1500, n_features=[10, 10, 10], informative=[1.0, 1.0, 0.05], random_state=seed
    )
    return X, y, "regression"


def scores(task: str, y_true, y_pred) -> dict[str, float]:
    if task == "classification":
        return {
            "accuracy": accuracy_score(y_true, y_pred),
            "macro-F1": f1_score(y_true, y_pred, average="macro"),
        }
    return {"MAE": mean_absolute_error(y_true, y_pred), "R²": r2_score(y_true, y_pred)}


def run_folds(name, X, y, task, folds, epochs, seed, prepare=None, *, key, only, records):
    """One task's rows (``key`` names it in the raw records; ``only`` filters the runs)."""
    splitter = (StratifiedKFold if task == "classification" else KFold)(
        folds, shuffle=True, random_state=seed
    )
    estimator = FusionClassifier if task == "classification" else FusionRegressor
    rows = []
    for fold, (train, test) in enumerate(splitter.split(np.zeros(len(y)), y)):
        if prepare is None:
            X_train = Modalities({m: v[train] for m, v in X.items()})
            X_test = Modalities({m: v[test] for m, v in X.items()})
        else:
            X_train, X_test = prepare(X.iloc[train], X.iloc[test])
        for fusion in FUSIONS:
            for weighting in WEIGHTINGS:
                config = {"task": key, "fold": fold, "fusion": fusion, "weighting": weighting}
                if not only.keeps(**config):
                    continue
                start = time.perf_counter()
                model = estimator(
                    fusion=fusion, weighting=weighting, max_epochs=epochs, random_state=seed
                ).fit(X_train, y[train])
                elapsed = time.perf_counter() - start
                row = {"task": name, "fusion": fusion, "weighting": weighting, "fold": fold}
                row.update(scores(task, y[test], model.predict(X_test)))
                records.add(
                    config,
                    **{
                        k.replace("macro-F1", "f1").replace("²", "2"): v
                        for k, v in row.items()
                        if k not in ("task", "fusion", "weighting", "fold")
                    },
                )
                row["fit s"] = elapsed
                rows.append(row)
                print(row, flush=True)
    return rows


def table(results: pd.DataFrame) -> str:
    lines = []
    for task, group in results.groupby("task", sort=False):
        metrics = [c for c in group.columns if c not in ("task", "fusion", "weighting", "fold")]
        metrics = [m for m in metrics if group[m].notna().any() and m != "fit s"] + ["fit s"]
        lines += [f"### {task}", "", "| fusion | weighting | " + " | ".join(metrics) + " |"]
        lines.append("|---|---|" + "---|" * len(metrics))
        for (fusion, weighting), cell in group.groupby(["fusion", "weighting"], sort=False):
            values = [f"{cell[m].mean():.3f} ± {cell[m].std(ddof=0):.3f}" for m in metrics]
            lines.append(f"| {fusion} | {weighting} | " + " | ".join(values) + " |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise-fraction", type=float, default=0.5)
    parser.add_argument("--clothing-rows", type=int, default=4000)
    parser.add_argument("--tasks", nargs="+", default=["mfeat", "clothing", "synthetic"])
    provenance.add_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(1)
    header = provenance.header_lines()
    only, records = provenance.Only(args.only), provenance.Records()
    if not only:
        print("\n".join(header), flush=True)
    shared = {"only": only, "records": records}
    rows = []
    if "mfeat" in args.tasks and only.keeps(task="mfeat"):
        X, y, task = mfeat_task(args.noise_fraction, args.seed)
        name = f"mfeat (kar = noise for {args.noise_fraction:.0%} of rows)"
        rows += run_folds(
            name, X, y, task, args.folds, args.epochs, args.seed, key="mfeat", **shared
        )
    clothing_keys = ("clothing_regression", "clothing_classes")
    if "clothing" in args.tasks and any(only.keeps(task=key) for key in clothing_keys):
        frame, rating = clothing_task(args.clothing_rows, args.seed)
        for key, name, task, target in (
            (clothing_keys[0], "clothing rating (regression)", "regression", rating.astype(float)),
            (clothing_keys[1], "clothing rating (5 classes)", "classification", rating),
        ):
            rows += run_folds(
                name,
                frame,
                target,
                task,
                args.folds,
                args.epochs,
                args.seed,
                clothing_features,
                key=key,
                **shared,
            )
    if "synthetic" in args.tasks and only.keeps(task="synthetic"):
        X, y, task = synthetic_task(args.seed)
        name = "synthetic regression (3rd modality mostly noise)"
        rows += run_folds(
            name, X, y, task, args.folds, args.epochs, args.seed, key="synthetic", **shared
        )
    if only:
        print(records.text(), end="")
        return
    text = "\n".join(
        [
            "# BTW benchmark (fusekit-btw)",
            "",
            *[f"- {line}" for line in header],
            f"- {args.folds} folds, {args.epochs} epochs, lr 0.01, batch 64, mlp backbones, "
            "BTW defaults (unimodal='separate', predict_weights='mean', alpha 0.5)",
            "- mean ± std over folds",
            "",
            table(pd.DataFrame(rows)),
            'The reading of these numbers is in `plugins/fusekit-btw/README.md` ("Reading of the '
            'benchmark"); this file is written entirely by `btw_claim.py`.',
            *records.block(),
            "",
        ]
    )
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
