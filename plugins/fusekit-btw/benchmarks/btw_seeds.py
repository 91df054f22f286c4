"""BTW over seeds with paired differences: btw and btw_local vs none, MoE fusion (the paper's host).

The paper's claim (Hou et al., Findings of EMNLP 2025, Tables 3-4): bi-level KL/MI weighting
(``btw``) and its KL-only variant (``btw_local``) improve a MoE fusion model. Settings taken
from ``btw_claim.py`` (same tasks, same model parameters: mlp backbones, lr 0.01, batch 64,
BTW defaults), kept short: MoE fusion only, the ``mfeat`` task (view ``kar`` replaced by noise
for half of the rows; accuracy) and the ``synthetic`` regression (third modality mostly noise;
MAE), and optionally the clothing-rating regression (MAE). Per seed one 75/25 split
(stratified for classification), data and model ``random_state=seed``; all three weightings see
the same split. Paired difference per seed d = method − none, oriented so that d > 0 means
better (accuracy: method − none; MAE: none − method), mean with a 95 % t-interval
(scipy.stats.t). Verdict: *holds* if the interval is above 0, *does not hold* if it is below
0 or within ±0.01 of 0 (in the metric's units), *inconclusive* otherwise.

    .venv/bin/python plugins/fusekit-btw/benchmarks/btw_seeds.py [--seeds 5] [--epochs 20] \
        [--tasks mfeat synthetic] [--out plugins/fusekit-btw/benchmarks/seeds_results.md]
    .venv/bin/python plugins/fusekit-btw/benchmarks/btw_seeds.py --tasks clothing \
        --out plugins/fusekit-btw/benchmarks/seeds_results_clothing.md
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import accuracy_score, mean_absolute_error
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).parent))
from btw_claim import clothing_features, clothing_task, mfeat_task, synthetic_task  # noqa: E402

from fusekit import FusionClassifier, FusionRegressor, Modalities  # noqa: E402
from fusekit.bench.claims import claim_cells, mean_std, write_report  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
import provenance  # noqa: E402

WEIGHTINGS = ["none", "btw_local", "btw"]
BASELINE = "none"


def task_data(task: str, seed: int, noise_fraction: float, clothing_rows: int):
    """(name, X, y, kind, metric, higher_is_better, prepare) for one task and seed."""
    if task == "mfeat":
        X, y, kind = mfeat_task(noise_fraction, seed)
        name = f"mfeat (kar = noise for {noise_fraction:.0%} of rows)"
        return name, X, y, kind, "accuracy", True, None
    if task == "synthetic":
        X, y, kind = synthetic_task(seed)
        return "synthetic regression (3rd modality mostly noise)", X, y, kind, "MAE", False, None
    frame, rating = clothing_task(clothing_rows, seed)
    name = "clothing rating (regression)"
    return name, frame, rating.astype(float), "regression", "MAE", False, clothing_features


def run(args, only: provenance.Only, records: provenance.Records) -> tuple[dict, dict]:
    scores: dict[tuple[str, str], list[float]] = {}
    meta: dict[str, tuple[str, bool]] = {}
    for seed in range(args.seeds):
        for task in args.tasks:
            if not only.keeps(seed=seed, task=task):
                continue
            name, X, y, kind, metric, higher, prepare = task_data(
                task, seed, args.noise_fraction, args.clothing_rows
            )
            meta[name] = (metric, higher)
            train, test = train_test_split(
                np.arange(len(y)),
                test_size=0.25,
                stratify=y if kind == "classification" else None,
                random_state=seed,
            )
            if prepare is None:
                X_train = Modalities({m: np.asarray(v)[train] for m, v in X.items()})
                X_test = Modalities({m: np.asarray(v)[test] for m, v in X.items()})
            else:
                X_train, X_test = prepare(X.iloc[train], X.iloc[test])
            estimator = FusionClassifier if kind == "classification" else FusionRegressor
            score = accuracy_score if metric == "accuracy" else mean_absolute_error
            for weighting in WEIGHTINGS:
                if not only.keeps(seed=seed, task=task, weighting=weighting):
                    continue
                start = time.perf_counter()
                model = estimator(
                    fusion="moe", weighting=weighting, max_epochs=args.epochs, random_state=seed
                ).fit(X_train, y[train])
                value = score(y[test], model.predict(X_test))
                scores.setdefault((name, weighting), []).append(value)
                records.add({"seed": seed, "task": task, "weighting": weighting}, **{metric: value})
                print(
                    f"  seed {seed} {task} {weighting}: {metric} {value:.3f} "
                    f"({time.perf_counter() - start:.1f}s)",
                    file=sys.stderr,
                    flush=True,
                )
    return scores, meta


def report(scores: dict, meta: dict, args, wall: float, records: provenance.Records) -> str:
    lines = [
        "# BTW over seeds: btw / btw_local vs none, MoE fusion",
        "",
        "This file is written entirely by `btw_seeds.py` (protocol in its docstring); "
        "the reading is in the plugin README.",
        "",
        "```",
        *provenance.header_lines(),
        f"{args.seeds} seeds, {args.epochs} epochs, moe fusion, mlp backbones, lr 0.01, batch 64; "
        f"wall time {wall:.0f}s",
        "```",
        "",
        "| task | metric | " + " | ".join(WEIGHTINGS) + " |",
        "|---|---|" + "---|" * len(WEIGHTINGS),
    ]
    for name, (metric, _) in meta.items():
        cells = [mean_std(scores[(name, w)]) for w in WEIGHTINGS]
        lines.append(f"| {name} | {metric} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Paired differences per seed, oriented so that d > 0 means the method is better:",
        "",
        "| task | method | d (mean ± std) | 95 % t-interval | seeds with d > 0 | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for name, (metric, higher) in meta.items():
        base = np.array(scores[(name, BASELINE)])
        for method in WEIGHTINGS[1:]:
            diffs = np.array(scores[(name, method)]) - base
            diffs = diffs if higher else -diffs
            lines.append(f"| {name} | {method} ({metric}) | {claim_cells(diffs)} |")
    lines += ["", "Per-seed values:", ""]
    for (name, weighting), values in scores.items():
        lines.append(f"- {name}, {weighting}: " + ", ".join(f"{v:.3f}" for v in values))
    lines += records.block()
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--noise-fraction", type=float, default=0.5)
    parser.add_argument("--clothing-rows", type=int, default=4000)
    parser.add_argument(
        "--tasks",
        nargs="+",
        default=["mfeat", "synthetic"],
        choices=["mfeat", "synthetic", "clothing"],
    )
    parser.add_argument("--out", default=None, help="write the Markdown report here")
    provenance.add_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    only, records = provenance.Only(args.only), provenance.Records()
    scores, meta = run(args, only, records)
    if only:
        print(records.text(), end="")
        return
    text = report(scores, meta, args, time.perf_counter() - started, records)
    write_report(text, args.out)


if __name__ == "__main__":
    main()
