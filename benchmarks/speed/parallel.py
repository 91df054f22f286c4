"""GridSearchCV with n_jobs=2 against n_jobs=1 on 2 cores.

joblib's loky workers start with OMP_NUM_THREADS (and torch's intra-op threads) limited to
cores // n_jobs, so two workers do not oversubscribe two cores; the serial run uses 1 thread too,
so the comparison is process parallelism only. ``refit=False``: the refit on all rows after the
search is a single serial fit and would cap the speed-up whatever the backend. Target: >= 1.6.

    python benchmarks/speed/parallel.py [--samples 4000 --epochs 10]
"""

from __future__ import annotations

import argparse
import time

import torch
from _common import command_line, machine_line, make_data
from sklearn.model_selection import GridSearchCV

from fusekit import FusionClassifier


def search(X, y, n_jobs: int, epochs: int) -> float:
    grid = {"fusion": ["concat", "late"], "backbone__hidden": [32, 64]}
    start = time.perf_counter()
    GridSearchCV(  # refit=False: the final refit is one serial fit, not cross-validation
        FusionClassifier(max_epochs=epochs, random_state=0), grid, cv=3, n_jobs=n_jobs, refit=False
    ).fit(X, y)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=8000)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(command_line())
    print(machine_line())
    X, y = make_data(args.samples, [32, 48, 64])
    search(X, y, 1, 1)  # warm up this process (torch's first-use set-up, the registry)
    search(X, y, 2, 1)  # and start the worker pool once
    serial = min(search(X, y, 1, args.epochs) for _ in range(2))
    parallel = min(search(X, y, 2, args.epochs) for _ in range(2))
    print(
        f"GridSearchCV 12 fits, best of 2: serial {serial:.1f} s, n_jobs=2 {parallel:.1f} s, "
        f"speed-up {serial / parallel:.2f} (target >= 1.6)"
    )


if __name__ == "__main__":
    main()
