"""Does MWAM reduce the accuracy drop when a modality is missing at test time?

The abstract's claim (Lu et al., ICLR 2026): re-balancing the branches during training makes the
model less fragile when a modality is missing. Protocol: stratified k-fold (``--folds``, shuffled
with ``random_state=--seed``); train every optimiser × weighting on complete data (the models'
``random_state=--seed``); evaluate on the test fold complete and with each modality removed
(all-NaN = absent); report mean ± std over folds. Weightings: ``none`` (plain joint training),
``mwam`` (default, ``apply="grad"``: backbone gradients × w_m), ``mwam_both`` (``apply="both"``:
also L_fused + Σ w_m·L_m on unimodal heads, which survives Adam's normalisation) and its control
``unimodal_aux`` (the same unimodal-head losses with every weight 1, no gradient scaling).
A second table gives, for the first fold, MWAM's mean weight per modality and how far each
backbone moved (||θ_end − θ_start|| relative to the run with every weight 1 from the same
initialisation: ``none`` for ``mwam``, ``unimodal_aux`` for ``mwam_both``):
under SGD a constant weight w scales the step by w; under Adam it is mostly normalised away
(spec seed-003 §9.5).

Writes ``RESULTS.md`` whole (every row in one run) with the provenance header and one raw record
per fit; ``--only dataset=basic_motions --only fold=0 ...`` prints the matching records instead.

    .venv/bin/python plugins/fusekit-mwam/benchmarks/missing_modality.py [--folds 5] \\
        [--epochs 20] [--out plugins/fusekit-mwam/benchmarks/RESULTS.md]
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
from fusekit.bench.claims import write_report
from fusekit.datasets.real import load_basic_motions, load_mfeat, load_multiview_mnist

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
import provenance  # noqa: E402

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
#: each MWAM row's control: the same loss with every weight 1 (the movement table's reference)
CONTROLS = {"mwam": "none", "mwam_both": "unimodal_aux"}
PROTOCOL = """\
Claim under test (abstract of Lu et al., ICLR 2026): MWAM's re-balancing during training makes a
multimodal model less fragile when a modality is missing.

