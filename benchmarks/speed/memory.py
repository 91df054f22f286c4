"""Peak RSS during FusionClassifier.fit on n x 3 modalities x 256 float32.

Target: peak <= baseline (RSS after the data exist) + 2.5 x the data's bytes, i.e. no
per-modality or per-fold copies beyond one float32 copy (the standardised inputs).

    python benchmarks/speed/memory.py [--samples 200000 --epochs 1]
"""

from __future__ import annotations

import argparse
import resource
import sys
from pathlib import Path

import numpy as np
import torch

from fusekit import FusionClassifier, Modalities

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import provenance  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=200_000)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("\n".join(provenance.header_lines()))
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, args.samples)
    X = Modalities(
        {
            f"m{i}": rng.standard_normal((args.samples, args.width), dtype=np.float32)
            for i in range(3)
        }
    )
    data_mb = sum(v.nbytes for v in X.values()) / 2**20
    # warm up torch/sklearn allocations on a small slice so they do not count as data copies
    FusionClassifier(max_epochs=1).fit(X[:256], y[:256])
    baseline = rss_mb()  # ru_maxrss cannot be reset, so the warm-up must stay below this
    FusionClassifier(max_epochs=args.epochs, batch_size=512, random_state=0).fit(X, y)
    peak = peak_mb()
    extra = peak - baseline
    print(f"data: {args.samples} x 3 x {args.width} float32 = {data_mb:.0f} MB")
    print(f"RSS baseline {baseline:.0f} MB, peak during fit {peak:.0f} MB, extra {extra:.0f} MB")
    print(f"extra / data bytes = {extra / data_mb:.2f} (target <= 2.5)")


if __name__ == "__main__":
    main()
