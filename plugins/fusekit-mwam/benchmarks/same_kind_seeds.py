"""MWAM on two or more same-kind image modalities, on a plain joint-training host and on a
modality-dropout host, over seeds, with paired differences against the host without MWAM.

Why: ``image_seeds.py`` pairs a 15×16 image with a vector, so the FRM compares spectra of
different kinds. The paper's setting is several images of one scene (RGB / depth / IR on
CASIA-SURF in the official demo), trained with modality dropout and tested on every modality
combination. This script builds that setting from one data set, so every FRM is the block DCT of
an image of the same size.

Data: UCI Multiple Features ``pix`` (2000 digits, 240 pixel averages = a 15×16 image, values
0–6), two constructions (``--cases``), each modality a ``(n, 1, H, W)`` image through its own
``cnn2d`` backbone:

- ``halves`` (2 modalities of the same kind and spectrum): ``top`` = rows 0–7, ``bottom`` = rows
  7–14 (1×8×16 each, row 7 in both).
- ``filtered`` (3 modalities, 3 "sensors" of different quality seeing the same digit, as RGB /
  depth / IR; 1×15×16 each): ``sharp`` = the image; ``blurred`` = a Gaussian blur of it
  (``scipy.ndimage.gaussian_filter``, σ = 1.5 pixels: low-pass, the largest FRM); ``noisy`` = the
  image plus white Gaussian noise of standard deviation 1 × the pixel standard deviation of the
  whole data set (drawn once, ``numpy.random.default_rng(0)``: part of the data, the same for
  every seed; the smallest FRM).

Per seed one stratified 75/25 split (``random_state=seed``) and ``random_state=seed`` for every
model. Inputs standardised by fusekit (``standardize=True``: per channel for images, which moves
only the DC coefficients). Concat fusion; SGD with momentum 0.9, constant lr 0.05, 20 epochs,
batch 64 (the bench schedule of ``image_seeds.py``; its paper schedule underfits here).
Hosts (``--host``):

- ``joint`` (``same_kind_results.md``): plain joint training, ``weighting="none"`` vs
  ``"mwam"``.
- ``dropout`` (``same_kind_dropout_results.md``): the paper's missing-modality host:
  ``modality_dropout`` (p = 0.5 per modality and sample, ``keep_one=True``: with 3 modalities
  every non-empty subset is trained, full set 1/8, each pair 1/8, each single 1/6; the demo draws
  MMANet's 7 subsets) vs ``[modality_dropout, mwam]``. MWAM with ``frm_source="input"`` computes
  its FRMs at the start of the batch, before the dropout, so it sees complete images, as in the
  demo (spec seed-003 §9.4: there the dropout acts on the encoder outputs).

Measured on the test split: accuracy on every non-empty subset of modalities *present* (the
others all-NaN = absent; 3 and 7 subsets, the demo's protocol), their mean over the incomplete
subsets (*missing mean*), and, from the MWAM fits, each modality's FRM and weight averaged over
all training steps. Paired difference d = with MWAM − without per seed, mean with a 95 %
t-interval (``fusekit.bench.claims``); *detectable* = the interval's half-width
h = t(0.975, n − 1) · sd(d) / √n (a true effect smaller than h cannot exclude 0 here). Verdict
(``claim_verdict``, margin 0.01: the abstract states no effect size): *holds* if the interval lies
on the claimed side of 0 and reaches beyond the margin, *does not hold* if it lies on the other
side or within ±0.01, *inconclusive* otherwise. Claim d > 0 for every accuracy.

    .venv/bin/python plugins/fusekit-mwam/benchmarks/same_kind_seeds.py [--seeds 5] \
        [--host joint|dropout] [--cases halves filtered] \
        [--out plugins/fusekit-mwam/benchmarks/same_kind_results.md]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np
import torch
from fusekit_mwam import MWAM
from scipy import stats
from scipy.ndimage import gaussian_filter
from sklearn.model_selection import train_test_split

from fusekit import FusionClassifier, Modalities
from fusekit.bench.claims import MARGIN, claim_cells, mean_std, paired_difference, write_report
from fusekit.builtin.modality_dropout import ModalityDropout
from fusekit.datasets import load

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
import provenance  # noqa: E402

IMAGE_SHAPE = (15, 16)
BLUR_SIGMA = 1.5
NOISE_SD = 1.0  # × the pixel standard deviation of the whole data set
NOISE_SEED = 0
DROPOUT_P = 0.5
CASES = ("halves", "filtered")
TRAINING = {
    "backbone": "cnn2d",
    "optimizer": "sgd",
    "lr": 0.05,
    "optimizer__momentum": 0.9,
    "max_epochs": 20,
    "batch_size": 64,
    "fusion": "concat",
}
#: host -> (baseline name, method name, weighting factories); fresh instances for every fit.
HOSTS = {
    "joint": ("none", "mwam", {"none": lambda: "none", "mwam": lambda: MWAM()}),
    "dropout": (
        "dropout",
        "dropout_mwam",
        {
            "dropout": lambda: [ModalityDropout(p=DROPOUT_P)],
            "dropout_mwam": lambda: [ModalityDropout(p=DROPOUT_P), MWAM()],
        },
    ),
}
TITLES = {"joint": "plain joint training", "dropout": f"modality-dropout host (p = {DROPOUT_P})"}


def images(case: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The case's modalities ``{name: (n, 1, H, W) float32}`` and the labels (see docstring)."""
    X, y = load("mfeat", views=["pix"])
    pix = np.asarray(X["pix"], dtype=np.float64).reshape(-1, *IMAGE_SHAPE)  # (n, 15, 16)
    if case == "halves":
        parts = {"top": pix[:, :8], "bottom": pix[:, 7:]}
    elif case == "filtered":
        noise = np.random.default_rng(NOISE_SEED).normal(0.0, NOISE_SD * pix.std(), pix.shape)
        parts = {
            "sharp": pix,
            "blurred": gaussian_filter(pix, sigma=(0, BLUR_SIGMA, BLUR_SIGMA)),
            "noisy": pix + noise,
        }
    else:
        raise ValueError(f"case must be one of {CASES}, got {case!r}")
    return {m: a[:, None].astype(np.float32) for m, a in parts.items()}, np.asarray(y)


