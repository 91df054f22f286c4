"""Robustness sweep: how accuracy falls as one modality is corrupted, for three fusion setups.

    python examples/robustness_sweep.py [--out DIR]            # full run (about 10 s on one core)
    python examples/robustness_sweep.py --quick                # a few seconds

Trains on clean UCI Multiple Features (views ``fou``, ``kar``, ``zer``), then, at test time only,
adds Gaussian noise (in units of each feature's training std) to the ``kar`` view and removes it
(all-NaN rows, i.e. absent) from a growing fraction of samples, with
``fusekit.robustness.robustness_curve``. The curves go to ``DIR/robustness.png`` (default: a new
temporary directory; needs matplotlib, ``pip install fusekit-learn[plot]``).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from _quick import example_parser
from sklearn.model_selection import train_test_split  # noqa: E402

from fusekit import FusionClassifier  # noqa: E402
from fusekit.datasets import load_mfeat  # noqa: E402
from fusekit.robustness import plot_robustness, robustness_curve  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = example_parser(
        __doc__.splitlines()[0], "small data, few epochs and levels, for the test suite"
    )
    parser.add_argument("--out", type=Path, default=None, help="folder for robustness.png")
    return parser.parse_args()


def main(quick: bool, out: Path | None) -> Path:
    X, y = load_mfeat(views=["fou", "kar", "zer"])
    rows = range(len(y))
    if quick:
        rows, _ = train_test_split(rows, train_size=400, stratify=y, random_state=0)
    train, test = train_test_split(rows, test_size=0.25, stratify=y[rows], random_state=0)

    setups = {
        "concat": dict(fusion="concat"),
        "late": dict(fusion="late"),
        "concat + modality_dropout": dict(
            fusion="concat", fusion__indicators=True, weighting="modality_dropout"
        ),
    }
    sweeps = {"gaussian": [0, 0.5, 1, 2, 4], "remove": [0, 0.25, 0.5, 0.75, 1]}
    if quick:
        sweeps = {"gaussian": [0, 2], "remove": [0, 1]}
    curves = []
    for name, params in setups.items():
        model = FusionClassifier(max_epochs=3 if quick else 30, random_state=0, **params)
        model.fit(X[train], y[train])
        for corruption, levels in sweeps.items():
            curve = robustness_curve(
                model, X[test], y[test], modality="kar", corruption=corruption,
                levels=levels, n_repeats=1 if quick else 3,
            )  # fmt: skip
            curves.append(curve.assign(setup=name))
    table = pd.concat(curves, ignore_index=True)
    print(table.pivot_table(index=["corruption", "level"], columns="setup", values="mean").round(3))

    # plot_robustness draws one line per (modality, corruption); label the lines by setup instead.
    figure, axes = plt.subplots(1, len(sweeps), figsize=(10, 3.5))
    for ax, corruption in zip(axes, sweeps, strict=True):
        part = table[table["corruption"] == corruption].assign(modality=lambda t: t["setup"])
        plot_robustness(part, ax=ax, title=f"'kar' corrupted: {corruption}")
        ax.legend(title="setup")
    folder = out or Path(tempfile.mkdtemp(prefix="fusekit-robustness-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "robustness.png"
    figure.savefig(path, dpi=100)
    print("wrote", path)
    return path


if __name__ == "__main__":
    arguments = parse_args()
    main(arguments.quick, arguments.out)
