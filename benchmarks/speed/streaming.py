"""Streaming ``fit`` (``fusekit.ParquetSource``) against in-memory ``fit``: peak memory as the rows
grow 10x, accuracy on the same data, throughput.

Data: mfeat-like views (two views of 76 and 64 features, 10 classes, each view a noisy,
class-dependent signal of its own strength), generated row group by row group into Parquet files
(10,000 rows per row group) in a temporary folder; 20,000 and 200,000 training rows and 5,000
test rows. Each memory figure is the peak resident set (``resource.getrusage`` ``ru_maxrss``) of
a fresh Python process that imports fusekit, fits once and exits; the streamed process reads the
file by row groups (``buffer_rows`` 10,000), the in-memory one reads it whole with pandas and
fits the DataFrame. "Above baseline" subtracts the peak of a process that imports the same
modules and fits 64 rows (torch's own footprint). One torch thread everywhere.

    python benchmarks/speed/streaming.py [--out FILE]   # writes benchmarks/results/streaming.md

The whole script runs in a few minutes on two shared cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results" / "streaming.md"
VIEWS = {"fou": (76, 0.35), "kar": (64, 0.25)}  # width, class signal per feature
N_CLASSES = 10
ROW_GROUP = 10_000
BUFFER_ROWS = 10_000
SIZES = (20_000, 200_000)
TEST_ROWS = 5_000
SEEDS = (0, 1, 2)
PARAMS = dict(max_epochs=2, batch_size=256, lr=1e-3, verbose=0)


def write_views(path: Path, n_rows: int, seed: int) -> None:
    """``n_rows`` rows of the views into ``path``, one row group of ``ROW_GROUP`` rows at a time
    (the generator's memory is one row group too)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    centres = np.random.default_rng(1234)  # the same classes in every file
    means = {v: centres.normal(size=(N_CLASSES, w)) for v, (w, _) in VIEWS.items()}
    rng = np.random.default_rng(seed)
    writer = None
    for start in range(0, n_rows, ROW_GROUP):
        n = min(ROW_GROUP, n_rows - start)
        y = rng.integers(0, N_CLASSES, n)
        columns = {}
        for view, (width, signal) in VIEWS.items():
            values = signal * means[view][y] + rng.normal(size=(n, width))
            columns.update({f"{view}__{j}": values[:, j].astype(np.float32) for j in range(width)})
        columns["label"] = y
        table = pa.table(columns)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=ROW_GROUP)
    writer.close()


