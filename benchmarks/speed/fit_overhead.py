"""FusionClassifier.fit / predict_proba against a hand-written loop over the identical module.

For concat, late and tensor fusion, 2 and 6 modalities, batch 64 and 512: median time ratios
over alternating repeats (each repeat's pair of times side by side), in process CPU time
(robust to other load on a shared machine; equal to wall time for single-threaded torch on an
idle one). Targets: fit <= 1.10x,
predict_proba <= 1.10x. The fit is compared with two hand loops: one selecting batch rows with
``x[rows]`` (the common idiom) and a stricter one using ``index_select`` as fusekit does.

    python benchmarks/speed/fit_overhead.py [--samples 20000 --epochs 5 --repeats 5]
"""

from __future__ import annotations

import argparse

import torch
from _common import (
    alternate_times,
    hand_loop,
    hand_predict,
    header,
    make_data,
    paired_ratio,
)

from fusekit import FusionClassifier


def measure(fusion: str, widths: list[int], batch: int, args: argparse.Namespace) -> str:
    X, y = make_data(args.samples, widths)
    params = dict(
        fusion=fusion,
        max_epochs=args.epochs,
        batch_size=batch,
        random_state=0,
        lr=0.001,
        backbone__hidden=32,
    )
    estimator, template = FusionClassifier(**params), FusionClassifier(**params)
    state: dict = {}

    def fit_loop() -> None:
        state["net"] = hand_loop(template, X, y)

    fit = alternate_times(
        {
            "fusekit": lambda: estimator.fit(X, y),
            "loop": fit_loop,
            "loop_index_select": lambda: hand_loop(template, X, y, gather="index_select"),
        },
        args.repeats,
    )
    predict = alternate_times(
        {
            "fusekit": lambda: estimator.predict_proba(X),
            "loop": lambda: hand_predict(state["net"], template, X),
        },
        args.repeats,
    )
    ratios = (
        paired_ratio(fit, "fusekit", "loop"),
        paired_ratio(fit, "fusekit", "loop_index_select"),
        paired_ratio(predict, "fusekit", "loop"),
    )
    return (
        f"| {fusion} | {len(widths)} | {batch} | " + " | ".join(f"{r:.3f}" for r in ratios) + " |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--fusions", nargs="+", default=["concat", "late", "tensor"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(header())
    print(
        f"{args.samples} samples, {args.epochs} epochs, process CPU time; each ratio is the median "
        f"over {args.repeats} alternating repeats of the two times measured side by side"
    )
    print(
        "| fusion | modalities | batch | fit / loop (x[rows]) | fit / loop (index_select) "
        "| predict_proba / no_grad loop |"
    )
    print("|---|---|---|---|---|---|")
    for fusion in args.fusions:
        for widths in ([48, 80], [16, 24, 32, 40, 20, 28]):
            for batch in (64, 512):
                print(measure(fusion, widths, batch, args), flush=True)


if __name__ == "__main__":
    main()
