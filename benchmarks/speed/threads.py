"""Wall time of a small fit, or a grid search, at fusekit's default threads against torch's.

Each case runs as its own process (whole-process wall time, imports included);
``threads_report.py`` runs the four and writes ``benchmarks/results/threads.txt`` whole::

    python benchmarks/speed/threads_report.py > benchmarks/results/threads.txt

One case alone::

    python benchmarks/speed/threads.py fit --threads default

``--threads default`` leaves ``n_jobs`` at ``None`` (one thread); ``torch`` passes ``n_jobs=-1``,
which is torch's own default: every core in this process, and inside a loky worker of the search
the threads loky started the worker with (``cores // 2``), what an estimator that does not
manage threads runs with. ``search`` is ``GridSearchCV(n_jobs=2)`` over two learning
rates, 3 folds. The script prints the score so the runs can be checked to agree.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.model_selection import GridSearchCV

from fusekit import FusionClassifier, Modalities


def make_data(n: int = 2000, seed: int = 0) -> tuple[Modalities, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    widths = {"audio": 40, "video": 64, "text": 24}
    arrays = {m: rng.normal(size=(n, w)) + 0.3 * y[:, None] for m, w in widths.items()}
    return Modalities(arrays), y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", choices=["fit", "search"])
    parser.add_argument("--threads", choices=["default", "torch"], default="default")
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    n_jobs = None if args.threads == "default" else -1
    X, y = make_data()
    model = FusionClassifier(max_epochs=args.epochs, random_state=0, n_jobs=n_jobs)
    start = time.perf_counter()
    if args.case == "fit":
        score = model.fit(X, y).score(X, y)
    else:
        search = GridSearchCV(model, {"lr": [0.003, 0.01]}, cv=3, n_jobs=2).fit(X, y)
        score = search.best_score_
    print(
        f"{args.case} threads={args.threads} (n_jobs={n_jobs}, torch default "
        f"{torch.get_num_threads()}): score {score:.4f}, {time.perf_counter() - start:.2f} s"
    )


if __name__ == "__main__":
    main()
