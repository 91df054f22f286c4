"""SCFAE with its paper schedule under the missing-modality protocol: repeated CV, paired tests.

``scfae_paper`` (AdamW, warm-up + cosine, its recommended peak lr) against concat fusion (the
plain baseline, its own defaults) and against itself without the reconstruction loss
(``fusion__lam=0``, the paper's Table 8 "FFN (w/o Recon)"). UCI Multiple Features (six views);
train on complete rows, remove k views per test row at random (k = 0, 2, 4; the paper's §5.4
protocol on CMU-MOSEI). Stratified 3-fold CV repeated over ``--seeds`` (a fresh shuffle each),
the same folds, fit seeds and removals for every method. For each comparison: the paired
difference per fold, mean ± std over seeds x folds, a 95 % t-interval, and the verdict: "holds"
if the interval lies above 0, "does not hold" if below, else "inconclusive".

    .venv/bin/python plugins/fusekit-scfae/benchmarks/paper_schedule.py [--seeds 0 1 2 3 4]

Writes ``benchmarks/paper_schedule.md`` entirely; the reading is in the plugin's README.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import stats
from sklearn.model_selection import StratifiedKFold

from fusekit import FusionClassifier, Modalities
from fusekit.datasets.real import load_mfeat

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
import provenance  # noqa: E402

METHODS = {
    "concat": {"fusion": "concat"},
    "scfae_paper": {"fusion": "scfae_paper"},
    "scfae_paper, lam=0": {"fusion": "scfae_paper", "fusion__lam": 0.0},
}
COMPARISONS = (("scfae_paper", "concat"), ("scfae_paper", "scfae_paper, lam=0"))
REMOVALS = (0, 2, 4)
RESULTS = Path(__file__).with_name("paper_schedule.md")
SETTINGS: dict[str, dict[str, str]] = {}  # method -> the training settings its fits used


def remove_views(X: Modalities, k: int, rng: np.random.Generator) -> Modalities:
    """Each row loses ``k`` of its views, chosen uniformly at random (NaN = absent)."""
    arrays = {m: np.array(v, dtype=np.float64, copy=True) for m, v in X.items()}
    names = list(arrays)
    for row in range(len(arrays[names[0]])):
        for m in rng.choice(names, size=k, replace=False):
            arrays[m][row] = np.nan
    return Modalities(arrays)


def record_key(method: str) -> str:
    return method.replace(", lam=", "_lam")


def run(seeds: list[int], epochs: int, only: provenance.Only, records: provenance.Records) -> dict:
    """``{(method, k): [score per (seed, fold)]}`` in the same (seed, fold) order."""
    X, y = load_mfeat()
    scores: dict = {(method, k): [] for method in METHODS for k in REMOVALS}
    for seed in seeds:
        splitter = StratifiedKFold(3, shuffle=True, random_state=seed)
        for fold, (train, test) in enumerate(splitter.split(np.zeros(len(y)), y)):
            if not only.keeps(seed=seed, fold=fold):
                continue
            X_train = Modalities({m: np.asarray(v)[train] for m, v in X.items()})
            X_test = Modalities({m: np.asarray(v)[test] for m, v in X.items()})
            rng = np.random.default_rng(seed * 100 + fold)
            tests = {k: remove_views(X_test, k, rng) for k in REMOVALS}
            for method, params in METHODS.items():
                config = {"seed": seed, "fold": fold, "method": record_key(method)}
                if not only.keeps(**config):
                    continue
                start = time.perf_counter()
                model = FusionClassifier(
                    max_epochs=epochs, random_state=seed * 10007 + fold, **params
                ).fit(X_train, y[train])
                for k in REMOVALS:
                    scores[(method, k)].append(model.score(tests[k], y[test]))
                records.add(config, **{f"removed_{k}": scores[(method, k)][-1] for k in REMOVALS})
                SETTINGS[method] = {
                    name: f"{s['value']!r} ({s['source']})"
                    for name, s in model.training_settings_.items()
                }
                print(f"seed {seed} fold {fold} {method}: {time.perf_counter() - start:.1f}s")
    return scores


def verdict(differences: np.ndarray) -> tuple[float, float, str]:
    """95 % t-interval of the mean paired difference and what it says."""
    low, high = stats.t.interval(
        0.95, len(differences) - 1, loc=differences.mean(), scale=stats.sem(differences)
    )
    word = "holds" if low > 0 else "does not hold" if high < 0 else "inconclusive"
    return float(low), float(high), word


def report(
    scores: dict, args: argparse.Namespace, seconds: float, records: provenance.Records
) -> str:
    n = len(next(iter(scores.values())))
    lines = [
        "# SCFAE with its paper schedule, missing views (UCI Multiple Features)",
        "",
        "```",
        *provenance.header_lines(),
        f"wall time: {seconds / 60:.1f} min",
        "```",
        "",
        f"Stratified 3-fold CV x seeds {args.seeds} ({n} paired folds), {args.epochs} epochs, "
        "batch 64, mlp backbones, each method's recommended training settings. Trained on "
        "complete rows; k views removed per test row at random.",
        "",
        "Training settings used (value, source): "
        + "; ".join(
            f"{method}: " + ", ".join(f"{k}={v}" for k, v in settings.items())
            for method, settings in SETTINGS.items()
        ),
        "",
        "## Accuracy, mean ± std over seeds x folds",
        "",
        "| method | " + " | ".join(f"{k} removed" for k in REMOVALS) + " |",
        "|---|" + "---|" * len(REMOVALS),
    ]
    for method in METHODS:
        cells = [
            f"{np.mean(scores[(method, k)]):.3f} ± {np.std(scores[(method, k)]):.3f}"
            for k in REMOVALS
        ]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Paired differences (first minus second), mean ± std, 95 % t-interval, verdict",
        "",
        "| comparison | k removed | difference | 95 % interval | better in | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for first, second in COMPARISONS:
        for k in REMOVALS:
            d = np.array(scores[(first, k)]) - np.array(scores[(second, k)])
            low, high, word = verdict(d)
            lines.append(
                f"| {first} − {second} | {k} | {d.mean():+.3f} ± {d.std():.3f} | "
                f"[{low:+.3f}, {high:+.3f}] | {int((d > 0).sum())}/{len(d)} | {word} |"
            )
    lines += [
        "",
        "Verdict per row: the claim that the first beats the second holds if the interval lies "
        "above 0, does not hold if below, else inconclusive. This file is written entirely by "
        "`paper_schedule.py`; the reading is in the plugin's README.",
        *records.block(),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=RESULTS)
    provenance.add_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    only, records = provenance.Only(args.only), provenance.Records()
    scores = run(args.seeds, args.epochs, only, records)
    if only:
        print(records.text(), end="")
        return
    text = report(scores, args, time.perf_counter() - start, records)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
