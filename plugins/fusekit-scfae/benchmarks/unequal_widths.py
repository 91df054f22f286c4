"""SCFAE on unequal vs equal widths (the paper's Table 3): the same model, wide input kept or
linearly compressed to the narrow modality's width.

The paper (§5.2, Appendix A) runs SCFAE on ActivityNet twice: "4096-128" (the 4096-d video
feature as it is beside the 128-d image feature) and "128-128" (the video feature mapped to 128-d
by "a simple linear map" first), and reads the gain of the first (mAP@10 0.363 -> 0.367) as SCFAE
"turning unequal input sizes into an advantage". Here the same comparison on two tasks, with
identity backbones so the fusion block sees the widths themselves:

- ``synthetic``: the 8 vs 256 task of ``reproduction.py`` (600 rows, 3 classes);
- ``mfeat``: UCI Multiple Features' narrowest informative view ``zer`` (47) beside its widest,
  ``pix`` (240).

Inputs: ``wide`` (as they are), ``pca`` (the wide modality projected onto its first d_narrow
principal components, fitted on the training fold: the linear map that keeps the most of its
variance) and ``random`` (a Gaussian random projection to d_narrow, a map that knows nothing of
the data); both maps from scikit-learn. Models: ``scfae`` (its recommended training settings) and
``concat`` (the control: does the wide input help a plain model just as much?). Stratified 3-fold
CV x ``--seeds`` (a fresh shuffle each); the same folds and fit seeds for every cell. Each
comparison: paired differences per fold, the Nadeau-Bengio corrected 95 % interval
(``fusekit.bench.stats``; folds of repeated CV overlap) and the verdict of
``fusekit.bench.claims.claim_verdict`` with margin ``--margin``.

    .venv/bin/python plugins/fusekit-scfae/benchmarks/unequal_widths.py [--seeds 0 1 2]

Writes ``benchmarks/unequal_widths.md`` entirely; the reading is in the plugin's README.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.model_selection import StratifiedKFold
from sklearn.random_projection import GaussianRandomProjection

from fusekit import FusionClassifier, Modalities
from fusekit.bench.claims import claim_verdict
from fusekit.bench.stats import corrected_interval
from fusekit.datasets.real import load_mfeat
from fusekit.datasets.synthetic import make_multimodal_classification

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
import provenance  # noqa: E402

RESULTS = Path(__file__).with_name("unequal_widths.md")
INPUTS = ("wide", "pca", "random")
MODELS = {"scfae": {"fusion": "scfae"}, "concat": {"fusion": "concat"}}
#: (model, first input, second input): the claim is "first beats second".
COMPARISONS = (
    ("scfae", "wide", "pca"),
    ("scfae", "wide", "random"),
    ("concat", "wide", "pca"),
    ("concat", "wide", "random"),
)
#: The paper's gains for this claim (Table 3, SCFAE 4096-128 minus 128-128): mAP, not accuracy.
PAPER_GAINS = "mAP@10/50/100 +0.004 / +0.006 / +0.005"


def load_task(task: str) -> tuple[Modalities, np.ndarray, str, str]:
    """``(X, y, narrow, wide)``: the data and its narrow and wide modality names."""
    if task == "synthetic":
        X, y = make_multimodal_classification(
            600,
            n_features=[8, 256],
            n_classes=3,
            informative=[1.0, 0.6],
            noise=1.0,
            random_state=0,
        )
        narrow, wide = list(X)
        return X, y, narrow, wide
    X, y = load_mfeat(views=["pix", "zer"])
    return X, y, "zer", "pix"


def compressed(
    X_train: Modalities, X_test: Modalities, wide: str, width: int, how: str, seed: int
) -> tuple[Modalities, Modalities]:
    """The wide modality mapped to ``width`` by a map fitted on the training rows only."""
    if how == "wide":
        return X_train, X_test
    if how == "pca":
        mapping = PCA(width, random_state=seed)
    else:
        mapping = GaussianRandomProjection(width, random_state=seed)
    mapping.fit(np.asarray(X_train[wide]))

    def apply(X: Modalities) -> Modalities:
        return Modalities(
            {m: mapping.transform(np.asarray(v)) if m == wide else v for m, v in X.items()}
        )

    return apply(X_train), apply(X_test)


def run(args: argparse.Namespace, only: provenance.Only, records: provenance.Records) -> dict:
    """``{(task, model, input): [accuracy per (seed, fold)]}``, the same order in every cell."""
    scores: dict = {}
    for task in args.tasks:
        if not only.keeps(task=task):
            continue
        X, y, narrow, wide = load_task(task)
        width = np.asarray(X[narrow]).shape[1]
        for seed in args.seeds:
            splitter = StratifiedKFold(3, shuffle=True, random_state=seed)
            for fold, (train, test) in enumerate(splitter.split(np.zeros(len(y)), y)):
                if not only.keeps(task=task, seed=seed, fold=fold):
                    continue
                X_train = Modalities({m: np.asarray(v)[train] for m, v in X.items()})
                X_test = Modalities({m: np.asarray(v)[test] for m, v in X.items()})
                for how in INPUTS:
                    if not only.keeps(task=task, seed=seed, fold=fold, input=how):
                        continue
                    train_in, test_in = compressed(X_train, X_test, wide, width, how, seed)
                    for model_name, params in MODELS.items():
                        config = {
                            "task": task,
                            "seed": seed,
                            "fold": fold,
                            "input": how,
                            "model": model_name,
                        }
                        if not only.keeps(**config):
                            continue
                        start = time.perf_counter()
                        model = FusionClassifier(
                            backbone="identity",
                            max_epochs=args.epochs,
                            random_state=seed * 10007 + fold,
                            **params,
                        ).fit(train_in, y[train])
                        accuracy = model.score(test_in, y[test])
                        scores.setdefault((task, model_name, how), []).append(accuracy)
                        records.add(config, accuracy=accuracy)
                        print(
                            f"{task} seed {seed} fold {fold} {how} {model_name}: {accuracy:.3f} "
                            f"({time.perf_counter() - start:.1f}s)",
                            file=sys.stderr,
                        )
    return scores


def comparison_row(
    task: str, model: str, first: str, second: str, scores: dict, margin: float
) -> str:
    d = np.array(scores[(task, model, first)]) - np.array(scores[(task, model, second)])
    # 3-fold CV: each fold tests on a third and trains on two thirds.
    low, high = corrected_interval(d, n_train=2.0, n_test=1.0)
    return (
        f"| {task} | {model}: {first} − {second} | {d.mean():+.3f} ± {d.std(ddof=1):.3f} | "
        f"[{low:+.3f}, {high:+.3f}] | {(high - low) / 2:.3f} | {int((d > 0).sum())}/{len(d)} | "
        f"{claim_verdict(low, high, margin=margin)} |"
    )


def report(
    scores: dict, args: argparse.Namespace, seconds: float, records: provenance.Records
) -> str:
    n = len(next(iter(scores.values())))
    lines = [
        "# SCFAE on unequal vs compressed widths (the paper's Table 3 comparison)",
        "",
        "```",
        *provenance.header_lines(),
        f"wall time: {seconds / 60:.1f} min",
        "```",
        "",
        f"Tasks {args.tasks}; stratified 3-fold CV x seeds {args.seeds} ({n} paired folds), "
        f"{args.epochs} epochs, batch 64, identity backbones, each model's recommended training "
        "settings. Inputs: `wide` as they are; `pca` / `random`: the wide modality mapped to the "
        "narrow one's width (PCA / Gaussian random projection fitted on the training fold).",
        "",
        "## Accuracy, mean ± std over seeds x folds",
        "",
        "| task | model | " + " | ".join(INPUTS) + " |",
        "|---|---|" + "---|" * len(INPUTS),
    ]
    for task in args.tasks:
        for model in MODELS:
            cells = [
                f"{np.mean(scores[(task, model, how)]):.3f} ± "
                f"{np.std(scores[(task, model, how)], ddof=1):.3f}"
                for how in INPUTS
            ]
            lines.append(f"| {task} | {model} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Paired differences (first minus second input, same model), corrected interval, verdict",
        "",
        f"Claim (Table 3): the wide input beats the compressed one. Margin m = {args.margin} (the "
        f"paper's gains, {PAPER_GAINS}, are not in accuracy units); detectable h = the corrected "
        "interval's half-width. Verdict: holds if the interval lies above 0 and reaches beyond m, "
        "does not hold if it lies below 0 or within ±m, else inconclusive.",
        "",
        "| task | comparison | difference | corrected 95 % interval | detectable h | better in "
        "| verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for task in args.tasks:
        for model, first, second in COMPARISONS:
            lines.append(comparison_row(task, model, first, second, scores, args.margin))
    lines += [
        "",
        "This file is written entirely by `unequal_widths.py`; the reading is in the plugin's "
        "README.",
        *records.block(),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tasks", nargs="+", choices=["synthetic", "mfeat"], default=["synthetic", "mfeat"]
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--margin", type=float, default=0.01)
    parser.add_argument("--out", type=Path, default=RESULTS)
    provenance.add_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    only, records = provenance.Only(args.only), provenance.Records()
    scores = run(args, only, records)
    if only:
        print(records.text(), end="")
        return
    text = report(scores, args, time.perf_counter() - start, records)
    args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
