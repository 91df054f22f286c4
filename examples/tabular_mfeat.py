"""Two tabular modalities: cross-validate fusion methods on UCI Multiple Features.

    python examples/tabular_mfeat.py            # full run (about 15 s on one core)
    python examples/tabular_mfeat.py --quick    # a few seconds (also FUSEKIT_EXAMPLES_QUICK=1)

Each handwritten digit is described by two unrelated feature blocks: 76 Fourier coefficients of
the contour (``fou``) and 64 Karhunen-Loève coefficients (``kar``). ``GridSearchCV`` picks the
fusion method like any other hyperparameter, then the best model is scored on held-out digits.
"""

from __future__ import annotations

import argparse

import pandas as pd
from _quick import example_parser
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split

from fusekit import FusionClassifier
from fusekit.datasets import load_mfeat


def parse_args() -> argparse.Namespace:
    parser = example_parser(
        __doc__.splitlines()[0], "small data and few epochs, for the test suite"
    )
    return parser.parse_args()


def main(quick: bool) -> None:
    X, y = load_mfeat(views=["fou", "kar"])  # Modalities(fou=(2000, 76), kar=(2000, 64)), y digits
    rows = range(len(y))
    if quick:  # 400 digits, stratified, so every class is still there
        rows, _ = train_test_split(rows, train_size=400, stratify=y, random_state=0)
    train, test = train_test_split(rows, test_size=0.25, stratify=y[rows], random_state=0)

    grid = {"fusion": ["concat", "late", "lowrank", "gated"]}
    if quick:
        grid = {"fusion": ["concat", "late"]}
    search = GridSearchCV(
        FusionClassifier(max_epochs=3 if quick else 20, random_state=0),
        grid,
        cv=StratifiedKFold(2 if quick else 3, shuffle=True, random_state=0),
    )
    search.fit(X[train], y[train])  # Modalities index like arrays: X[rows] keeps every modality

    results = pd.DataFrame(search.cv_results_)[
        ["param_fusion", "mean_test_score", "std_test_score"]
    ]
    print(results.sort_values("mean_test_score", ascending=False).to_string(index=False))
    print(f"best: {search.best_params_}, held-out accuracy {search.score(X[test], y[test]):.3f}")

    # One view alone, for comparison: the same estimator on a single modality.
    for view in ["fou", "kar"]:
        alone = FusionClassifier(max_epochs=search.estimator.max_epochs, random_state=0)
        alone.fit({view: X[view][train]}, y[train])
        score = alone.score({view: X[view][test]}, y[test])
        print(f"{view} alone: held-out accuracy {score:.3f}")


if __name__ == "__main__":
    main(parse_args().quick)
