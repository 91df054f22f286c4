"""Missing modalities: train and predict when some samples lack some modalities.

    python examples/missing_modalities.py            # full run (about 10 s on one core)
    python examples/missing_modalities.py --quick    # a few seconds (also FUSEKIT_EXAMPLES_QUICK=1)

The rule: a modality whose values are **all NaN for a sample is absent** for that sample. Every
fusion method receives the ``(B, M)`` presence mask and ignores the absent values. Here three
views of UCI Multiple Features lose 30 % of their rows each, independently, in training and in
test; then ``missing_modality_table`` scores every subset of views kept, and modality dropout
(``weighting="modality_dropout"``) is compared with plain training.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from _quick import example_parser
from sklearn.model_selection import train_test_split

from fusekit import FusionClassifier, Modalities
from fusekit.datasets import load_mfeat
from fusekit.robustness import missing_modality_table

VIEWS = ["fou", "kar", "zer"]


def parse_args() -> argparse.Namespace:
    parser = example_parser(
        __doc__.splitlines()[0], "small data and few epochs, for the test suite"
    )
    return parser.parse_args()


def knock_out(X: Modalities, rate: float, seed: int) -> Modalities:
    """A copy of ``X`` where each modality is absent (an all-NaN row) for ``rate`` of the rows."""
    rng = np.random.default_rng(seed)
    out = Modalities({m: x.astype(float) for m, x in X.items()})
    for m in out:
        out[m][rng.random(len(out[m])) < rate] = np.nan
    return out


def main(quick: bool) -> None:
    X, y = load_mfeat(views=VIEWS)
    rows = range(len(y))
    if quick:
        rows, _ = train_test_split(rows, train_size=400, stratify=y, random_state=0)
    train, test = train_test_split(rows, test_size=0.25, stratify=y[rows], random_state=0)
    X_train, X_test = knock_out(X[train], 0.3, seed=1), knock_out(X[test], 0.3, seed=2)
    y_train, y_test = y[train], y[test]
    present = np.column_stack([~np.isnan(X_train[m]).all(axis=1) for m in VIEWS])
    print(f"training rows: {len(y_train)}, with every view present: {present.all(axis=1).sum()}, "
          f"with none: {(~present).all(axis=1).sum()}")  # fmt: skip

    epochs = 3 if quick else 30
    models = {
        "concat": FusionClassifier(fusion="concat", fusion__indicators=True),
        "late": FusionClassifier(fusion="late"),
        "concat + modality_dropout": FusionClassifier(
            fusion="concat", fusion__indicators=True, weighting="modality_dropout"
        ),
    }
    tables = []
    for name, model in models.items():
        model.set_params(max_epochs=epochs, random_state=0).fit(X_train, y_train)
        print(f"{name:26s} accuracy on the 30%-missing test rows {model.score(X_test, y_test):.3f}")
        # Complete test rows, then every subset of views removed for everyone.
        table = missing_modality_table(model, X[test], y_test)
        tables.append(table.set_index("present")["score"].rename(name))

    print("\naccuracy with only these views present (complete test rows, others removed):")
    print(pd.concat(tables, axis=1).round(3).to_string())

    # A modality missing for everyone at predict time is fine too: its rows are all NaN.
    X_no_zer = Modalities({m: x.copy() for m, x in X[test].items()})
    X_no_zer["zer"][:] = np.nan
    proba = models["late"].predict_proba(X_no_zer)
    print(
        "\n'zer' absent for every test row: finite probabilities:", bool(np.isfinite(proba).all())
    )


if __name__ == "__main__":
    main(parse_args().quick)
