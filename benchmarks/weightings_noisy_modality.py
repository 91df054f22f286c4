"""Balancing weightings when one modality becomes pure noise for half of the test samples.

Synthetic task: 4 classes; modality ``a`` (8-d) and ``b`` (8-d) both carry the class (Gaussian
class means), ``b`` a little more strongly. Models train on clean data. At test time, for a random
half of the samples, ``b`` is replaced by pure noise N(0, s²) (still marked present), s in
``--noise-scales``. Reports accuracy on the corrupted half, the clean half and overall, mean ± std
over seeds, and writes a Markdown table to ``benchmarks/results/weightings_noisy_modality.md``.

    .venv/bin/python benchmarks/weightings_noisy_modality.py [--seeds 5] [--epochs 30]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from fusekit import FusionClassifier, Modalities

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import provenance  # noqa: E402

WEIGHTINGS = [
    "none",
    "unimodal_aux",
    "qmf",
    "tmc",
    "energy",
    "prob_embedding",
    "ogm_ge",
    "gradient_blending",
    "static",
    "modality_dropout",
]


def make_task(n: int, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray]:
    classes, dim = 4, 8
    centres_a = rng.normal(size=(classes, dim)) * 0.6
    centres_b = rng.normal(size=(classes, dim)) * 0.8
    y = rng.integers(0, classes, n)
    a = centres_a[y] + rng.normal(size=(n, dim))
    b = centres_b[y] + rng.normal(size=(n, dim))
    return {"a": a, "b": b}, y


def run(weighting: str, seed: int, scale: float, epochs: int) -> tuple[float, float, float]:
    rng = np.random.default_rng(seed)
    blocks, y = make_task(3000, rng)
    train, test = slice(0, 1500), slice(1500, 3000)
    X_train = Modalities({m: v[train] for m, v in blocks.items()})
    test_blocks = {m: v[test].copy() for m, v in blocks.items()}
    corrupted = rng.random(1500) < 0.5
    test_blocks["b"][corrupted] = rng.normal(size=(corrupted.sum(), 8)) * scale
    model = FusionClassifier(weighting=weighting, max_epochs=epochs, random_state=seed)
    model.fit(X_train, y[train])
    correct = model.predict(Modalities(test_blocks)) == y[test]
    return correct[corrupted].mean(), correct[~corrupted].mean(), correct.mean()


def record(records: provenance.Records, weighting: str, seed: int, scale: float, result) -> None:
    """One run's accuracies (corrupted half, clean half, all) in the raw records."""
    corrupted, clean, every = (float(v) for v in result)
    records.add(
        {"noise": f"{scale:g}", "weighting": weighting, "seed": seed},
        corrupted=corrupted,
        clean=clean,
        all=every,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--noise-scales", type=float, nargs="+", default=[1.0, 4.0])
    parser.add_argument("--weightings", nargs="+", default=WEIGHTINGS)
    provenance.add_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(1)
    only, records = provenance.Only(args.only), provenance.Records()
    if only:
        for scale in args.noise_scales:
            for weighting in args.weightings:
                for seed in range(args.seeds):
                    if only.keeps(noise=f"{scale:g}", weighting=weighting, seed=seed):
                        record(
                            records,
                            weighting,
                            seed,
                            scale,
                            run(weighting, seed, scale, args.epochs),
                        )
        print(records.text(), end="")
        return
    header = [
        *provenance.header_lines(),
        f"train 1500 clean rows, test 1500 rows ({args.seeds} seeds, {args.epochs} epochs, "
        "defaults otherwise); b replaced by N(0, s²) noise for a random half of the test rows",
    ]
    print("\n".join(header))
    lines = [
        "| weighting | noise s | acc. corrupted half | acc. clean half | acc. all "
        "| corrupted − none (paired) | wins vs none | fit s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for scale in args.noise_scales:
        baseline = None
        for weighting in args.weightings:
            start = time.perf_counter()
            results = np.array([run(weighting, s, scale, args.epochs) for s in range(args.seeds)])
            for seed, result in enumerate(results):
                record(records, weighting, seed, scale, result)
            seconds = (time.perf_counter() - start) / args.seeds
            if weighting == "none":
                baseline = results
            mean, std = results.mean(axis=0), results.std(axis=0)
            cells = [f"{m:.3f} ± {s:.3f}" for m, s in zip(mean, std, strict=True)]
            if baseline is None:
                cells += ["", ""]
            else:
                gain = results[:, 0] - baseline[:, 0]  # same seeds: same data and corruption
                cells += [
                    f"{gain.mean():+.3f} ± {gain.std():.3f}",
                    f"{int((gain > 0).sum())}/{len(gain)}",
                ]
            line = f"| {weighting} | {scale:g} | " + " | ".join(cells) + f" | {seconds:.1f} |"
            print(line, flush=True)
            lines.append(line)
    out = Path(__file__).parent / "results" / "weightings_noisy_modality.md"
    out.write_text(
        "# Weightings with one modality turned to noise for half of the test samples\n\n"
        + "\n".join(f"- {h}" for h in header)
        + "\n\n"
        + "\n".join(lines)
        + "\n"
        + "\n".join(records.block())
        + "\n"
    )
    print(f"written to {out}")


if __name__ == "__main__":
    main()
