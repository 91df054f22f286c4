"""Run by ``tests/engine/test_data_parallel.py`` under ``torchrun --nproc_per_node 2`` (gloo, CPU).

Every rank writes ``rank<r>.json`` into the folder given as the first argument: per scenario the
SHA-256 of the trained weights (equal on every rank iff the ranks trained one model), and on rank
0 also the largest weight difference to a single process trained with the global batch
(``batch_size x world size``), the refusals' messages and the lr of every step.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import traceback
from pathlib import Path

import numpy as np
import torch

from fusekit import FusionClassifier, Modalities
from fusekit.engine.registry import get_registry
from fusekit.plugin import WarmupCosine

torch.set_num_threads(1)
OUT = Path(sys.argv[1])
ONLY = set(sys.argv[2:])  # kind:name entries to run (all when empty)
RANK = int(os.environ["RANK"])
BATCH = 8  # rows per process and step: 16 per step over both processes
N_ROWS = 48  # 3 steps of 16 rows per epoch


def digest(model: FusionClassifier) -> str:
    state = model.module_.state_dict()
    return hashlib.sha256(
        b"".join(v.detach().numpy().tobytes() for v in state.values())
    ).hexdigest()


def largest_difference(a: FusionClassifier, b: FusionClassifier) -> float:
    pairs = zip(a.module_.state_dict().values(), b.module_.state_dict().values(), strict=True)
    return max((float((x.float() - y.float()).abs().max()) for x, y in pairs), default=0.0)


def data(form: str, missing: bool, n: int = N_ROWS, seed: int = 0) -> tuple[Modalities, np.ndarray]:
    """Two informative modalities and a third, of the given input form; with ``missing`` the
    second is absent in about a third of the rows."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    shapes = {
        "vector": [(3,), (5,), (4,)],
        "sequence": [(4, 3), (5, 5), (4, 4)],
        "image": [(2, 4, 4)] * 3,
    }[form]
    arrays = {}
    for position, shape in enumerate(shapes):
        values = rng.normal(size=(n, *shape))
        if position < 2:
            values += 1.5 * y.reshape(-1, *([1] * len(shape)))
        arrays[f"m{position}"] = values
    if missing:
        arrays["m1"][rng.random(n) < 0.35] = np.nan
    return Modalities(arrays), y


#: Settings runs whose name adds them to the registry's: OGM-GE without its gradient noise is
#: deterministic, so it can be compared with one process exactly.
VARIANTS = {
    "weighting:ogm_ge(noise=False)": ("weighting", "ogm_ge", {"weighting__noise": False}),
    # OPM modulates from its 7th epoch by default; from the first here, so that q is exercised
    "weighting:opm(warmup_epochs=0)": ("weighting", "opm", {"weighting__warmup_epochs": 0}),
}
#: State a weighting derives from batch statistics outside its buffers (which DDP copies from
#: rank 0 at every forward pass, so they would agree anyway): must be equal on every rank.
DERIVED_STATE = (
    "drop_probability",
    "modulated_batches",
    "weight_history",
    "speeds",
    "turn",
    "projector",
    "slower",
)


def derived_state(model: FusionClassifier) -> list:
    state = []
    for weighting in model.module_.weightings:
        for name in DERIVED_STATE:
            value = getattr(weighting, name, None)
            if isinstance(value, torch.Tensor):
                value = value.tolist()
            state.append([name, value])
    return state


#: Components built only from a model the user names (``path=``): no default to train here.
NEEDS_A_USER_MODEL = {"backbone:hf_text", "backbone:hf_image"}


def components() -> dict[str, tuple[str, str, dict]]:
    registry = get_registry()
    runs = {
        f"{kind}:{name}": (kind, name, {})
        for kind in ("backbone", "calibration", "fusion", "weighting")
        for name in registry.names(kind)
    }
    return {**runs, **VARIANTS}


