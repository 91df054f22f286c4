"""VGMR on the original features (``backbone="identity"``), as the paper refines them: VGMR + concat
vs plain concat over seeds, with paired differences.

The paper (Table 2) places VGMR on each modality's own features before the fusion and compares VGMR
+ concat with concat. Here: UCI Multiple Features, views ``fou`` (76) + ``kar`` (64), standardised;
per seed one stratified 75/25 split (``random_state=seed``) and the models' ``random_state=seed``,
so the two models of a seed see the same split and initialisation seed. Both use
``backbone="identity"`` and concat fusion (fusekit's default head); VGMR with its defaults; OGM-GE
(``weighting="ogm_ge"``, the paper's main balancing baseline) with its defaults (with identity
backbones it can only modulate what sits before the fusion, so this is not the paper's ResNet
setting for OGM-GE). Control ``post_only``: VGMR with α = 0 (gate ≡ 1, only Post_m = LayerNorm +
Dropout). Test accuracy clean and with additive Gaussian noise σ·s_f·ε on ``fou`` (σ = 2, s_f the
training std of the feature). Paired difference d = acc(method) − acc(baseline) per seed, mean with
a 95 % t-interval (scipy.stats.t). Verdict: *holds* if the interval is above 0, *does not hold* if
it is below 0 or lies within ±0.01 of 0 (no gain worth the name), *inconclusive* otherwise.

    .venv/bin/python plugins/fusekit-vgmr/benchmarks/identity_seeds.py [--seeds 10] \
        [--out plugins/fusekit-vgmr/benchmarks/identity_results.md]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from fusekit import FusionClassifier, Modalities
from fusekit.bench.claims import claim_cells, mean_std, write_report
from fusekit.datasets import load

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
import provenance  # noqa: E402

VIEWS = ["fou", "kar"]
NOISY = "fou"
SIGMAS = (0.0, 2.0)
TRAINING = {"backbone": "identity", "max_epochs": 20, "batch_size": 64, "lr": 0.003}
MODELS = {
    "none": {"calibration": "none"},
    "vgmr": {"calibration": "vgmr"},
    "ogm_ge": {"calibration": "none", "weighting": "ogm_ge"},
    # control: α = 0 makes G̃ ≡ 1, so VGMR reduces to Post_m (LayerNorm + Dropout) alone
    "post_only": {"calibration": "vgmr", "calibration__alpha": 0.0},
}
# (method, baseline): the paper's Table 2 compares VGMR with concat and with OGM-GE
# (vgmr, post_only) asks whether the value gate adds anything beyond Post_m's LayerNorm
COMPARISONS = [("vgmr", "none"), ("vgmr", "ogm_ge"), ("ogm_ge", "none"), ("vgmr", "post_only")]


def run(
    seeds: int, only: provenance.Only, records: provenance.Records
) -> dict[tuple[str, float], list[float]]:
    X, y = load("mfeat", views=VIEWS)
    scores: dict[tuple[str, float], list[float]] = {}
    for seed in range(seeds):
        if not only.keeps(seed=seed):
            continue
        train, test = train_test_split(
            np.arange(len(y)), test_size=0.25, stratify=y, random_state=seed
        )
        scalers = {m: StandardScaler().fit(np.asarray(X[m])[train]) for m in VIEWS}
        X_train = Modalities({m: scalers[m].transform(np.asarray(X[m])[train]) for m in VIEWS})
        X_test = Modalities({m: scalers[m].transform(np.asarray(X[m])[test]) for m in VIEWS})
        rng = np.random.default_rng(100 + seed)
        noise = rng.standard_normal(X_test[NOISY].shape) * X_train[NOISY].std(axis=0)
        for name, params in MODELS.items():
            if not only.keeps(seed=seed, method=name):
                continue
            start = time.perf_counter()
            model = FusionClassifier(**params, **TRAINING, random_state=seed)
            model.fit(X_train, y[train])
            for sigma in SIGMAS:
                noisy = Modalities({**X_test, NOISY: X_test[NOISY] + sigma * noise})
                scores.setdefault((name, sigma), []).append(model.score(noisy, y[test]))
            records.add(
                {"seed": seed, "method": name},
                **{f"acc_{s:g}": scores[(name, s)][-1] for s in SIGMAS},
            )
            print(
                f"  seed {seed} {name}: clean {scores[(name, 0.0)][-1]:.3f} "
                f"({time.perf_counter() - start:.1f}s)",
                file=sys.stderr,
            )
    return scores


def condition_name(sigma: float) -> str:
    return "clean" if sigma == 0 else f"σ = {sigma} on {NOISY}"


def report(
    scores: dict[tuple[str, float], list[float]],
    seeds: int,
    wall: float,
    records: provenance.Records,
) -> str:
    lines = [
        "# VGMR on original features (identity backbone): VGMR + concat vs concat and OGM-GE",
        "",
        "This file is written entirely by `identity_seeds.py` (protocol in its docstring); "
        "the reading is in the plugin README.",
        "",
        "```",
        *provenance.header_lines(),
        f"data: mfeat views {'+'.join(VIEWS)}, noisy view {NOISY}; {seeds} seeds; "
        f"training {TRAINING}; wall time {wall:.0f}s",
        "```",
        "",
        "Accuracy, mean ± std over seeds:",
        "",
        "| test condition | " + " | ".join(MODELS) + " |",
        "|---|" + "---|" * len(MODELS),
    ]
    for sigma in SIGMAS:
        cells = [mean_std(scores[(m, sigma)]) for m in MODELS]
        lines.append(f"| {condition_name(sigma)} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Paired differences per seed (claim: d > 0 for VGMR against each baseline):",
        "",
        "| test condition | d = method − baseline | d (mean ± std) | 95 % t-interval "
        "| seeds with d > 0 | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for sigma in SIGMAS:
        for method, baseline in COMPARISONS:
            diffs = np.array(scores[(method, sigma)]) - np.array(scores[(baseline, sigma)])
            lines.append(
                f"| {condition_name(sigma)} | {method} − {baseline} | {claim_cells(diffs)} |"
            )
    lines += ["", "Per-seed accuracies:", ""]
    for (name, sigma), values in scores.items():
        lines.append(f"- {name}, σ = {sigma}: " + ", ".join(f"{v:.3f}" for v in values))
    lines += records.block()
    return "\n".join(lines) + "\n"


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
    scores = run(args.seeds, only, records)
    if only:
        print(records.text(), end="")
        return
    text = report(scores, args.seeds, time.perf_counter() - started, records)
    write_report(text, args.out)


if __name__ == "__main__":
    main()
