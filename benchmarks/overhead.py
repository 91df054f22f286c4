"""Per-batch overhead of FusionClassifier against a plain hand-written PyTorch loop.

Trains the same network on the same data (default: 20,000 samples, 3 vector modalities, batch 128,
10 epochs, Adam) three ways, alternating, ``--repeats`` times:

* ``fusekit``: ``FusionClassifier.fit`` (validation, standardisation, skorch loop, hooks);
* ``loop(FusionNetwork)``: a hand-written loop over the identical ``FusionNetwork`` module;
* ``loop(plain)``: a hand-written loop over an equivalent plain ``nn.Module`` (MLP per modality,
  concatenation, linear head) with no fusekit types at all.

Prints the median wall-time ratios of fit and of prediction (``predict_proba`` vs a ``no_grad``
loop). Targets: fit <= 1.15x, predict <= 1.10x. Ratios, not absolute times: machines are noisy.

    python benchmarks/overhead.py [--samples 20000 --epochs 10 --batch 128 --repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from fusekit import FusionClassifier, Modalities
from fusekit.plugin import ModalityBatch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import provenance  # noqa: E402

WIDTHS = {"audio": 40, "video": 64, "text": 24}


def make_data(n: int, seed: int = 0) -> tuple[Modalities, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 5, n)
    arrays = {
        name: (rng.normal(size=(n, width)) + 0.3 * y[:, None]).astype(np.float32)
        for name, width in WIDTHS.items()
    }
    return Modalities(arrays), y


class PlainNet(nn.Module):
    """The network FusionClassifier builds by default, written out by hand."""

    def __init__(self, hidden: int, n_classes: int) -> None:
        super().__init__()
        self.encoders = nn.ModuleList(
            nn.Sequential(nn.Linear(width, hidden), nn.ReLU()) for width in WIDTHS.values()
        )
        self.head = nn.Linear(hidden * len(WIDTHS), n_classes)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.head(
            torch.cat([enc(x) for enc, x in zip(self.encoders, inputs, strict=True)], dim=1)
        )


def statistics_of(X: Modalities) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per-modality mean and std, computed once at fit like the estimator's standardiser."""
    tensors = [torch.from_numpy(np.asarray(v, dtype=np.float32)) for v in X.values()]
    return [(t.mean(0), t.std(0)) for t in tensors]


def standardized(X: Modalities, stats=None) -> list[torch.Tensor]:
    stats = statistics_of(X) if stats is None else stats
    return [
        (torch.from_numpy(np.asarray(value, dtype=np.float32)) - mean) / std
        for value, (mean, std) in zip(X.values(), stats, strict=True)
    ]


def train_plain(X: Modalities, y: np.ndarray, args: argparse.Namespace) -> nn.Module:
    torch.manual_seed(0)
    inputs, target = standardized(X), torch.from_numpy(y).long()
    model = PlainNet(args.hidden, 5)
    model.stats = statistics_of(X)  # kept for prediction, as the estimator keeps its standardiser
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    generator = torch.Generator().manual_seed(0)
    for _ in range(args.epochs):
        order = torch.randperm(len(target), generator=generator)
        for start in range(0, len(target), args.batch):
            rows = order[start : start + args.batch]
            optimizer.zero_grad()
            loss = F.cross_entropy(model(*(x[rows] for x in inputs)), target[rows])
            loss.backward()
            optimizer.step()
    return model


def train_network_loop(X: Modalities, y: np.ndarray, args: argparse.Namespace) -> nn.Module:
    """Hand-written loop over the very FusionNetwork module the estimator builds."""
    torch.manual_seed(0)
    template = FusionClassifier(backbone__hidden=args.hidden, max_epochs=1)
    template._prepare(X, reset=True)
    network = template._build_network(5)
    inputs = dict(zip(WIDTHS, standardized(X), strict=True))
    mask = torch.ones(len(y), len(WIDTHS), dtype=torch.bool)
    target = torch.from_numpy(y).long()
    optimizer = torch.optim.Adam(network.parameters(), lr=0.01)
    generator = torch.Generator().manual_seed(0)
    network.train()
    for _ in range(args.epochs):
        order = torch.randperm(len(target), generator=generator)
        for start in range(0, len(target), args.batch):
            rows = order[start : start + args.batch]
            batch = ModalityBatch(
                {m: x[rows] for m, x in inputs.items()}, mask[rows], complete=True
            )
            optimizer.zero_grad()
            loss = F.cross_entropy(network(batch).logits, target[rows])
            loss.backward()
            optimizer.step()
    return network


def predict_plain(model: nn.Module, X: Modalities, batch: int) -> np.ndarray:
    inputs = standardized(X, model.stats)
    model.eval()
    with torch.no_grad():
        chunks = [
            torch.softmax(model(*(x[s : s + batch] for x in inputs)), dim=1)
            for s in range(0, len(inputs[0]), batch)
        ]
    return torch.cat(chunks).numpy()


def timed(fn, *args):
    """(wall seconds, CPU seconds of this process, result)."""
    start, cpu = time.perf_counter(), time.process_time()
    result = fn(*args)
    return time.perf_counter() - start, time.process_time() - cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    X, y = make_data(args.samples)
    print("\n".join(provenance.header_lines()))
    print(
        f"data: {args.samples} samples, {len(WIDTHS)} modalities {list(WIDTHS.values())}, "
        f"batch {args.batch}, {args.epochs} epochs, hidden {args.hidden}, {args.repeats} repeats"
    )
    # warm-up (imports, allocator, registry) outside the timed repeats
    FusionClassifier(max_epochs=1, random_state=0).fit(X[:512], y[:512]).predict(X[:512])
    train_plain(X[:512], y[:512], argparse.Namespace(**{**vars(args), "epochs": 1}))
    names = ("fit", "loop_net", "loop_plain", "pred", "pred_plain")
    wall: dict[str, list[float]] = {k: [] for k in names}
    cpu: dict[str, list[float]] = {k: [] for k in names}

    def record(name: str, fn, *fn_args):
        seconds, cpu_seconds, result = timed(fn, *fn_args)
        wall[name].append(seconds)
        cpu[name].append(cpu_seconds)
        return result

    for _ in range(args.repeats):
        estimator = FusionClassifier(
            backbone__hidden=args.hidden,
            max_epochs=args.epochs,
            batch_size=args.batch,
            predict_batch_size=1024,
            random_state=0,
        )
        record("fit", estimator.fit, X, y)
        record("loop_net", train_network_loop, X, y, args)
        plain = record("loop_plain", train_plain, X, y, args)
        record("pred", estimator.predict_proba, X)
        record("pred_plain", predict_plain, plain, X, 1024)
    for clock, times in (("wall", wall), ("cpu", cpu)):
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"median {clock} seconds: " + ", ".join(f"{k} {v:.3f}" for k, v in med.items()))
        for label, ratio, target in (
            ("fit vs loop(FusionNetwork)", med["fit"] / med["loop_net"], 1.15),
            ("fit vs loop(plain nn.Module)", med["fit"] / med["loop_plain"], 1.15),
            ("predict_proba vs no_grad loop", med["pred"] / med["pred_plain"], 1.10),
        ):
            print(f"{clock} ratio {label}: {ratio:.3f} (target <= {target})")
    ratios = [f / p for f, p in zip(wall["fit"], wall["loop_plain"], strict=True)]
    print("per-repeat fit/plain ratios: " + ", ".join(f"{r:.3f}" for r in ratios))


if __name__ == "__main__":
    main()
