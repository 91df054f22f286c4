"""UCI Multiple Features: stratified 5-fold CV accuracy of FusionClassifier(fusion="concat").

    .venv/bin/python benchmarks/datasets/mfeat_cv.py      # all six views, then each view alone

Prints the command, the machine and the mean/std accuracy per configuration (figures on
fusekit/datasets/data/mfeat.md).
"""

from __future__ import annotations

import os
import platform
import sys
import time

import torch
from sklearn.model_selection import StratifiedKFold, cross_val_score

from fusekit import FusionClassifier
from fusekit.datasets import load_mfeat
from fusekit.datasets.real import MFEAT_VIEWS


def main() -> None:
    torch.set_num_threads(1)
    print("command:", " ".join([sys.executable, *sys.argv]))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread")  # fmt: skip
    _, y = load_mfeat()
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    for views in [list(MFEAT_VIEWS), *([view] for view in MFEAT_VIEWS)]:
        X, _ = load_mfeat(views=views)
        start = time.perf_counter()
        scores = cross_val_score(FusionClassifier(fusion="concat", random_state=0), X, y, cv=folds)
        print(f"{'+'.join(views):24s} accuracy {scores.mean():.4f} +/- {scores.std():.4f} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
