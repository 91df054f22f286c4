"""Every registered weighting on UCI Multiple Features, clean and with Gaussian noise on one view.

Stratified k-fold on the 2,000 digits (views ``--views``, default Fourier ``fou``, Zernike ``zer``
and morphological ``mor``). Each model trains on the clean training folds; its held-out fold is
scored clean and with ``fusekit.robustness.corrupt(..., "gaussian", level)`` on ``--noise-view``
(x + level·std_j·N(0, 1) for every test row, std_j the feature's spread). Reports accuracy
mean ± std over the folds and writes a Markdown table to ``benchmarks/results/balancing_uci.md``.
``--compose a b`` adds the list ``weighting=[a, b]`` (several weightings in list order).

    .venv/bin/python benchmarks/balancing/uci_weightings.py [--folds 5] [--epochs 15]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import StratifiedKFold

from fusekit import FusionClassifier, Modalities
from fusekit.datasets import load_mfeat
from fusekit.engine.registry import available
from fusekit.robustness import corrupt

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import provenance  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "results" / "balancing_uci.md"


def take(X: Modalities, rows: np.ndarray) -> Modalities:
    return Modalities({name: value[rows] for name, value in X.items()})


def evaluate(
    weighting: str | list[str], X: Modalities, y: np.ndarray, args: argparse.Namespace
) -> dict:
    """Accuracy per fold: ``{"clean": [...], level: [...]}`` and the mean fit time (``args.keep``:
    the ``--only`` filter; each fold's accuracies go to ``args.records``)."""
    label = weighting if isinstance(weighting, str) else "+".join(weighting)
    scores: dict = {"clean": [], **{level: [] for level in args.noise_levels}}
    seconds = []
    folds = StratifiedKFold(n_splits=args.folds, shuffle=True, random_state=0)
    for fold, (train, test) in enumerate(folds.split(np.zeros(len(y)), y)):
        if not args.keep.keeps(weighting=label, fold=fold):
            continue
        model = FusionClassifier(weighting=weighting, max_epochs=args.epochs, random_state=fold)
        start = time.perf_counter()
        model.fit(take(X, train), y[train])
        seconds.append(time.perf_counter() - start)
        X_test = take(X, test)
        scores["clean"].append(model.score(X_test, y[test]))
        for level in args.noise_levels:
            noisy = corrupt(X_test, args.noise_view, "gaussian", level, random_state=fold)
            scores[level].append(model.score(noisy, y[test]))
        args.records.add(
            {"weighting": label, "fold": fold},
            clean=scores["clean"][-1],
            **{f"noise_{level:g}": scores[level][-1] for level in args.noise_levels},
        )
    return {"scores": scores, "seconds": float(np.mean(seconds))}


def cell(values: list[float]) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", nargs="+", default=["fou", "zer", "mor"])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--noise-view", default="fou")
    parser.add_argument("--noise-levels", type=float, nargs="+", default=[1.0, 3.0])
    parser.add_argument("--weightings", nargs="+", default=None, help="default: all registered")
    parser.add_argument("--compose", nargs="+", default=None, help="also run this list")
    provenance.add_arguments(parser)
    args = parser.parse_args()
    args.keep, args.records = provenance.Only(args.only), provenance.Records()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", category=UserWarning)  # plugins' advice on tabular data
    names = args.weightings or sorted(available("weighting"))
    if args.compose is not None:
        names = [*names, list(args.compose)]
    X, y = load_mfeat(views=args.views)
    if args.keep:
        for name in names:
            evaluate(name, X, y, args)
        print(args.records.text(), end="")
        return
    header = [
        *provenance.header_lines(),
        f"UCI Multiple Features, views {'+'.join(args.views)} ({len(y)} digits, 10 classes); "
        f"{args.folds}-fold stratified CV, {args.epochs} epochs, FusionClassifier defaults "
        f"(mlp backbones, concat fusion, batch 64, lr 0.01); models train on clean folds; "
        f"test noise: x + s·std·N(0, 1) on view {args.noise_view!r}, all test rows",
    ]
    print("\n".join(header), flush=True)
    noise_columns = [f"noise s={level:g} on {args.noise_view}" for level in args.noise_levels]
    lines = [
        "| weighting | clean | " + " | ".join(noise_columns) + " | fit s |",
        "|---|---|" + "---|" * len(noise_columns) + "---|",
    ]
    total = time.perf_counter()
    for name in names:
        result = evaluate(name, X, y, args)
        scores = result["scores"]
        label = name if isinstance(name, str) else " + ".join(name)
        row = [label, cell(scores["clean"]), *[cell(scores[level]) for level in args.noise_levels]]
        lines.append("| " + " | ".join(row) + f" | {result['seconds']:.1f} |")
        print(lines[-1], flush=True)
    footer = f"total wall time: {time.perf_counter() - total:.0f} s"
    print(footer)
    text = "\n".join(
        ["# Balancing weightings on UCI Multiple Features", "", "```", *header, footer, "```", "",
         *lines, *args.records.block(), ""]
    )  # fmt: skip
    RESULTS.write_text(text)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
