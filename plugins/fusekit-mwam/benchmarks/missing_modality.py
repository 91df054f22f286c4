"""Does MWAM reduce the accuracy drop when a modality is missing at test time?

The abstract's claim (Lu et al., ICLR 2026): re-balancing the branches during training makes the
model less fragile when a modality is missing. Protocol: stratified k-fold; train ``none`` and
``mwam`` (SGD with momentum, and Adam) on complete data; evaluate on the test fold complete and
with each modality removed (all-NaN = absent); report mean ± std over folds. A second table gives,
for the first fold, MWAM's mean weight per modality and how far each backbone moved
(||θ_end − θ_start|| relative to the same run without MWAM): under SGD a constant weight w scales
the step by w; under Adam it is mostly normalised away (spec seed-003 §9.5).
``--weightings none mwam_both`` adds MWAM with ``apply="both"`` (unimodal-head losses weighted too,
which survives Adam's normalisation); ``unimodal_aux`` is its control: the same unimodal-head
losses with every weight 1 and no gradient scaling.

    .venv/bin/python plugins/fusekit-mwam/benchmarks/missing_modality.py [--folds 5] [--epochs 20]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings

import numpy as np
import torch
from sklearn.model_selection import StratifiedKFold

from fusekit import FusionClassifier, Modalities
from fusekit.datasets.real import load_basic_motions, load_mfeat, load_multiview_mnist

DATASETS = {
    "mfeat": (load_mfeat, {"backbone": "mlp"}),
    "basic_motions": (load_basic_motions, {"backbone": "conv1d", "batch_size": 16}),
    "multiview_mnist": (load_multiview_mnist, {"backbone": "mlp"}),
}
OPTIMIZERS = {
    "sgd": {"optimizer": "sgd", "lr": 0.05, "optimizer__momentum": 0.9},
    "adam": {"optimizer": "adam", "lr": 0.01},
}
WEIGHTINGS = {
    "none": {"weighting": "none"},
    "mwam": {"weighting": "mwam", "weighting__ordered_vectors": True},
    "mwam_both": {
        "weighting": "mwam",
        "weighting__ordered_vectors": True,
        "weighting__apply": "both",
    },
    "unimodal_aux": {"weighting": "unimodal_aux"},  # the same loss as mwam_both with w = 1
}


def rows(X: Modalities, index: np.ndarray) -> Modalities:
    return Modalities({name: value[index] for name, value in X.items()})


def without(X: Modalities, name: str) -> Modalities:
    return Modalities({m: np.full_like(v, np.nan) if m == name else v for m, v in X.items()})


def backbone_state(model: FusionClassifier) -> dict[str, torch.Tensor]:
    return {
        name: torch.cat([p.detach().flatten() for p in model.module_.modality_parameters(name)])
        for name in model.module_.names
    }


def run(
    dataset: str,
    folds: int,
    epochs: int,
    seed: int,
    optimizers: list[str],
    weightings: list[str],
) -> tuple[list[str], list[str]]:
    loader, extra = DATASETS[dataset]
    X, y = loader()
    names = list(X)
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    scores: dict[tuple[str, str], dict[str, list[float]]] = {}
    movement: dict[tuple[str, str], dict[str, float]] = {}
    weights: dict[str, list[float]] = {}
    for fold, (train, test) in enumerate(splitter.split(np.zeros(len(y)), y)):
        X_train, X_test = rows(X, train), rows(X, test)
        for optimizer in optimizers:
            opt_params = OPTIMIZERS[optimizer]
            for weighting in weightings:
                w_params = WEIGHTINGS[weighting]
                model = FusionClassifier(
                    max_epochs=epochs, random_state=seed, **extra, **opt_params, **w_params
                )
                torch.manual_seed(seed)
                start = None
                if fold == 0:  # the same seed builds the same initial network in both runs
                    start = backbone_state(
                        FusionClassifier(
                            max_epochs=1, random_state=seed, lr=1e-12, **extra, **w_params
                        ).fit(X_train, y[train])
                    )
                model.fit(X_train, y[train])
                result = scores.setdefault((optimizer, weighting), {})
                result.setdefault("full", []).append(model.score(X_test, y[test]))
                for name in names:
                    result.setdefault(name, []).append(model.score(without(X_test, name), y[test]))
                if start is not None:
                    end = backbone_state(model)
                    movement[(optimizer, weighting)] = {
                        n: float((end[n] - start[n]).norm()) for n in names
                    }
                    if weighting.startswith("mwam"):
                        history = np.array(model.module_.weighting.weight_history)
                        weights[(optimizer, weighting)] = history.mean(axis=0).tolist()
    table = [
        f"### {dataset} ({folds}-fold, {epochs} epochs, backbone {extra['backbone']}, "
        f"batch {extra.get('batch_size', 64)})",
        "",
        "| optimizer | weighting | full | "
        + " | ".join(f"without {n}" for n in names)
        + " | mean drop |",
        "|---|---|---|" + "---|" * len(names) + "---|",
    ]
    for (optimizer, weighting), result in scores.items():
        full = np.array(result["full"])
        drops = np.mean([full - np.array(result[n]) for n in names], axis=0)
        cells = [f"{np.mean(result[n]):.3f} ± {np.std(result[n]):.3f}" for n in ["full", *names]]
        table.append(
            f"| {optimizer} | {weighting} | "
            + " | ".join(cells)
            + f" | {drops.mean():.3f} ± {drops.std():.3f} |"
        )
    effect = [
        f"#### {dataset}: MWAM mean weight and backbone movement relative to `none` (fold 0)",
        "",
        "| optimizer | weighting | " + " | ".join(names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    for optimizer, weighting in weights:
        if (optimizer, "none") not in movement:
            continue
        ratio = [
            movement[(optimizer, weighting)][n] / max(movement[(optimizer, "none")][n], 1e-12)
            for n in names
        ]
        pairs = zip(weights[(optimizer, weighting)], ratio, strict=True)
        cells = [f"w̄ {w:.2f}, moved ×{r:.2f}" for w, r in pairs]
        effect.append(f"| {optimizer} | {weighting} | " + " | ".join(cells) + " |")
    return table, effect if len(effect) > 4 else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument(
        "--optimizers", nargs="+", default=list(OPTIMIZERS), choices=list(OPTIMIZERS)
    )
    parser.add_argument(
        "--weightings", nargs="+", default=["none", "mwam"], choices=list(WEIGHTINGS)
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", category=UserWarning)
    print(f"command: {' '.join(sys.argv)}")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread"
    )
    for dataset in args.datasets:
        begin = time.perf_counter()
        table, effect = run(
            dataset, args.folds, args.epochs, args.seed, args.optimizers, args.weightings
        )
        print("\n".join(["", *table, "", *effect, ""]))
        print(f"({dataset}: {time.perf_counter() - begin:.0f} s)")


if __name__ == "__main__":
    main()
