"""Balancing weightings where there is something to balance: the imbalance generator.

``fusekit.datasets.make_imbalanced_classification``: a *fast* modality that tells only the class
group (margin ``imbalance`` × the slow one's) and a *slow* one that tells the whole class, weakly;
their Bayes accuracies are known. Per imbalance level and seed, 2,000 training and 1,000 test rows
of one draw; every model trains ``--epochs`` with fusekit's defaults otherwise. Reported:

- the Bayes accuracies (fast, slow, both) and the unimodal reference: a model on ``slow`` alone;
- per weighting: joint test accuracy, and the *slow probe*: the joint model's accuracy with the fast
  modality absent (NaN), i.e. how much it learned from the slow one;
- the imbalance degree of plain joint training, 1 − probe / unimodal slow accuracy (0: the joint
  model uses the slow modality as well as a model trained on it alone);
- paired differences weighting − ``none`` over seeds on both scores, 95 % t-interval, and the
  verdict on "balancing helps" (d > 0) with margin ±0.01 (``fusekit.bench.claims``).

Weightings: by default every registered balancing method, as ``table.py`` selects them (so methods
registered later appear); ``--weightings`` names a subset.

    .venv/bin/python benchmarks/balancing/imbalance_generator.py [--seeds 5] [--epochs 10]
        [--levels 1 2 4 8] [--weightings NAME ...]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from fusekit import FusionClassifier, Modalities
from fusekit.bench.claims import claim_cells, mean_std, write_report
from fusekit.datasets import make_imbalanced_classification

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import provenance  # noqa: E402
from table import balancing_methods  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "results" / "balancing_imbalance_generator.md"
N_TRAIN, N_TEST = 2000, 1000


def take(X: Modalities, rows: slice, names: list[str] | None = None) -> Modalities:
    return Modalities({name: X[name][rows] for name in names or list(X)})


def without_fast(X: Modalities) -> Modalities:
    return Modalities({"fast": np.full_like(X["fast"], np.nan), "slow": X["slow"]})


def run_level(imbalance: float, args: argparse.Namespace) -> dict:
    """Scores per seed at one imbalance level (``args.keep``: the ``--only`` filter; each fit's
    scores go to ``args.records``)."""
    out: dict = {"bayes": [], "slow_alone": [], "joint": {}, "probe": {}}
    for weighting in ["none", *args.weightings]:
        out["joint"][weighting], out["probe"][weighting] = [], []
    for seed in range(args.seeds):
        if not args.keep.keeps(imbalance=f"{imbalance:g}", seed=seed):
            continue
        X, y, info = make_imbalanced_classification(
            N_TRAIN + N_TEST, imbalance=imbalance, return_info=True, random_state=seed
        )
        train, test = slice(0, N_TRAIN), slice(N_TRAIN, None)
        X_train, X_test = take(X, train), take(X, test)
        out["bayes"].append(info.bayes_accuracy)
        alone = FusionClassifier(max_epochs=args.epochs, random_state=seed)
        alone.fit(take(X, train, ["slow"]), y[train])
        out["slow_alone"].append(alone.score(take(X, test, ["slow"]), y[test]))
        config = {"imbalance": f"{imbalance:g}", "seed": seed}
        args.records.add({**config, "weighting": "slow_alone"}, accuracy=out["slow_alone"][-1])
        for weighting in ["none", *args.weightings]:
            if not args.keep.keeps(**config, weighting=weighting):
                continue
            model = FusionClassifier(
                weighting=weighting, max_epochs=args.epochs, random_state=seed
            ).fit(X_train, y[train])
            out["joint"][weighting].append(model.score(X_test, y[test]))
            out["probe"][weighting].append(model.score(without_fast(X_test), y[test]))
            args.records.add(
                {**config, "weighting": weighting},
                joint=out["joint"][weighting][-1],
                probe=out["probe"][weighting][-1],
            )
    return out


def level_table(imbalance: float, result: dict, weightings: list[str]) -> list[str]:
    bayes = {key: np.mean([b[key] for b in result["bayes"]]) for key in ("fast", "slow", "both")}
    probe_none = np.asarray(result["probe"]["none"])
    degree = 1 - probe_none / np.asarray(result["slow_alone"])
    lines = [
        f"### imbalance = {imbalance:g}",
        "",
        f"Bayes accuracy: fast {bayes['fast']:.3f}, slow {bayes['slow']:.3f}, both "
        f"{bayes['both']:.3f}. Slow modality alone (unimodal reference): "
        f"{mean_std(result['slow_alone'])}. Imbalance degree of plain joint training "
        f"(1 − probe / alone): {mean_std(degree)}.",
        "",
        "| weighting | joint accuracy | slow probe | d joint (mean ± std) | 95 % CI | seeds d > 0 "
        "| verdict | d probe (mean ± std) | 95 % CI | seeds d > 0 | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        f"| none | {mean_std(result['joint']['none'])} | {mean_std(probe_none)} | — | — | — | — "
        "| — | — | — | — |",
    ]
    for weighting in weightings:
        joint = np.asarray(result["joint"][weighting])
        probe = np.asarray(result["probe"][weighting])
        lines.append(
            f"| {weighting} | {mean_std(joint)} | {mean_std(probe)} | "
            f"{claim_cells(joint - np.asarray(result['joint']['none']))} | "
            f"{claim_cells(probe - probe_none)} |"
        )
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--levels", type=float, nargs="+", default=[1.0, 2.0, 4.0, 8.0])
    parser.add_argument(
        "--weightings", nargs="+", default=None, help="default: every balancing method"
    )
    parser.add_argument("--out", default=str(RESULTS))
    provenance.add_arguments(parser)
    args = parser.parse_args()
    args.keep, args.records = provenance.Only(args.only), provenance.Records()
    args.weightings = args.weightings or balancing_methods()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    start = time.perf_counter()
    if args.keep:
        for level in args.levels:
            run_level(level, args)
        print(args.records.text(), end="")
        return
    tables = []
    for level in args.levels:
        tables += level_table(level, run_level(level, args), args.weightings)
    header = [
        "# Balancing weightings on the imbalance generator",
        "",
        "This file is written entirely by `imbalance_generator.py` (protocol in its docstring).",
        "",
        "```",
        *provenance.header_lines(),
        f"data: make_imbalanced_classification, {N_TRAIN} training / {N_TEST} test rows of one "
        f"draw per seed (4 classes, 2 groups; fast 4 features, slow 32, slow_strength 1.5); "
        f"{args.seeds} seeds, {args.epochs} epochs, FusionClassifier defaults otherwise",
        f"weightings: {', '.join(args.weightings)}",
        f"total wall time: {time.perf_counter() - start:.0f} s",
        "```",
        "",
    ]
    write_report("\n".join(header + tables + args.records.block()) + "\n", args.out)


if __name__ == "__main__":
    main()
