"""Shared helpers for the speed benchmarks: data, the provenance header, alternating timing."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from fusekit import FusionClassifier, Modalities
from fusekit.plugin import ModalityBatch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import provenance  # noqa: E402


def header() -> str:
    """The provenance lines every speed results file starts with (commit, command, versions,
    machine: ``benchmarks/provenance.py``); print it after setting the torch thread count."""
    return "\n".join(provenance.header_lines())


def make_data(n: int, widths: list[int], n_classes: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    arrays = {
        f"m{i}": (rng.normal(size=(n, w)) + 0.3 * y[:, None]).astype(np.float32)
        for i, w in enumerate(widths)
    }
    return Modalities(arrays), y


def hand_loop(
    estimator: FusionClassifier, X: Modalities, y: np.ndarray, gather: str = "getitem"
) -> torch.nn.Module:
    """Train the very network ``estimator`` would build with a plain PyTorch loop.

    Same data (standardised once), epochs, batch size, optimiser (Adam, same lr), shuffling.
    ``gather="getitem"`` selects each batch's rows as most hand-written loops do (``x[rows]``);
    ``"index_select"`` uses ``x.index_select(0, rows)``, 4-6x faster on CPU, as fusekit does.
    """
    torch.manual_seed(0)
    prepared = estimator._prepare(X, reset=True)
    network = estimator._build_network(int(y.max()) + 1)
    inputs = {m: torch.from_numpy(a) for m, a in prepared.arrays.items()}
    mask = torch.from_numpy(prepared.mask)
    target = torch.from_numpy(y).long()
    estimator._assemble(int(y.max()) + 1, network=network)  # lr="auto" resolved as fusekit does
    optimizer = torch.optim.Adam(network.parameters(), lr=estimator.lr_)
    generator = torch.Generator().manual_seed(0)
    network.train()
    batch_size = estimator.batch_size
    for _ in range(estimator.max_epochs):
        order = torch.randperm(len(target), generator=generator)
        for start in range(0, len(target), batch_size):
            rows = order[start : start + batch_size]
            if gather == "getitem":
                features = {m: x[rows] for m, x in inputs.items()}
                batch_mask, batch_target = mask[rows], target[rows]
            else:
                features = {m: x.index_select(0, rows) for m, x in inputs.items()}
                batch_mask, batch_target = mask.index_select(0, rows), target.index_select(0, rows)
            batch = ModalityBatch(features, batch_mask, complete=True)
            optimizer.zero_grad()
            loss = F.cross_entropy(network(batch).logits, batch_target)
            loss.backward()
            optimizer.step()
    return network


def hand_predict(
    network: torch.nn.Module, estimator: FusionClassifier, X: Modalities
) -> np.ndarray:
    prepared = estimator._prepare(X, reset=False)
    inputs = {m: torch.from_numpy(a) for m, a in prepared.arrays.items()}
    mask = torch.from_numpy(prepared.mask)
    network.eval()
    size = estimator.predict_batch_size
    with torch.inference_mode():
        chunks = [
            torch.softmax(
                network(
                    ModalityBatch(
                        {m: x[s : s + size] for m, x in inputs.items()},
                        mask[s : s + size],
                        complete=True,
                    )
                ).logits,
                dim=1,
            )
            for s in range(0, len(mask), size)
        ]
    return torch.cat(chunks).numpy()


def alternate(
    functions: dict[str, Callable[[], object]], repeats: int, clock: str = "cpu"
) -> dict[str, float]:
    """Median time of each function, run in alternation ``repeats`` times after a warm-up.

    ``clock="cpu"`` measures this process's CPU time (robust when other processes share the
    machine; equal to wall time for single-threaded torch on an idle machine), ``"wall"`` the
    elapsed time.
    """
    times = alternate_times(functions, repeats, clock)
    return {name: statistics.median(values) for name, values in times.items()}


def alternate_times(
    functions: dict[str, Callable[[], object]], repeats: int, clock: str = "cpu"
) -> dict[str, list[float]]:
    """Every repeat's time of each function, run in alternation after a warm-up."""
    timer = time.process_time if clock == "cpu" else time.perf_counter
    for function in functions.values():
        function()
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = timer()
            function()
            times[name].append(timer() - start)
    return times


def paired_ratio(times: dict[str, list[float]], numerator: str, denominator: str) -> float:
    """Median over repeats of ``numerator / denominator`` measured side by side in that repeat.

    Pairing cancels the slow drifts of a shared virtual machine (its speed changes by tens of
    per cent over minutes), which a ratio of two medians taken over the whole run does not.
    """
    pairs = zip(times[numerator], times[denominator], strict=True)
    return statistics.median(a / b for a, b in pairs)
