"""Robustness protocols on UCI Multiple Features: noise per view, and every view subset removed.

    .venv/bin/python benchmarks/datasets/mfeat_robustness.py [out.png]

Fits FusionClassifier(fusion="concat") on a stratified 80 % of the digits, then prints the
gaussian-noise curve of each view (levels in units of each feature's std), the modality-removal
table (one view kept / one view removed) and writes the curve plot.
"""

from __future__ import annotations

import sys

import torch
from sklearn.model_selection import train_test_split

from fusekit import FusionClassifier, Modalities
from fusekit.datasets import load_mfeat
from fusekit.robustness import missing_modality_table, plot_robustness, robustness_curve


def main(png: str = "mfeat_robustness.png") -> None:
    torch.set_num_threads(1)
    print("command:", " ".join([sys.executable, *sys.argv]))
    X, y = load_mfeat()
    train, test = train_test_split(range(len(y)), test_size=0.2, stratify=y, random_state=0)
    model = FusionClassifier(fusion="concat", random_state=0).fit(X[train], y[train])
    X_test: Modalities = X[test]
    curve = robustness_curve(model, X_test, y[test], levels=[0, 0.5, 1, 2, 4], n_repeats=3)
    print(curve.pivot(index="modality", columns="level", values="mean").round(3).to_string())
    table = missing_modality_table(model, X_test, y[test])
    keep = (table["n_present"] >= len(X.keys()) - 1) | (table["n_present"] == 1)
    print(table[keep].round(3).to_string(index=False))
    plot_robustness(curve, title="UCI Multiple Features: noise on one view").savefig(png)
    print("wrote", png)


if __name__ == "__main__":
    main(*sys.argv[1:])