def component_runs(results: dict) -> None:
    registry = get_registry()
    for key, (kind, name, params) in components().items():
        if ONLY and key not in ONLY:
            continue
        cls = registry.get(kind, name)
        form = cls.input_kinds[0] if kind == "backbone" else "vector"
        entry: dict = {}
        # raw inputs (this script builds numbers only), or a model the user must name (path=):
        # fusekit-transformers' own tests train those
        if form in ("text", "categorical") or key in NEEDS_A_USER_MODEL:
            results[key] = {"raw": True}
            continue
        # complete rows: compared with one process; missing rows: the ranks agree
        for label, missing in (("complete", False), ("missing", True)):
            X, y = data(form, missing)
            # SGD: float rounding (batch 8 against 16) stays ~1e-7 (Adam would magnify it
            # on near-zero gradients), so a real disagreement stands out
            settings = dict(
                max_epochs=1,
                shuffle=False,
                random_state=0,
                optimizer="sgd",
                lr=0.1,
                lr_schedule=None,
                **params,
            )
            try:
                model = FusionClassifier(**{kind: name}, batch_size=BATCH, **settings).fit(X, y)
            except ValueError as error:
                if "data_parallel_safe" not in str(error):
                    raise
                entry = {"refused": str(error)}
                break
            entry[label] = digest(model)
            entry[f"{label}_state"] = derived_state(model)
            if RANK == 0 and not missing:
                single = FusionClassifier(
                    **{kind: name}, batch_size=2 * BATCH, distributed=False, **settings
                ).fit(X, y)
                entry[f"{label}_difference"] = largest_difference(model, single)
        results[key] = entry


def main_run(results: dict) -> None:
    """The full loop: shuffling, early stopping, a warm-up / cosine schedule, saving, accuracy."""
    X, y = data("vector", missing=False, n=320, seed=1)
    X_test, y_test = data("vector", missing=False, n=400, seed=2)
    settings = dict(
        max_epochs=4,
        random_state=0,
        lr=0.02,
        lr_schedule=WarmupCosine(warmup=0.3),
        early_stopping=True,
        validation_fraction=0.2,
        n_iter_no_change=50,
    )
    model = FusionClassifier(batch_size=16, **settings).fit(X, y)
    path = model.save(OUT / "model.fk")
    results["main"] = {
        "weights": digest(model),
        "accuracy": float(model.score(X_test, y_test)),
        "event_lr": [
            row["event_lr"]
            for epoch in model.net_.history
            for row in epoch["batches"]
            if "event_lr" in row
        ],
        "loss_curve": model.loss_curve_,
        "validation_scores": model.validation_scores_,
        "saved": str(path),
        "exists_after_save": (OUT / "model.fk").exists(),
    }
    if RANK == 0:
        single = FusionClassifier(batch_size=32, distributed=False, **settings).fit(X, y)
        results["main"]["single_accuracy"] = float(single.score(X_test, y_test))
        results["main"]["single_event_lr"] = [
            row["event_lr"]
            for epoch in single.net_.history
            for row in epoch["batches"]
            if "event_lr" in row
        ]
        results["main"]["single_weights_difference"] = largest_difference(model, single)


def weighted_run(results: dict) -> None:
    """Sample weights: one process with the doubled batch trains the same weights."""
    X, y = data("vector", missing=False)
    weights = np.random.default_rng(3).uniform(0.1, 3.0, len(y))
    settings = dict(max_epochs=2, shuffle=False, random_state=0, optimizer="sgd", lr=0.1)
    model = FusionClassifier(batch_size=BATCH, **settings).fit(X, y, sample_weight=weights)
    results["weighted"] = {"weights": digest(model), "loss_curve": model.loss_curve_}
    if RANK == 0:
        single = FusionClassifier(batch_size=2 * BATCH, distributed=False, **settings)
        single.fit(X, y, sample_weight=weights)
        results["weighted"]["single_weights_difference"] = largest_difference(model, single)
        results["weighted"]["single_loss_curve"] = single.loss_curve_


def continued_run(results: dict) -> None:
    """partial_fit on two chunks and a warm start, with random_state=None (rank 0's seeds)."""
    X, y = data("vector", missing=True)
    chunked = FusionClassifier(weighting="agm", batch_size=BATCH, random_state=None)
    for rows in (slice(0, 24), slice(24, None)):
        chunked.partial_fit(X[rows], y[rows], classes=[0, 1])
    warm = FusionClassifier(weighting="ogm_ge", batch_size=BATCH, max_epochs=1, warm_start=True)
    warm.fit(X, y).fit(X, y)
    results["continued"] = {
        "partial_fit": digest(chunked),
        "warm_start": digest(warm),
        "epochs": [chunked.n_iter_, warm.n_iter_],
    }


(OUT / f"pid{RANK}").write_text(str(os.getpid()))  # for the test to end us on a timeout
results: dict = {}
try:
    if not ONLY:
        main_run(results)
        weighted_run(results)
        continued_run(results)
    component_runs(results)
except BaseException:
    results["error"] = traceback.format_exc()
    raise
finally:
    (OUT / f"rank{RANK}.json").write_text(json.dumps(results, indent=1))
