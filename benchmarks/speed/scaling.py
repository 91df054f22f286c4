"""How fit time per epoch grows with the number of samples and of modalities.

* n = 10k, 40k, 160k (3 modalities): time per epoch divided by n, relative to n = 10k
  ("ratio of ratios"; target <= 1.1, i.e. at most linear).
* M = 2, 4, 8 modalities of equal total width (256): time per epoch relative to M = 2, against
  the linear bound M / 2.

    python benchmarks/speed/scaling.py [--epochs 3 --repeats 3]
"""

from __future__ import annotations

import argparse

import torch
from _common import alternate, header, make_data

from fusekit import FusionClassifier


def per_epoch(n: int, widths: list[int], args: argparse.Namespace) -> float:
    X, y = make_data(n, widths)
    model = FusionClassifier(max_epochs=args.epochs, batch_size=128, random_state=0)
    return alternate({"fit": lambda: model.fit(X, y)}, args.repeats)["fit"] / args.epochs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(header())
    print("| n | s / epoch | (s / epoch / n) relative to n = 10k |")
    print("|---|---|---|")
    base = None
    for n in (10_000, 40_000, 160_000):
        seconds = per_epoch(n, [64, 96, 96], args)
        base = base or seconds / n
        print(f"| {n} | {seconds:.3f} | {seconds / n / base:.3f} |", flush=True)
    print()
    print("| M (total width 256) | s / epoch | relative to M = 2 | linear bound |")
    print("|---|---|---|---|")
    reference = None
    for m in (2, 4, 8):
        seconds = per_epoch(20_000, [256 // m] * m, args)
        reference = reference or seconds
        print(f"| {m} | {seconds:.3f} | {seconds / reference:.3f} | {m / 2:.1f} |", flush=True)


if __name__ == "__main__":
    main()
