"""A BalanceBenchmark-style table: every registered balancing weighting × imbalanced data sets.

Methods: every weighting the plugin registry holds (so methods registered later appear) except
plain joint training (``none``, the baseline) and the weightings that are no balancing method
(:data:`NOT_BALANCING`: learned static weights and per-sample reliability / uncertainty schemes).
Data sets: ``make_imbalanced_classification`` at strong imbalance (``--imbalance``, default 8)
and the bundled real ones where one modality dominates (``fusekit.datasets.IMBALANCED_REAL``).

Protocol per data set: one stratified 5-fold split (``random_state=0``); fold k trains every model
with ``random_state=k``, so each method gets 5 paired seed × fold cells. FusionClassifier defaults
(MLP backbones, concat fusion) except ``max_epochs`` (:data:`EPOCHS`, sized so that the whole run
fits about 15 minutes on two busy cores). Reported:

- the unimodal reference rows: a model trained on each modality alone (plain joint training);
- per method: held-out accuracy and macro-F1 (mean ± std over the cells), the paired difference
  method − ``none`` on accuracy with its 95 % t-interval, seeds with d > 0 and the verdict of
  ``fusekit.bench.claims`` (margin ±0.01) on "the method beats plain joint training";
- the Shapley imbalance degree ``ID`` (``fusekit.inspection.imbalance_degree``: exact Shapley
  values of held-out accuracy over modality coalitions, absent modalities as NaN) of each fitted
  model: the ``none`` row is the degree before balancing, each method's row the degree after;
- parameters of the fitted network, and FLOPs of one training step
  (``torch.utils.flop_counter.FlopCounterMode`` around a one-epoch fit on one batch of
  :data:`FLOP_ROWS` rows: forward, loss, backward and the method's per-step passes; per-fit and
  per-epoch hooks of that fit included, work outside torch, such as KMeans, not counted).

    .venv/bin/python benchmarks/balancing/table.py [--folds 5] [--imbalance 8]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedKFold
from torch.utils.flop_counter import FlopCounterMode

from fusekit import FusionClassifier, Modalities
from fusekit.bench.claims import claim_cells, mean_std, write_report
from fusekit.datasets import IMBALANCED_REAL, make_imbalanced_classification
from fusekit.engine.registry import get_registry
from fusekit.inspection import imbalance_degree

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import provenance  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "results" / "balancing_table.md"
#: Registered weightings that are not balancing methods: the baseline, learned static weights,
#: and per-sample reliability / uncertainty weightings (they reweight noisy samples, not modalities
#: that train at different speeds).
NOT_BALANCING = {
    "none",
    "static",
    "energy",
    "prob_embedding",
    "qmf",
    "tmc",
    "btw",
    "btw_local",
    "udml",
}
#: Training epochs per data set.
EPOCHS = {"generator": 10, "nutrimouse_diet": 30, "mfeat_fou_mor": 10}
GENERATOR_ROWS = 600
FLOP_ROWS = 32


def balancing_methods() -> list[str]:
    """Every registered weighting that is a balancing method, in registry order."""
    return [name for name in get_registry().names("weighting") if name not in NOT_BALANCING]


def data_sets(imbalance: float) -> dict[str, tuple[Modalities, np.ndarray, str, str]]:
    """``{name: (X, y, dominant modality, note)}``: the generator, then the real data sets."""
    X, y, info = make_imbalanced_classification(
        GENERATOR_ROWS, imbalance=imbalance, return_info=True, random_state=0
    )
    bayes = ", ".join(f"{k} {v:.3f}" for k, v in info.bayes_accuracy.items())
    out = {"generator": (X, y, "fast", f"Bayes accuracy (true posterior): {bayes}. ")}
    for name, entry in IMBALANCED_REAL.items():
        X, y = entry.load()
        out[name] = (X, y, entry.dominant, "")
    return out


def only(X: Modalities, names: list[str]) -> Modalities:
    return Modalities({name: X[name] for name in names})


def network_size(model: FusionClassifier) -> int:
    return sum(p.numel() for p in model.module_.parameters())


def flop_rows(y: np.ndarray) -> np.ndarray:
    """``FLOP_ROWS`` rows with every class in them (two of each, then the first others)."""
    rows = np.concatenate([np.flatnonzero(y == c)[:2] for c in np.unique(y)])
    rest = np.setdiff1d(np.arange(len(y)), rows)[: max(FLOP_ROWS - len(rows), 0)]
    return np.concatenate([rows, rest])


def step_flops(model: FusionClassifier, X: Modalities, y: np.ndarray) -> int:
    """FLOPs of a one-epoch fit of ``model`` on one batch (one training step); fits it."""
    model.set_params(max_epochs=1, batch_size=len(y))
    with FlopCounterMode(display=False) as counter:
        model.fit(X, y)
    return int(counter.get_total_flops())


def run_data_set(
    name: str, X: Modalities, y: np.ndarray, epochs: int, methods: list[str], args: Any
) -> dict:
    """Scores per fold: unimodal references, then ``none`` and every method (``args.keep``: the
    ``--only`` filter; each fit's scores go to ``args.records``)."""
    names = list(X)
    out: dict = {"alone": {m: [] for m in names}, "acc": {}, "f1": {}, "id": {}, "errors": {}}
    for method in ["none", *methods]:
        out["acc"][method], out["f1"][method], out["id"][method] = [], [], []
    splitter = StratifiedKFold(args.folds, shuffle=True, random_state=0)
    for fold, (train, test) in enumerate(splitter.split(np.zeros(len(y)), y)):
        for m in names:
            if not args.keep.keeps(data=name, fold=fold, method=f"{m}_alone"):
                continue
            alone = FusionClassifier(max_epochs=epochs, random_state=fold)
            alone.fit(only(X[train], [m]), y[train])
            out["alone"][m].append(alone.score(only(X[test], [m]), y[test]))
            args.records.add(
                {"data": name, "fold": fold, "method": f"{m}_alone"}, accuracy=out["alone"][m][-1]
            )
        for method in ["none", *methods]:
            if method in out["errors"] or not args.keep.keeps(data=name, fold=fold, method=method):
                continue
            try:
                model = FusionClassifier(weighting=method, max_epochs=epochs, random_state=fold)
                model.fit(X[train], y[train])
                predicted = model.predict(X[test])
                degree, _ = imbalance_degree(model, X[test], y[test])
            except Exception as error:  # noqa: BLE001 - a method that fails is reported, not fatal
                out["errors"][method] = f"{type(error).__name__}: {str(error).splitlines()[0]}"
                continue
            out["acc"][method].append(accuracy_score(y[test], predicted))
            out["f1"][method].append(f1_score(y[test], predicted, average="macro"))
            out["id"][method].append(degree)
            args.records.add(
                {"data": name, "fold": fold, "method": method},
                accuracy=out["acc"][method][-1],
                macro_f1=out["f1"][method][-1],
                imbalance_degree=degree,
            )
    return out


def cost(X: Modalities, y: np.ndarray, methods: list[str]) -> dict[str, tuple[int, int]]:
    """``{method: (parameters, FLOPs per training step)}``."""
    out = {}
    rows = flop_rows(y)
    for method in ["none", *methods]:
        model = FusionClassifier(weighting=method, random_state=0)
        flops = step_flops(model, X[rows], y[rows])
        out[method] = (network_size(model), flops)
    return out


def data_set_table(
    name: str, dominant: str, note: str, result: dict, costs: dict, methods: list[str]
) -> list[str]:
    alone = "; ".join(
        f"`{m}`{' (dominant in joint training)' if m == dominant else ''} {mean_std(v)}"
        for m, v in result["alone"].items()
    )
    lines = [
        f"### {name}",
        "",
        f"{note}Unimodal reference (a model on one modality alone, held-out accuracy): {alone}. "
        f"Imbalance degree of plain joint training (before balancing): "
        f"{mean_std(result['id']['none'])}.",
        "",
        "| method | accuracy | macro-F1 | d accuracy vs none (mean ± std) | 95 % CI | seeds d > 0 "
        "| verdict | imbalance degree | parameters | FLOPs / step |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    base = np.asarray(result["acc"]["none"])
    for method in ["none", *methods]:
        params, flops = costs[method]
        size, work = f"{params:,}", f"{flops / 1e6:.2f} M"
        if method in result["errors"]:
            lines.append(f"| {method} | failed: {result['errors'][method]} | | | | | | | | |")
            continue
        acc = np.asarray(result["acc"][method])
        versus = "— | — | — | —" if method == "none" else claim_cells(acc - base)
        lines.append(
            f"| {method} | {mean_std(acc)} | {mean_std(result['f1'][method])} | {versus} | "
            f"{mean_std(result['id'][method])} | {size} | {work} |"
        )
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--imbalance", type=float, default=8.0)
    parser.add_argument("--methods", nargs="+", default=None)
    parser.add_argument("--data", nargs="+", default=None, help="data set names to run")
    parser.add_argument("--out", default=str(RESULTS))
    provenance.add_arguments(parser)
    args = parser.parse_args()
    args.keep, args.records = provenance.Only(args.only), provenance.Records()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    methods = args.methods or balancing_methods()
    start = time.perf_counter()
    tables = []
    for name, (X, y, dominant, note) in data_sets(args.imbalance).items():
        if args.data and name not in args.data:
            continue
        result = run_data_set(name, X, y, EPOCHS[name], methods, args)
        if not args.keep:
            tables += data_set_table(name, dominant, note, result, cost(X, y, methods), methods)
    if args.keep:
        print(args.records.text(), end="")
        return
    sizes = ", ".join(f"{name} {epochs}" for name, epochs in EPOCHS.items())
    header = [
        "# Balancing methods × imbalanced data sets",
        "",
        "This file is written entirely by `table.py` (protocol in its docstring; the reading is in "
        "`benchmarks/balancing/README.md`).",
        "",
        "```",
        *provenance.header_lines(),
        f"methods: {', '.join(methods)} (every registered balancing weighting)",
        f"data: make_imbalanced_classification({GENERATOR_ROWS} rows, imbalance="
        f"{args.imbalance:g}) and {', '.join(IMBALANCED_REAL)}; stratified {args.folds}-fold, "
        f"fold k seeded k; epochs: {sizes}; FusionClassifier defaults otherwise",
        f"FLOPs: one training step on {FLOP_ROWS} rows (FlopCounterMode around a one-epoch fit)",
        f"total wall time: {time.perf_counter() - start:.0f} s",
        "```",
        "",
    ]
    write_report("\n".join(header + tables + args.records.block()) + "\n", args.out)


if __name__ == "__main__":
    main()
