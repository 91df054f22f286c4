"""Learning-rate sweep of SCFAE and its presets: where their ``recommended_params`` come from.

UCI Multiple Features, views ``fou`` + ``kar`` (the bench's quick suite data), stratified 3-fold
CV with the bench's seeds (split shuffled with ``seed``, fit seed ``seed * 10007 + fold``), the
bench's quick budget (5 epochs, batch 64, mlp backbones), each lr x seed x fold. ``scfae_paper``
keeps its recommended optimiser and schedule (AdamW, warm-up + cosine); the lr swept is its peak.
Every other preset trains with Adam at a constant lr. Reported per preset and lr: accuracy mean ±
std over seeds x folds, the worst fold, and the share of fits that trained without diverging (the
training loss finite, never rising by more than 2 % of the first epoch's loss from one epoch to
the next, and ending below the first). The chosen lr: the best mean accuracy among the lrs at
which every fit trained without diverging (the best mean overall if there is none).

    .venv/bin/python plugins/fusekit-scfae/benchmarks/lr_sweep.py [--seeds 0 1 2] [--epochs 5]

Writes ``plugins/fusekit-scfae/benchmarks/lr_sweep.md`` (the whole file; the reading of it is in
the plugin's README).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import StratifiedKFold

from fusekit import FusionClassifier, Modalities
from fusekit.datasets.real import load_mfeat

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
import provenance  # noqa: E402

PRESETS = (
    "scfae",
    "scfae_no_recon",
    "scfae_no_expand",
    "scfae_mse",
    "scfae_contrastive",
    "linear_proj",
    "scfae_paper",
)
#: comparison rows: label -> (fusion name, extra estimator parameters). Not recommendations (the
#: labels are not fusion names): the literal MSE ablation, and SCFAE with the stop-gradient that
#: ``scfae_mse`` adds, so the metric's effect can be told from the stop-gradient's.
VARIANTS: dict[str, tuple[str, dict]] = {
    "scfae_mse (no detach)": ("scfae_mse", {"fusion__detach_target": False}),
    "scfae (detach_target)": ("scfae", {"fusion__detach_target": True}),
}
LRS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
RESULTS = Path(__file__).with_name("lr_sweep.md")


def record_key(preset: str) -> str:
    """``scfae_mse (no detach)`` -> ``scfae_mse_no_detach``: a name without spaces."""
    return re.sub(r"\W+", "_", preset).strip("_")


def run(
    seeds: list[int],
    epochs: int,
    lrs: tuple[float, ...],
    presets: tuple[str, ...],
    only: provenance.Only,
    records: provenance.Records,
) -> dict:
    """``{(preset, lr): [(accuracy, loss fell), ...]}`` over seeds x folds."""
    X, y = load_mfeat(views=["fou", "kar"])
    scores: dict = {(p, lr): [] for p in presets for lr in lrs}
    for seed in seeds:
        splitter = StratifiedKFold(3, shuffle=True, random_state=seed)
        for fold, (train, test) in enumerate(splitter.split(np.zeros(len(y)), y)):
            if not only.keeps(seed=seed, fold=fold):
                continue
            X_train = Modalities({m: np.asarray(v)[train] for m, v in X.items()})
            X_test = Modalities({m: np.asarray(v)[test] for m, v in X.items()})
            for preset in presets:
                start = time.perf_counter()
                for lr in lrs:
                    config = {"seed": seed, "fold": fold, "preset": record_key(preset), "lr": lr}
                    if not only.keeps(**config):
                        continue
                    fusion, extra = VARIANTS.get(preset, (preset, {}))
                    model = FusionClassifier(
                        fusion=fusion,
                        lr=lr,
                        max_epochs=epochs,
                        random_state=seed * 10007 + fold,
                        **extra,
                    ).fit(X_train, y[train])
                    losses = np.asarray(model.net_.history[:, "train_loss"], dtype=float)
                    scores[(preset, lr)].append((model.score(X_test, y[test]), stable(losses)))
                    records.add(config, accuracy=scores[(preset, lr)][-1][0], stable=stable(losses))
                print(f"seed {seed} fold {fold} {preset}: {time.perf_counter() - start:.1f}s")
    return scores


def stable(losses: np.ndarray) -> bool:
    """Trained without diverging: finite, no epoch-to-epoch rise above 2 % of the first loss,
    last below first."""
    if not np.isfinite(losses).all():
        return False
    return bool(np.diff(losses).max(initial=0.0) < 0.02 * losses[0] and losses[-1] < losses[0])


def chosen(scores: dict, preset: str, lrs: tuple[float, ...]) -> float:
    """The best mean accuracy among the lrs where every fit was stable (else among all)."""
    safe = [lr for lr in lrs if all(ok for _, ok in scores[(preset, lr)])] or list(lrs)
    return max(safe, key=lambda lr: np.mean([a for a, _ in scores[(preset, lr)]]))


def report(
    scores: dict,
    args: argparse.Namespace,
    lrs: tuple[float, ...],
    seconds: float,
    records: provenance.Records,
) -> str:
    presets = tuple(dict.fromkeys(p for p, _ in scores))
    lines = [
        "# SCFAE learning-rate sweep",
        "",
        "```",
        *provenance.header_lines(),
        f"wall time: {seconds / 60:.1f} min",
        "```",
        "",
        f"Data: UCI Multiple Features, views fou + kar; stratified 3-fold CV x seeds "
        f"{args.seeds}; {args.epochs} epochs, batch 64, mlp backbones. `scfae_paper`: AdamW "
        "with warm-up + cosine (its recommended schedule), lr = the peak; the others: Adam, "
        "constant lr.",
        "",
        "Cells: accuracy mean ± std over seeds x folds / worst fold / share of fits that trained "
        "without diverging (loss finite, no epoch-to-epoch rise above 2 % of the first epoch's "
        "loss, last below first).",
        "",
        "| preset | " + " | ".join(f"lr {lr:g}" for lr in lrs) + " | chosen lr |",
        "|---|" + "---|" * (len(lrs) + 1),
    ]
    for preset in presets:
        cells = []
        for lr in lrs:
            accuracy = np.array([a for a, _ in scores[(preset, lr)]])
            fell = np.mean([f for _, f in scores[(preset, lr)]])
            cells.append(
                f"{accuracy.mean():.3f} ± {accuracy.std():.3f} / {accuracy.min():.3f} / {fell:.0%}"
            )
        lines.append(f"| {preset} | " + " | ".join(cells) + f" | {chosen(scores, preset, lrs):g} |")
    lines += [
        "",
        "Chosen lr: the best mean accuracy among the lrs where every fit trained without "
        "diverging. `recommended_params` of SCFAE and each preset "
        "(`fusekit_scfae/settings.py`, `SWEPT_LR`) are set from the last column. The rows in "
        "parentheses are comparisons, not recommendations: "
        + "; ".join(f"{label} = `fusion={f!r}` with {kw}" for label, (f, kw) in VARIANTS.items())
        + ".",
        *records.block(),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--presets", nargs="+", default=[*PRESETS, *VARIANTS])
    parser.add_argument("--out", type=Path, default=RESULTS)
    provenance.add_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    only, records = provenance.Only(args.only), provenance.Records()
    scores = run(args.seeds, args.epochs, LRS, tuple(args.presets), only, records)
    if only:
        print(records.text(), end="")
        return
    text = report(scores, args, LRS, time.perf_counter() - start, records)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
