"""BTW over seeds with paired differences: btw and btw_local vs none, MoE fusion (the paper's host).

The paper's claim (Hou et al., Findings of EMNLP 2025, Tables 3-4): bi-level KL/MI weighting
(``btw``) and its KL-only variant (``btw_local``) improve a MoE fusion model. Settings taken
from ``btw_claim.py`` (same tasks, same model parameters: mlp backbones, lr 0.01, batch 64,
BTW defaults), kept short: MoE fusion only, the ``mfeat`` task (view ``kar`` replaced by noise
for half of the rows; accuracy) and the ``synthetic`` regression (third modality mostly noise;
MAE), and optionally the clothing-rating regression (MAE). Per seed one 75/25 split
(stratified for classification), data and model ``random_state=seed``; all three weightings see
the same split. Paired difference per seed d = method − none (and btw − btw_local: does the MI
term add to KL?), oriented so that d > 0 means better (accuracy: method − none; MAE: none −
method), mean with a 95 % t-interval (scipy.stats.t). Verdict
(``fusekit.bench.claims.claim_verdict``): *holds* if the interval is above 0, *does not hold* if
it is below 0 or within ±m of 0, *inconclusive* otherwise, with a margin m per claim: half the
paper's gain (:data:`PAPER_GAIN`, MOSI Table 3, the MoE host; MAE gains as a share of this task's
baseline MAE), at least :data:`MARGIN_FLOOR`. Power (``benchmarks/power.py``): the effect these
seeds detect with 80 % power (two-sided paired t, alpha 0.05) and the seeds the paper's full gain
needs at this spread of d.

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
from fusekit.bench.claims import (  # noqa: E402
    claim_verdict,
    mean_std,
    paired_difference,
    write_report,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
import power  # noqa: E402
import provenance  # noqa: E402

WEIGHTINGS = ["none", "btw_local", "btw"]
BASELINE = "none"
#: The paper's gain of each comparison over its baseline (MOSI, Table 3, MoE host 0.735 MAE,
#: 45.87 % Acc-7): MAE as a share of the baseline's MAE, accuracy in points / 100; None where
#: the paper claims none (MI adds no MAE gain: BTW 0.716 vs BTW-local 0.714).
PAPER_GAIN: dict[tuple[str, str], tuple[float | None, str]] = {
    ("MAE", "btw_local"): ((0.735 - 0.714) / 0.735, "MAE 0.735 → 0.714, −2.9 %"),
    ("MAE", "btw"): ((0.735 - 0.716) / 0.735, "MAE 0.735 → 0.716, −2.6 %"),
    ("MAE", "btw − btw_local"): (None, "none claimed (MAE 0.714 → 0.716)"),
    ("accuracy", "btw_local"): (0.4640 - 0.4587, "Acc-7 45.87 → 46.40"),
    ("accuracy", "btw"): (0.4752 - 0.4587, "Acc-7 45.87 → 47.52"),
    ("accuracy", "btw − btw_local"): (0.4752 - 0.4640, "Acc-7 46.40 → 47.52"),
}
#: The smallest margin: a gain under half a point counts as none whatever the paper's size.
MARGIN_FLOOR = 0.005


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
        "Paired differences per seed, oriented so that d > 0 means the method is better; "
        "margin m = half the paper's gain (at least "
        f"{MARGIN_FLOOR}); detectable: the true d these seeds detect with 80 % power; seeds "
        "needed: for the paper's full gain at this spread of d (paired t, alpha 0.05):",
        "",
        "| task | method | d (mean ± std) | 95 % t-interval | seeds with d > 0 | paper's gain "
        "(here) | margin m | detectable | seeds needed | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, (metric, higher) in meta.items():
        base = np.array(scores[(name, BASELINE)])
        comparisons = [(m, np.array(scores[(name, m)]) - base) for m in WEIGHTINGS[1:]]
        comparisons.append(
            ("btw − btw_local", np.array(scores[(name, "btw")]) - scores[(name, "btw_local")])
        )
        for label, diffs in comparisons:
            diffs = diffs if higher else -diffs
            gain, source = PAPER_GAIN[(metric, label)]
            if gain is not None and metric == "MAE":  # a share of this task's baseline MAE
                reference = BASELINE if " " not in label else "btw_local"
                gain *= float(np.mean(scores[(name, reference)]))
            margin = max(MARGIN_FLOOR, gain / 2) if gain is not None else MARGIN_FLOOR
            mean, std, low, high = paired_difference(diffs)
            here = "—" if gain is None else f"{gain:.4f}"
            lines.append(
                f"| {name} | {label} ({metric}) | {mean:+.3f} ± {std:.3f} | [{low:+.3f}, "
                f"{high:+.3f}] | {int((diffs > 0).sum())}/{len(diffs)} | {source} ({here}) | "
                f"{margin:.4f} | {power.power_cells(diffs, gain)} | "
                f"{claim_verdict(low, high, margin=margin)} |"
            )
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