def subsets(names: list[str]) -> list[tuple[str, ...]]:
    """Every non-empty subset of ``names``, largest first (the full set first)."""
    return [s for k in range(len(names), 0, -1) for s in itertools.combinations(names, k)]


def column(subset: tuple[str, ...]) -> str:
    return "present " + "+".join(subset)


def evaluate(model: FusionClassifier, X: dict[str, np.ndarray], y: np.ndarray) -> dict:
    """Accuracy with each non-empty subset present (the others all-NaN), and the missing mean."""
    names = list(X)
    row = {}
    for subset in subsets(names):
        present = Modalities(
            {m: v if m in subset else np.full_like(v, np.nan) for m, v in X.items()}
        )
        row[column(subset)] = model.score(present, y)
    incomplete = [row[column(s)] for s in subsets(names)[1:]]
    row["missing mean"] = float(np.mean(incomplete))
    return row


def mwam_of(model: FusionClassifier) -> MWAM | None:
    found = [w for w in model.module_.weightings if isinstance(w, MWAM)]
    return found[0] if found else None


def run(seeds: int, host: str, cases: list[str], only, records) -> dict:
    baseline, method, factories = HOSTS[host]
    scores: dict[tuple[str, str, str], list[float]] = {}
    for seed in range(seeds):
        if not only.keeps(seed=seed):
            continue
        for case in cases:
            if not only.keeps(seed=seed, case=case):
                continue
            X, y = images(case)
            train, test = train_test_split(
                np.arange(len(y)), test_size=0.25, stratify=y, random_state=seed
            )
            X_train = Modalities({m: v[train] for m, v in X.items()})
            X_test = {m: v[test] for m, v in X.items()}
            for name in (baseline, method):
                if not only.keeps(seed=seed, case=case, method=name):
                    continue
                start = time.perf_counter()
                model = FusionClassifier(weighting=factories[name](), **TRAINING, random_state=seed)
                model.fit(X_train, y[train])
                row = evaluate(model, X_test, y[test])
                mwam = mwam_of(model)
                if mwam is not None:
                    frm = np.nanmean(np.array(mwam.frm_history), axis=0)
                    weight = np.mean(np.array(mwam.weight_history), axis=0)
                    for position, m in enumerate(mwam.names):
                        row[f"frm {m}"] = float(frm[position])
                        row[f"w {m}"] = float(weight[position])
                for key, value in row.items():
                    scores.setdefault((case, name, key), []).append(value)
                records.add(
                    {"seed": seed, "case": case, "method": name},
                    **{_record_key(k): v for k, v in row.items()},
                )
                print(
                    f"  seed {seed} {case} {name}: full {row[column(tuple(X))]:.3f}, "
                    f"missing mean {row['missing mean']:.3f} "
                    f"({time.perf_counter() - start:.1f}s)",
                    file=sys.stderr,
                )
    return scores


