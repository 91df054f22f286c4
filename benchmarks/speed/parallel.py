"""GridSearchCV with n_jobs=2, and ``fusekit bench --n-jobs 2``, against serial on 2 cores.

joblib's loky workers start with OMP_NUM_THREADS (and torch's intra-op threads) limited to
cores // n_jobs, so two workers do not oversubscribe two cores; the serial run uses 1 thread too,
so the comparison is process parallelism only. ``refit=False``: the refit on all rows after the
search is a single serial fit and would cap the speed-up whatever the backend. Target: >= 1.6.

``fusekit bench`` is timed as users run it: the whole command (interpreter start, imports, fits,
plots and report) in a fresh process, wall clock, best of ``--bench-repeats``, serial against
``--n-jobs 2`` on the default ``processes`` backend (forked workers) and on ``joblib`` (loky),
checking that every backend wrote the same scores.

    python benchmarks/speed/parallel.py [--samples 8000 --epochs 10 --bench-repeats 2]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from _common import header, make_data
from sklearn.model_selection import GridSearchCV

from fusekit import FusionClassifier


def search(X, y, n_jobs: int, epochs: int) -> float:
    grid = {"fusion": ["concat", "late"], "backbone__hidden": [32, 64]}
    start = time.perf_counter()
    GridSearchCV(  # refit=False: the final refit is one serial fit, not cross-validation
        FusionClassifier(max_epochs=epochs, random_state=0), grid, cv=3, n_jobs=n_jobs, refit=False
    ).fit(X, y)
    return time.perf_counter() - start


BENCH_WORKLOADS = {
    "quick suite (108 fits of ~0.2 s)": ["--quiet"],
    "24 fits x 20 epochs": [
        "--dataset", "mfeat:views=fou,kar,zer", "--fusion", "concat,late,gated,mean",
        "--weighting", "none,modality_dropout", "--max-epochs", "20", "--quiet",
    ],
}  # fmt: skip
BENCH_BACKENDS = {
    "serial": ["--backend", "serial"],
    "processes x2": ["--n-jobs", "2"],
    "joblib x2": ["--backend", "joblib", "--n-jobs", "2"],
}
SCORE_KEY = ["unit_id", "scenario", "corruption", "modality", "level"]


def run_cli(arguments: list[str], out: Path) -> tuple[float, pd.DataFrame]:
    command = [
        sys.executable,
        "-m",
        "fusekit",
        "bench",
        *arguments,
        "--no-resume",
        "--out",
        str(out),
    ]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    elapsed = time.perf_counter() - start
    scores = pd.read_csv(out / "results.csv")[[*SCORE_KEY, "score"]]
    return elapsed, scores.sort_values(SCORE_KEY).reset_index(drop=True)


def bench_speedups(repeats: int) -> None:
    header = " | ".join(BENCH_BACKENDS)
    print(f"| workload | {header} | speed-up processes | speed-up joblib |")
    print("|---|" + "---|" * (len(BENCH_BACKENDS) + 2))
    with tempfile.TemporaryDirectory() as tmp:
        for workload, arguments in BENCH_WORKLOADS.items():
            times: dict[str, float] = {}
            scores: dict[str, pd.DataFrame] = {}
            for _ in range(repeats):  # alternate the backends
                for backend, extra in BENCH_BACKENDS.items():
                    elapsed, scores[backend] = run_cli([*arguments, *extra], Path(tmp) / backend)
                    times[backend] = min(times.get(backend, float("inf")), elapsed)
            for backend, frame in scores.items():
                pd.testing.assert_frame_equal(frame, scores["serial"], obj=backend)
            cells = " | ".join(f"{t:.1f} s" for t in times.values())
            print(
                f"| {workload} | {cells} | {times['serial'] / times['processes x2']:.2f} | "
                f"{times['serial'] / times['joblib x2']:.2f} |",
                flush=True,
            )
    print("every backend wrote the same scores (checked)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=8000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--bench-repeats", type=int, default=2)
    parser.add_argument("--skip-grid-search", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(header())
    if args.bench_repeats:
        bench_speedups(args.bench_repeats)
    if args.skip_grid_search:
        return
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
