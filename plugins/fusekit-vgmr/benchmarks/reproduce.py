"""VGMR + concat vs plain concat, clean and with Gaussian noise on one modality (paper §4.2, §4.8).

Protocol (ours where the paper is silent, spec §6 A11): 5-fold stratified CV; each model is fitted
once per fold on clean data; at test time one modality gets additive Gaussian noise
x' = x + σ·s_f·ε (s_f: the feature's training-fold std, ε ~ N(0, 1)) for several σ. Both models use
fusekit's default per-modality MLP backbone (hidden 64) and concat fusion; VGMR sits between the
backbones and the fusion with its defaults (d_p = 128, α = 0.5, β = 0.2, λ_v = 0.1, λ_r = 0.01),
once more with λ_v = λ_r = 0 (task loss only), and as the control α = 0, where the gate is
neutral and only Post_m (LayerNorm + Dropout) remains. Writes ``results.md`` whole: the
protocol, the provenance header, a Markdown table of accuracy mean ± std over folds and one raw
record per fit; ``--only dataset=basic_motions --only fold=0 ...`` prints the matching records
instead.

    .venv/bin/python plugins/fusekit-vgmr/benchmarks/reproduce.py [--folds 5] \\
        [--out plugins/fusekit-vgmr/benchmarks/results.md]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import StratifiedKFold

from fusekit import FusionClassifier, Modalities
from fusekit.bench.claims import write_report
from fusekit.datasets import load

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
import provenance  # noqa: E402

SIGMAS = (0.0, 0.5, 1.0, 2.0)
MODELS = {
    "concat": {"calibration": "none"},
    "vgmr + concat": {"calibration": "vgmr"},
    "vgmr + concat (λ=0)": {
        "calibration": "vgmr",
        "calibration__lambda_value": 0.0,
        "calibration__lambda_reg": 0.0,
    },
    # control: α = 0 makes G̃ ≡ 1, so VGMR reduces to Post_m (LayerNorm + Dropout) alone
    "post only (α=0)": {"calibration": "vgmr", "calibration__alpha": 0.0},
}
#: the models' names in the raw records (no spaces)
RECORD_KEYS = {
    "concat": "concat",
    "vgmr + concat": "vgmr",
    "vgmr + concat (λ=0)": "vgmr_lambda0",
    "post only (α=0)": "post_only",
}
DATASETS = {
    # name: (loader kwargs, noisy modality, training parameters)
    "mfeat (fou+kar)": (
        ("mfeat", {"views": ["fou", "kar"]}),
        "fou",
        {"max_epochs": 20, "batch_size": 64, "lr": 0.003},
    ),
    "basic_motions": (
        ("basic_motions", {}),
        "gyroscope",
        {"max_epochs": 60, "batch_size": 16, "lr": 0.003},
    ),
}


def corrupt(X: Modalities, train: Modalities, modality: str, sigma: float, seed: int) -> Modalities:
    """Additive Gaussian noise scaled by the training fold's per-feature std on one modality."""
    if sigma == 0:
        return X
    scale = np.asarray(train[modality]).std(axis=0, keepdims=True)  # (1, *shape)
    rng = np.random.default_rng(seed)
    noisy = np.asarray(X[modality]) + sigma * scale * rng.standard_normal(X[modality].shape)
    return Modalities({**{m: np.asarray(v) for m, v in X.items()}, modality: noisy})


def take(X: Modalities, rows: np.ndarray) -> Modalities:
    return Modalities({m: np.asarray(v)[rows] for m, v in X.items()})


def run(
    folds: int, only: provenance.Only, records: provenance.Records
) -> dict[tuple[str, str, float], list[float]]:
    scores: dict[tuple[str, str, float], list[float]] = {}
    for dataset, ((loader, kwargs), noisy, training) in DATASETS.items():
        if not only.keeps(dataset=loader):
            continue
        X, y = load(loader, **kwargs)
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
        for fold, (train_rows, test_rows) in enumerate(splitter.split(np.zeros(len(y)), y)):
            X_train, X_test = take(X, train_rows), take(X, test_rows)
            for model_name, params in MODELS.items():
                config = {"dataset": loader, "fold": fold, "model": RECORD_KEYS[model_name]}
                if not only.keeps(**config):
                    continue
                start = time.perf_counter()
                model = FusionClassifier(**params, **training, random_state=fold)
                model.fit(X_train, y[train_rows])
                for sigma in SIGMAS:
                    noisy_test = corrupt(X_test, X_train, noisy, sigma, seed=100 + fold)
                    accuracy = model.score(noisy_test, y[test_rows])
                    scores.setdefault((dataset, model_name, sigma), []).append(accuracy)
                records.add(
                    config, **{f"acc_{s:g}": scores[(dataset, model_name, s)][-1] for s in SIGMAS}
                )
                print(
                    f"  {dataset} fold {fold} {model_name}: clean "
                    f"{scores[(dataset, model_name, 0.0)][-1]:.3f} "
                    f"({time.perf_counter() - start:.1f}s)",
                    file=sys.stderr,
                )
    return scores


def table(scores: dict[tuple[str, str, float], list[float]]) -> str:
    header = "| data set (noisy modality) | model | " + " | ".join(f"σ = {s}" for s in SIGMAS)
    lines = [header + " |", "|---|---|" + "---|" * len(SIGMAS)]
    for dataset, (_, noisy, _) in DATASETS.items():
        for model_name in MODELS:
            cells = []
            for sigma in SIGMAS:
                values = np.array(scores[(dataset, model_name, sigma)])
                cells.append(f"{values.mean():.3f} ± {values.std():.3f}")
            lines.append(f"| {dataset} ({noisy}) | {model_name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


PROTOCOL = """\
{folds}-fold stratified CV (shuffled, `random_state=0`; each model's `random_state` is the fold),
models fitted on clean data, additive Gaussian noise x + σ·s_f·ε (s_f: the feature's
training-fold std, ε ~ N(0, 1), drawn with seed 100 + fold) on **one** modality at test time only.
Both models: fusekit's default MLP backbone (hidden 64) per modality, concat fusion, Adam; VGMR
with its defaults (d_p = 128, α = 0.5, β = 0.2, λ_v = 0.1, λ_r = 0.01). Control rows: VGMR with
λ_v = λ_r = 0, and VGMR with α = 0 (gate ≡ 1, so only Post_m = LayerNorm + Dropout remains).
Training: """


def report(
    scores: dict[tuple[str, str, float], list[float]],
    folds: int,
    wall: float,
    records: provenance.Records,
) -> str:
    training = "; ".join(f"{dataset} {settings}" for dataset, (_, _, settings) in DATASETS.items())
    lines = [
        "# VGMR reproduction: VGMR + concat vs plain concat",
        "",
        "This file is written entirely by `reproduce.py` (protocol below and in its docstring); "
        "the reading is in the plugin README.",
        "",
        PROTOCOL.format(folds=folds) + training + ".",
        "",
        "```",
        *provenance.header_lines(),
        f"folds: {folds}; accuracy mean ± std over folds; wall time {wall:.0f}s",
        "```",
        "",
        table(scores),
        *records.block(),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="write the Markdown report here (results.md)")
    provenance.add_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    only, records = provenance.Only(args.only), provenance.Records()
    scores = run(args.folds, only, records)
    if only:
        print(records.text(), end="")
        return
    wall = time.perf_counter() - started
    write_report(report(scores, args.folds, wall, records), args.out)


if __name__ == "__main__":
    main()