Protocol: stratified {folds}-fold CV, seed {seed}, {epochs} epochs; train on complete data; test
on the held-out fold complete and with one modality removed (all-NaN = absent, so the fusion sees
it as missing). Cells are accuracy mean ± std over folds; *mean drop* is full accuracy minus the
mean over the "without m" columns. SGD: lr 0.05, momentum 0.9; Adam: lr 0.01. Concat fusion, MLP
backbones (conv1d for BasicMotions). MWAM uses its defaults (`frm_source="input"`,
`frm_mode="official"`, `reduce="mean"`) with `ordered_vectors=True` (these modalities are vectors
of hand-crafted features and HOG cells: outside the paper's image setting).

Rows: `none` (plain joint training), `mwam` (default, `apply="grad"`: backbone gradients × w_m),
`mwam_both` (`apply="both"`: also L_fused + Σ w_m·L_m on unimodal heads) and its control
`unimodal_aux` (the same unimodal-head losses with every weight 1, no gradient scaling).

The second table of each data set (fold 0) gives MWAM's mean weight w̄ per modality and how far
that modality's backbone moved, ‖θ_end − θ_start‖, relative to the run of its control from the
same initialisation: `none` for `mwam`, `unimodal_aux` for `mwam_both` (the same loss with every
weight 1). Raw distances and weights are in the records (`moved_<modality>`, `w_<modality>`)."""


def rows(X: Modalities, index: np.ndarray) -> Modalities:
    return Modalities({name: value[index] for name, value in X.items()})


def without(X: Modalities, name: str) -> Modalities:
    return Modalities({m: np.full_like(v, np.nan) if m == name else v for m, v in X.items()})


def backbone_state(model: FusionClassifier) -> dict[str, torch.Tensor]:
    return {
        name: torch.cat([p.detach().flatten() for p in model.module_.modality_parameters(name)])
        for name in model.module_.names
    }


def fit_and_score(
    train: tuple[Modalities, np.ndarray],
    test: tuple[Modalities, np.ndarray],
    common: dict,
    optimizer: dict,
    with_effect: bool,
) -> dict[str, float]:
    """One fit (``common``: data set, weighting, epochs and seed; ``optimizer``: its settings):
    accuracy complete, without each modality and the mean drop; with ``with_effect`` also each
    backbone's distance moved (``moved_<m>``) and, for MWAM, its mean weight (``w_<m>``)."""
    (X_train, y_train), (X_test, y_test) = train, test
    names = list(X_train)
    torch.manual_seed(common["random_state"])
    start = None
    if with_effect:  # the same seed builds the same initial network as the run below
        initial = FusionClassifier(**{**common, "max_epochs": 1, "lr": 1e-12})
        start = backbone_state(initial.fit(X_train, y_train))
    model = FusionClassifier(**common, **optimizer).fit(X_train, y_train)
    values = {"full": model.score(X_test, y_test)}
    for name in names:
        values[f"without_{name}"] = model.score(without(X_test, name), y_test)
    # the mean of the per-modality drops, summed in the order the committed tables always used
    values["mean_drop"] = float(np.mean([values["full"] - values[f"without_{n}"] for n in names]))
    if start is not None:
        end = backbone_state(model)
        values.update({f"moved_{n}": float((end[n] - start[n]).norm()) for n in names})
        if common["weighting"] == "mwam":
            history = np.array(model.module_.weighting.weight_history).mean(axis=0)
            values.update({f"w_{n}": float(w) for n, w in zip(names, history, strict=True)})
    return values


def run(
    dataset: str,
    args: argparse.Namespace,
    only: provenance.Only,
    records: provenance.Records,
) -> tuple[list[str], dict[tuple[int, str, str], dict[str, float]]]:
    """The data set's modality names and every fold × optimiser × weighting of it that ``only``
    keeps, by that key."""
    loader, extra = DATASETS[dataset]
    X, y = loader()
    splitter = StratifiedKFold(args.folds, shuffle=True, random_state=args.seed)
    results: dict[tuple[int, str, str], dict[str, float]] = {}
    for fold, (train, test) in enumerate(splitter.split(np.zeros(len(y)), y)):
        if not only.keeps(dataset=dataset, fold=fold):
            continue
        X_train, X_test = rows(X, train), rows(X, test)
        for optimizer in args.optimizers:
            for weighting in args.weightings:
                config = {
                    "dataset": dataset,
                    "fold": fold,
                    "optimizer": optimizer,
                    "weighting": weighting,
                }
                if not only.keeps(**config):
                    continue
                begin = time.perf_counter()
                common = {
                    "max_epochs": args.epochs,
                    "random_state": args.seed,
                    **extra,
                    **WEIGHTINGS[weighting],
                }
                values = fit_and_score(
                    (X_train, y[train]),
                    (X_test, y[test]),
                    common,
                    OPTIMIZERS[optimizer],
                    with_effect=fold == 0,
                )
                results[(fold, optimizer, weighting)] = values
                records.add(config, **values)
                print(
                    f"  {dataset} fold {fold} {optimizer} {weighting}: full {values['full']:.3f}"
                    f" ({time.perf_counter() - begin:.1f}s)",
                    file=sys.stderr,
                )
    return list(X), results


def _mean_std(values: list[float]) -> str:
    """Mean ± population std over folds (``np.std``, as the committed tables always were)."""
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def tables(dataset: str, names: list[str], args: argparse.Namespace, results: dict) -> list[str]:
    """The accuracy table and the fold-0 weight / movement table of one data set."""
    _, extra = DATASETS[dataset]
    lines = [
        f"### {dataset} ({args.folds}-fold, {args.epochs} epochs, backbone {extra['backbone']}, "
        f"batch {extra.get('batch_size', 64)})",
        "",
        "| optimizer | weighting | full | "
        + " | ".join(f"without {n}" for n in names)
        + " | mean drop |",
        "|---|---|---|" + "---|" * len(names) + "---|",
    ]
    folds = sorted({fold for fold, _, _ in results})
    for optimizer in args.optimizers:
        for weighting in args.weightings:
            runs = [results[(fold, optimizer, weighting)] for fold in folds]
            columns = ["full", *(f"without_{n}" for n in names), "mean_drop"]
            cells = [_mean_std([r[c] for r in runs]) for c in columns]
            lines.append(f"| {optimizer} | {weighting} | " + " | ".join(cells) + " |")
    effect = [
        f"#### {dataset}: MWAM mean weight and backbone movement relative to its w = 1 control "
        "(fold 0)",
        "",
        "| optimizer | weighting | control | " + " | ".join(names) + " |",
        "|---|---|---|" + "---|" * len(names),
    ]
    for optimizer in args.optimizers:
        for weighting, control in CONTROLS.items():
            run_ = results.get((0, optimizer, weighting))
            baseline = results.get((0, optimizer, control))
            if run_ is None or baseline is None:
                continue
            cells = [
                f"w̄ {run_[f'w_{n}']:.2f}, "
                f"moved ×{run_[f'moved_{n}'] / max(baseline[f'moved_{n}'], 1e-12):.2f}"
                for n in names
            ]
            effect.append(f"| {optimizer} | {weighting} | {control} | " + " | ".join(cells) + " |")
    return [*lines, "", *(effect if len(effect) > 4 else [])]


def report(
    sections: list[list[str]],
    walls: dict[str, float],
    args: argparse.Namespace,
    records: provenance.Records,
) -> str:
    lines = [
        "# MWAM and the missing-modality drop",
        "",
        "This file is written entirely by `missing_modality.py` (protocol below and in its "
        "docstring); the reading is in the plugin README.",
        "",
        "```",
        *provenance.header_lines(),
        f"data: {', '.join(args.datasets)}; {args.folds} folds, seed {args.seed}, "
        f"{args.epochs} epochs; optimizers {', '.join(args.optimizers)}; weightings "
        f"{', '.join(args.weightings)}; wall time "
        + ", ".join(f"{name} {wall:.0f}s" for name, wall in walls.items()),
        "```",
        "",
        PROTOCOL.format(folds=args.folds, seed=args.seed, epochs=args.epochs),
    ]
    for section in sections:
        lines += ["", *section]
    lines += records.block()
    return "\n".join(lines) + "\n"


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
        "--weightings", nargs="+", default=list(WEIGHTINGS), choices=list(WEIGHTINGS)
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="write the Markdown report here (RESULTS.md)")
    provenance.add_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    only, records = provenance.Only(args.only), provenance.Records()
    sections, walls = [], {}
    for dataset in args.datasets:
        if not only.keeps(dataset=dataset):
            continue
        begin = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            names, results = run(dataset, args, only, records)
        walls[dataset] = time.perf_counter() - begin
        if not only:
            sections.append(tables(dataset, names, args, results))
    if only:
        print(records.text(), end="")
        return
    write_report(report(sections, walls, args, records), args.out)


if __name__ == "__main__":
    main()