def _record_key(key: str) -> str:
    return key.replace("present ", "acc_").replace("+", "_").replace(" ", "_")


def detectable(diffs: np.ndarray) -> float:
    """Half-width of the 95 % t-interval of the mean paired difference."""
    _, std, _, _ = paired_difference(diffs)
    return float(stats.t.ppf(0.975, len(diffs) - 1) * std / np.sqrt(len(diffs)))


def report(scores: dict, seeds: int, host: str, cases: list[str], wall: float, records) -> str:
    baseline, method, _ = HOSTS[host]
    lines = [
        f"# MWAM on same-kind image modalities, {TITLES[host]}: {method} vs {baseline}",
        "",
        "This file is written entirely by `same_kind_seeds.py` (protocol in its docstring); "
        "the reading is in the plugin README.",
        "",
        "```",
        *provenance.header_lines(),
        f"data: mfeat pix as same-kind images, cases {'+'.join(cases)} (halves: top rows 0-7 / "
        f"bottom rows 7-14; filtered: sharp / Gaussian blur sigma {BLUR_SIGMA} / + white noise "
        f"sd {NOISE_SD} x pixel sd, rng {NOISE_SEED}); {seeds} seeds; training {TRAINING}; "
        f"wall time {wall:.0f}s",
        "```",
    ]
    for case in cases:
        names = list(images(case)[0])
        columns = [column(s) for s in subsets(names)] + ["missing mean"]
        lines += [
            "",
            f"## {case}: accuracy, mean ± std over seeds (modalities present at test)",
            "",
            "| weighting | " + " | ".join(c.removeprefix("present ") for c in columns) + " |",
            "|---|" + "---|" * len(columns),
        ]
        for name in (baseline, method):
            cells = [mean_std(scores[(case, name, c)]) for c in columns]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines += [
            "",
            f"MWAM's FRM and weight per modality, mean over all training steps ({method}, "
            "mean ± std over seeds):",
            "",
            "| modality | FRM | w |",
            "|---|---|---|",
        ]
        for m in names:
            frm = scores[(case, method, f"frm {m}")]
            lines.append(
                f"| {m} | {np.mean(frm):.4g} ± {np.std(frm, ddof=1):.2g} | "
                f"{mean_std(scores[(case, method, f'w {m}')])} |"
            )
        lines += [
            "",
            f"Paired differences d = {method} − {baseline} per seed (claim d > 0, margin "
            f"{MARGIN}):",
            "",
            "| present at test | d (mean ± std) | 95 % t-interval | seeds with d > 0 | verdict "
            "| detectable h |",
            "|---|---|---|---|---|---|",
        ]
        for c in columns:
            diffs = np.array(scores[(case, method, c)]) - np.array(scores[(case, baseline, c)])
            lines.append(
                f"| {c.removeprefix('present ')} | {claim_cells(diffs, 1)} | "
                f"{detectable(diffs):.3f} |"
            )
    lines += ["", "Per-seed values:", ""]
    for (case, name, key), values in scores.items():
        lines.append(f"- {case}, {name}, {key}: " + ", ".join(f"{v:.4g}" for v in values))
    lines += records.block()
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--host", choices=sorted(HOSTS), default="joint")
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="write the Markdown report here")
    provenance.add_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    only, records = provenance.Only(args.only), provenance.Records()
    scores = run(args.seeds, args.host, args.cases, only, records)
    if only:
        print(records.text(), end="")
        return
    wall = time.perf_counter() - started
    write_report(report(scores, args.seeds, args.host, args.cases, wall, records), args.out)


if __name__ == "__main__":
    main()
