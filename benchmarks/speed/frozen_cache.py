"""Fit time with a heavy frozen encoder: run every batch vs once per row (remembered outputs).

Two deliberately heavy frozen encoders, each next to a small trained tabular modality:

* ``mlp``: a wide random-weight MLP (3 layers of 1024) over a 512-wide "embedding" modality;
* ``gru``: a random-weight GRU (hidden 128) over sequences of 100 steps of 16 features.

Each is fitted three ways, alternating, ``--repeats`` times (median wall time):

* ``fine-tuned``: the encoder trains (the default);
* ``frozen, run every batch``: frozen with skorch's ``Freezer`` (what users wrote before), the
  encoder runs on every batch of every epoch;
* ``frozen, remembered``: ``frozen_backbones=(name,)``, each row encoded once per fit
  (:mod:`fusekit.engine.frozen_cache`).

Also counted: rows the frozen encoder encodes per fit (``epochs * n`` vs ``n``), i.e. the
encoder passes avoided. Both frozen fits end with the same weights (shuffle off; checked).

    python benchmarks/speed/frozen_cache.py [--samples 2000 --epochs 10 --repeats 3]
                                            [--threads 1 --device cpu]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from skorch.callbacks import Freezer

from fusekit import FusionClassifier, Modalities
from fusekit.builtin.gru_backbone import GRUBackbone
from fusekit.builtin.mlp_backbone import MLPBackbone

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import provenance  # noqa: E402

ENCODERS = {
    "mlp": ({"backbone__emb__hidden": 1024, "backbone__emb__depth": 3}, "mlp"),
    "gru": ({"backbone__emb__hidden": 128}, "gru"),
}


TAB_WIDTH = 8


def make_data(kind: str, n: int, seed: int = 0) -> tuple[Modalities, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    if kind == "mlp":
        emb = rng.normal(size=(n, 512)) + 0.2 * y[:, None]
    else:
        emb = rng.normal(size=(n, 100, 16)) + 0.2 * y[:, None, None]
    tab = rng.normal(size=(n, TAB_WIDTH)) + 0.5 * y[:, None]
    return Modalities(emb=emb.astype(np.float32), tab=tab.astype(np.float32)), y


@contextlib.contextmanager
def counting_rows() -> Iterator[list[int]]:
    """Rows the ``emb`` encoder encodes while inside (MLP and GRU ``encode`` wrapped; the
    tabular modality, 8 features wide, is not counted)."""
    rows: list[int] = []
    originals = {cls: cls.encode for cls in (MLPBackbone, GRUBackbone)}

    def wrap(original):  # noqa: ANN001, ANN202
        def encode(self, x, steps):  # noqa: ANN001, ANN202
            if x.shape[-1] != TAB_WIDTH:
                rows.append(x.shape[0])
            return original(self, x, steps)

        return encode

    for cls, original in originals.items():
        cls.encode = wrap(original)
    try:
        yield rows
    finally:
        for cls, original in originals.items():
            cls.encode = original


def fit(
    kind: str, mode: str, X: Modalities, y: np.ndarray, epochs: int, device: str
) -> tuple[float, int, Any]:
    params, backbone = ENCODERS[kind]
    extra: dict = {}
    if mode == "frozen, run every batch":
        extra["callbacks"] = [Freezer("backbones.emb.*")]
    elif mode == "frozen, remembered":
        extra["frozen_backbones"] = ("emb",)
    model = FusionClassifier(
        backbone={"emb": backbone, "tab": "mlp"},
        max_epochs=epochs,
        batch_size=128,
        shuffle=False,
        random_state=0,
        device=device,
        **params,
        **extra,
    )
    with counting_rows() as rows:
        start = time.perf_counter()
        model.fit(X, y)
        seconds = time.perf_counter() - start
    return seconds, sum(rows), model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print("\n".join(provenance.header_lines()))
    print(
        f"device: {args.device}"
        + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else "")
        + f"; n={args.samples}, epochs={args.epochs}, batch 128"
    )
    modes = ("fine-tuned", "frozen, run every batch", "frozen, remembered")
    for kind in ENCODERS:
        X, y = make_data(kind, args.samples)
        times: dict[str, list[float]] = {mode: [] for mode in modes}
        counts: dict[str, int] = {}
        models = {}
        for _ in range(args.repeats):
            for mode in modes:
                seconds, rows, models[mode] = fit(kind, mode, X, y, args.epochs, args.device)
                times[mode].append(seconds)
                counts[mode] = rows
        running, remembered = models["frozen, run every batch"], models["frozen, remembered"]
        same = all(
            torch.equal(a, b)
            for a, b in zip(
                running.module_.state_dict().values(),
                remembered.module_.state_dict().values(),
                strict=True,
            )
        )
        print(f"\n{kind} encoder ({'same weights' if same else 'WEIGHTS DIFFER'} frozen both ways)")
        base = statistics.median(times["frozen, run every batch"])
        for mode in modes:
            median = statistics.median(times[mode])
            print(
                f"  {mode:<24} fit {median:7.2f} s  ({base / median:5.2f}x vs run every batch)  "
                f"encoder rows {counts[mode]}"
            )
        avoided = counts["frozen, run every batch"] - counts["frozen, remembered"]
        print(
            f"  encoder row passes avoided: {avoided} = (epochs - 1) x n = "
            f"{(args.epochs - 1) * args.samples}"
        )


if __name__ == "__main__":
    main()