def worker(mode: str, path: str, seed: int, test: str | None) -> dict:
    """One fit in this process; its peak memory, fit time and (with ``test``) accuracy."""
    import resource

    import pandas as pd
    import torch

    from fusekit import FusionClassifier
    from fusekit.streaming import ParquetSource

    torch.set_num_threads(1)
    # every process first fits 64 rows (torch's and skorch's one-off set-up is not timed); the
    # baseline process does only that
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(64, 4)), columns=["a__0", "a__1", "b__0", "b__1"])
    FusionClassifier(max_epochs=1, random_state=0).fit(frame, np.arange(64) % 2)
    model = FusionClassifier(random_state=seed, **PARAMS)
    start = time.perf_counter()
    if mode == "baseline":
        rows = 64
    elif mode == "stream":
        source = ParquetSource(path, target="label", buffer_rows=BUFFER_ROWS)
        model.fit(source)
        rows = source.n_rows
    else:
        frame = pd.read_parquet(path)
        y = frame.pop("label").to_numpy()
        model.fit(frame, y)
        rows = len(y)
        del frame, y
    fit_s = time.perf_counter() - start
    result = {"maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    result |= {"fit_s": fit_s, "rows": rows}
    if test:
        frame = pd.read_parquet(test)
        y = frame.pop("label").to_numpy()
        result["accuracy"] = float(model.score(frame, y))
    return result


def run_worker(*args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env |= {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, __file__, "--worker", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def header_lines(wall: float) -> list[str]:
    """The shared provenance lines (``benchmarks/provenance.py``), with pyarrow's and dask's
    versions, then this script's threads and wall time. Imports torch, so it runs after the
    last worker (the workers are fresh processes either way)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import provenance
    import torch

    torch.set_num_threads(1)  # the machine line records the workers' one thread
    return [
        "```",
        *provenance.header_lines(extra_versions=("pyarrow", "dask")),
        "```",
        "",
        f"One torch thread per process (OMP_NUM_THREADS=1 in each worker); whole script "
        f"{wall / 60:.1f} min.",
    ]


def main(out: Path) -> None:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        files = {n: Path(folder) / f"train_{n}.parquet" for n in SIZES}
        for n, path in files.items():
            write_views(path, n, seed=n)
        test = Path(folder) / "test.parquet"
        write_views(test, TEST_ROWS, seed=7)
        sizes_mib = {n: path.stat().st_size / 2**20 for n, path in files.items()}
        baseline = run_worker("baseline", "-", "0", "")
        memory = {
            (mode, n): run_worker(mode, str(files[n]), "0", "")
            for n in SIZES
            for mode in ("stream", "memory")
        }
        small = files[SIZES[0]]
        accuracy = {
            (mode, seed): run_worker(mode, str(small), str(seed), str(test))["accuracy"]
            for seed in SEEDS
            for mode in ("stream", "memory")
        }
    lines = report(baseline, memory, accuracy, sizes_mib, time.perf_counter() - started)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def report(baseline, memory, accuracy, sizes_mib, wall) -> list[str]:
    base = baseline["maxrss_mib"]
    lines = [
        "# Streaming fit against in-memory fit: peak memory, accuracy, throughput",
        "",
        *header_lines(wall),
        "",
        f"Data: mfeat-like views {', '.join(f'{v} ({w})' for v, (w, _) in VIEWS.items())}, "
        f"{N_CLASSES} classes, generated to Parquet (float32, {ROW_GROUP:,} rows per row group): "
        + ", ".join(f"{n:,} rows = {sizes_mib[n]:.0f} MiB on disk" for n in SIZES)
        + f". FusionClassifier({', '.join(f'{k}={v}' for k, v in PARAMS.items())}), "
        f"streamed with ParquetSource(buffer_rows={BUFFER_ROWS:,}), shuffle on.",
        "",
        "## Peak memory (max RSS of a fresh process per fit)",
        "",
        f"Baseline (imports + a 64-row fit): {base:.0f} MiB.",
        "",
        "| fit | rows | max RSS MiB | above baseline MiB | fit s | rows/s (x epochs) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    epochs = PARAMS["max_epochs"]
    for (mode, n), result in memory.items():
        label = "streaming (ParquetSource)" if mode == "stream" else "in memory (read_parquet)"
        lines.append(
            f"| {label} | {n:,} | {result['maxrss_mib']:.0f} | {result['maxrss_mib'] - base:.0f} "
            f"| {result['fit_s']:.1f} | {n * epochs / result['fit_s']:,.0f} |"
        )
    small, large = SIZES
    lines.append("")
    for mode, label in (("stream", "streaming"), ("memory", "in-memory")):
        low, high = memory[(mode, small)]["maxrss_mib"], memory[(mode, large)]["maxrss_mib"]
        lines.append(
            f"- {label}: rows x{large // small}, max RSS x{high / low:.2f} "
            f"({(high - low) / low:+.0%}), above baseline {low - base:.0f} -> "
            f"{high - base:.0f} MiB."
        )
    ratio = [(memory[("memory", n)]["fit_s"] / memory[("stream", n)]["fit_s"], n) for n in SIZES]
    lines.append(
        "- throughput streaming / in-memory (fit time of in-memory / streaming; each fit timed "
        "after a 64-row warm-up fit in the same process; the in-memory time includes the "
        "conversion of the DataFrame, not pandas' read): "
        + ", ".join(f"{r:.2f} at {n:,} rows" for r, n in ratio)
        + "."
    )
    lines += [
        "",
        f"## Accuracy on {TEST_ROWS:,} held-out rows ({small:,} training rows, seeds "
        f"{list(SEEDS)})",
        "",
        "| seed | streaming | in memory | difference |",
        "|---:|---:|---:|---:|",
    ]
    differences = []
    for seed in SEEDS:
        streamed, whole = accuracy[("stream", seed)], accuracy[("memory", seed)]
        differences.append(streamed - whole)
        lines.append(f"| {seed} | {streamed:.4f} | {whole:.4f} | {streamed - whole:+.4f} |")
    means = {mode: [accuracy[(mode, s)] for s in SEEDS] for mode in ("stream", "memory")}
    lines.append(
        "| mean ± sd | "
        + " | ".join(
            f"{statistics.mean(v):.4f} ± {statistics.stdev(v):.4f}" for v in means.values()
        )
        + " | |"
    )
    lines += [
        "",
        f"Mean difference streaming - in memory: {statistics.mean(differences):+.4f} (sd "
        f"{statistics.stdev(differences):.4f} over the seeds). The two differ only in the order "
        f"rows are visited (chunks shuffled, rows shuffled within {BUFFER_ROWS:,}-row windows, "
        "against a full shuffle), and in the float rounding of the merged statistics.",
        "",
        "This file is written entirely by benchmarks/speed/streaming.py.",
    ]
    return lines


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=4, metavar=("MODE", "PATH", "SEED", "TEST"))
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help="the report (default: %(default)s)"
    )
    args = parser.parse_args()
    if args.worker:
        mode, path, seed, test = args.worker
        print(json.dumps(worker(mode, path, int(seed), test or None)))
    else:
        main(args.out)
