"""Fit time of one model at float32, bfloat16 / float16 autocast, and compiled, on the CPU.

An mfeat-like problem (2,000 rows, six vector modalities of widths 76, 216, 64, 240, 47 and 6,
ten classes; default MLP backbones, concat fusion, batch 128), ``--epochs`` epochs per fit, each
variant fitted in alternation ``--repeats`` times after a warm-up fit (which also pays for
compilation: later fits of the same architecture reuse the compiled graphs). Prints the median
process CPU time per fit and its ratio to float32.

    python benchmarks/speed/precision_compile.py [--epochs 10 --repeats 3 --threads 1
                                                  --backends eager inductor]
"""

from __future__ import annotations

import argparse

import torch
from _common import alternate, header, make_data

from fusekit import FusionClassifier

MFEAT_WIDTHS = [76, 216, 64, 240, 47, 6]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--backends", nargs="*", default=["eager", "inductor"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    X, y = make_data(2000, MFEAT_WIDTHS, n_classes=10)
    variants = {
        "precision='32'": {},
        "precision='bf16'": {"precision": "bf16"},
        "precision='16-mixed'": {"precision": "16-mixed"},
        **{
            f"compile=True, backend={backend!r}": {"compile": True, "compile__backend": backend}
            for backend in args.backends
        },
    }

    def fit(params: dict) -> None:
        FusionClassifier(max_epochs=args.epochs, batch_size=128, random_state=0, **params).fit(X, y)

    times = alternate({name: (lambda p=p: fit(p)) for name, p in variants.items()}, args.repeats)
    base = times["precision='32'"]
    print(header())
    print(f"| variant | s / fit ({args.epochs} epochs, median of {args.repeats}) | vs float32 |")
    print("|---|---|---|")
    for name, seconds in times.items():
        print(f"| {name} | {seconds:.3f} | {seconds / base:.2f} |")


if __name__ == "__main__":
    main()
