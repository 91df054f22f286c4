"""VGMR against the balancing methods of the paper's Table 2 (MLA, OGM-GE, Grad-Blending, MMPareto,
PMR, AGM) with trainable per-modality encoders, over seeds, with paired differences.

The paper (Table 2, "ResNet+Concat") trains per-modality encoders, concatenates their features and
compares the baseline, each balancing method and VGMR (placed on the encoders' features before the
fusion) under one backbone, optimiser and budget. Here: UCI Multiple Features in two view sets
(``SCENARIOS``): ``fou`` (76) + ``kar`` (64), where the fused accuracy is near its ceiling, and the
harder ``fou`` + ``zer`` (47; two shape descriptors, each weaker alone), standardised on the
training rows; every model has ``backbone="mlp"`` (one hidden layer of 64 per modality: the encoder
the gradient-modulation methods act on), concat fusion (fusekit's default head) and the same
training settings (``TRAINING``: Adam at constant lr, epochs and batch size below; none of the
compared methods recommends other settings, so none is overridden). Methods: ``none`` (the paper's
Baseline), ``vgmr`` (a calibration: ``calibration="vgmr"``, weighting ``none``) and the weightings
``mla``, ``ogm_ge``, ``gradient_blending``, ``mmpareto``, ``pmr``, ``agm`` (calibration ``none``),
every method with its defaults. D&R and ARL are not in fusekit. Control ``post_only``: VGMR with α =
0 (gate ≡ 1, only Post_m = LayerNorm + Dropout), to tell the value gate's share from the
normalisation's. Per seed one stratified 75/25 split (``random_state=seed``) shared by all methods
and the models' ``random_state=seed``. Test accuracy and macro-F1 (sklearn), clean and with additive
Gaussian noise σ·s_f·ε on ``fou`` (σ = 2, s_f the training std of the feature; the paper's
robustness section, §4.8). Paired difference d = VGMR − baseline per seed, mean with a 95 %
t-interval and verdict from ``fusekit.bench.claims``: *holds* if the interval is above 0, *does not
hold* if it is below 0 or lies within ±0.01 of 0, otherwise *inconclusive*.

    .venv/bin/python plugins/fusekit-vgmr/benchmarks/balancing_seeds.py [--seeds 10] \
        [--out plugins/fusekit-vgmr/benchmarks/balancing_results.md]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from fusekit import FusionClassifier, Modalities
from fusekit.bench.claims import claim_cells, mean_std, write_report
from fusekit.datasets.real import load_mfeat

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
import provenance  # noqa: E402

#: view sets; the first view of each is the one corrupted at test time
SCENARIOS = (("fou", "kar"), ("fou", "zer"))
NOISY = "fou"
SIGMAS = (0.0, 2.0)
METRICS = ("accuracy", "macro-F1")
TRAINING = {
    "backbone": "mlp",
    "fusion": "concat",
    "optimizer": "adam",
    "lr_schedule": None,
    "lr": 0.003,
    "max_epochs": 20,
    "batch_size": 64,
}
BALANCING = ["mla", "ogm_ge", "gradient_blending", "mmpareto", "pmr", "agm"]
MODELS = {
    "none": {"calibration": "none", "weighting": "none"},
    "vgmr": {"calibration": "vgmr", "weighting": "none"},
    **{name: {"calibration": "none", "weighting": name} for name in BALANCING},
    # control: α = 0 makes G̃ ≡ 1, so VGMR reduces to Post_m (LayerNorm + Dropout) alone
    "post_only": {"calibration": "vgmr", "calibration__alpha": 0.0, "weighting": "none"},
}
BASELINES = ["none", *BALANCING, "post_only"]

Scores = dict[tuple[str, float, str], list[float]]


def split(
    X: Modalities, y: np.ndarray, seed: int
) -> tuple[Modalities, Modalities, np.ndarray, np.ndarray]:
    """Standardised train / test modalities and the train / test indices of seed ``seed``."""
    train, test = train_test_split(np.arange(len(y)), test_size=0.25, stratify=y, random_state=seed)
    scalers = {m: StandardScaler().fit(np.asarray(X[m])[train]) for m in X}
    X_train = Modalities({m: scalers[m].transform(np.asarray(X[m])[train]) for m in X})
    X_test = Modalities({m: scalers[m].transform(np.asarray(X[m])[test]) for m in X})
    return X_train, X_test, train, test


def run(
    seeds: int, views: tuple[str, ...], only: provenance.Only, records: provenance.Records
) -> tuple[Scores, dict[str, list[float]]]:
    X, y = load_mfeat(views=list(views))
    scores: Scores = {}
    seconds: dict[str, list[float]] = {}
    for seed in range(seeds):
        if not only.keeps(views="+".join(views), seed=seed):
            continue
        X_train, X_test, train, test = split(X, y, seed)
        rng = np.random.default_rng(100 + seed)
        noise = rng.standard_normal(X_test[NOISY].shape) * X_train[NOISY].std(axis=0)
        for name, params in MODELS.items():
            if not only.keeps(views="+".join(views), seed=seed, method=name):
                continue
            start = time.perf_counter()
            model = FusionClassifier(**params, **TRAINING, random_state=seed)
            model.fit(X_train, y[train])
            seconds.setdefault(name, []).append(time.perf_counter() - start)
            for sigma in SIGMAS:
                predicted = model.predict(
                    Modalities({**X_test, NOISY: X_test[NOISY] + sigma * noise})
                )
                scores.setdefault((name, sigma, "accuracy"), []).append(
                    accuracy_score(y[test], predicted)
                )
                scores.setdefault((name, sigma, "macro-F1"), []).append(
                    f1_score(y[test], predicted, average="macro")
                )
            records.add(
                {"views": "+".join(views), "seed": seed, "method": name},
                **{
                    f"{'f1' if m == 'macro-F1' else 'acc'}_{s:g}": scores[(name, s, m)][-1]
                    for s in SIGMAS
                    for m in METRICS
                },
            )
            print(
                f"  {'+'.join(views)} seed {seed} {name}: clean acc "
                f"{scores[(name, 0.0, 'accuracy')][-1]:.3f} ({seconds[name][-1]:.1f}s)",
                file=sys.stderr,
                flush=True,
            )
    return scores, seconds


def condition_name(sigma: float) -> str:
    return "clean" if sigma == 0 else f"σ = {sigma} on {NOISY}"


def header(seeds: int, wall: float) -> list[str]:
    views = ", ".join("+".join(views) for views in SCENARIOS)
    return [
        "# VGMR against the balancing methods (Table 2) with MLP encoders on UCI Multiple Features",
        "",
        "This file is written entirely by `balancing_seeds.py` (protocol in its docstring); "
        "the reading is in the plugin README.",
        "",
        "```",
        *provenance.header_lines(),
        f"data: mfeat view sets {views}, noisy view {NOISY}; {seeds} seeds; "
        f"training {TRAINING}, every method with its defaults; wall time {wall:.0f}s",
        "```",
    ]


def section(views: tuple[str, ...], scores: Scores, seconds: dict[str, list[float]]) -> list[str]:
    """The Markdown tables of one view set."""
    lines = [
        "",
        f"## Views {' + '.join(views)}",
        "",
        "Test scores, mean ± std over seeds (fit time: mean seconds per fit on this machine):",
        "",
        "| method | fit time (s) | "
        + " | ".join(f"{condition_name(s)} {m}" for s in SIGMAS for m in METRICS)
        + " |",
        "|---|---|" + "---|" * (len(SIGMAS) * len(METRICS)),
    ]
    for name in MODELS:
        cells = [mean_std(scores[(name, s, m)]) for s in SIGMAS for m in METRICS]
        lines.append(f"| {name} | {np.mean(seconds[name]):.1f} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Paired differences per seed (claim: d = vgmr − baseline > 0):",
        "",
        "| test condition | metric | baseline | d (mean ± std) | 95 % t-interval "
        "| seeds with d > 0 | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for sigma in SIGMAS:
        for metric in METRICS:
            for baseline in BASELINES:
                diffs = np.array(scores[("vgmr", sigma, metric)]) - np.array(
                    scores[(baseline, sigma, metric)]
                )
                lines.append(
                    f"| {condition_name(sigma)} | {metric} | {baseline} | {claim_cells(diffs)} |"
                )
    lines += ["", "Per-seed scores:", ""]
    for (name, sigma, metric), values in scores.items():
        lines.append(f"- {name}, σ = {sigma}, {metric}: " + ", ".join(f"{v:.3f}" for v in values))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="write the Markdown report here")
    provenance.add_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    only, records = provenance.Only(args.only), provenance.Records()
    if only:
        for views in SCENARIOS:
            run(args.seeds, views, only, records)
        print(records.text(), end="")
        return
    sections = [
        line
        for views in SCENARIOS
        for line in section(views, *run(args.seeds, views, only, records))
    ]
    lines = header(args.seeds, time.perf_counter() - started) + sections + records.block()
    text = "\n".join(lines) + "\n"
    write_report(text, args.out)


if __name__ == "__main__":
    main()
