"""Text, categories and numbers in one DataFrame, with a pretrained text encoder, offline.

    python examples/text_and_categories.py            # full run (a few minutes on one core)
    python examples/text_and_categories.py --quick    # tiny (also FUSEKIT_EXAMPLES_QUICK=1)
    python examples/text_and_categories.py --out DIR  # keep the model, data files and bench

Needs ``pip install fusekit-transformers`` (the ``wordllama`` backbone; its pretrained weights
ship inside the ``wordllama`` wheel, so nothing is downloaded).

The clothing reviews (:func:`fusekit.datasets.load_clothing_reviews`) as a user has them: a review
text (missing for some rows), three shop categories and two numbers, in one DataFrame whose
``modality__column`` names make three modalities. Then:

1. the review through ``wordllama`` **frozen** (remembered once per fit: ``frozen_backbones``),
   the categories through the ``categorical`` backbone, the numbers through ``mlp``;
2. the same with the review encoder **fine-tuned** at its own, smaller learning rate
   (``optimizer__param_groups``);
3. the frozen model saved, then loaded and used **in a new process in which the ``wordllama``
   package cannot be imported** (as if its folder had been deleted): the file holds the encoder's
   weights and tokenizer, so the predictions are the same;
4. ``fusekit bench --data`` on the same DataFrame written to CSV and to Parquet (CSV only with
   ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _quick import example_parser
from sklearn.model_selection import train_test_split

import fusekit
from fusekit import FusionClassifier
from fusekit.datasets import load_clothing_reviews

BACKBONES = {"review": "wordllama", "shop": "categorical", "tab": "mlp"}

#: Run in a new process: the wordllama package hidden (``import wordllama`` fails and its files
#: cannot be found), the saved model loaded, its probabilities written.
LOAD_WITHOUT_WORDLLAMA = """
import sys
sys.modules["wordllama"] = None  # hidden: the model must not need the package or its files
import numpy as np, pandas as pd, fusekit
model = fusekit.load(sys.argv[1])
np.save(sys.argv[3], model.predict_proba(pd.read_parquet(sys.argv[2])))
"""


def parse_args() -> argparse.Namespace:
    parser = example_parser(
        description=__doc__.splitlines()[0],
        quick_help="120 rows, 2 epochs, a 2-fold bench of the CSV file: what the tests run",
    )
    parser.add_argument("--out", type=Path, default=None, help="folder for the files written")
    return parser.parse_args()


def reviews_frame(n_rows: int) -> tuple[pd.DataFrame, pd.Series]:
    """``n_rows`` clothing reviews: one text, three category and two number columns."""
    raw, y = load_clothing_reviews(target="recommended")
    raw, _, y, _ = train_test_split(raw, y, train_size=n_rows, stratify=y, random_state=0)
    frame = pd.DataFrame(
        {
            "review__text": raw["text"],  # NaN where there is no review: the modality is absent
            "shop__division": raw["division"],
            "shop__department": raw["department"],
            "shop__class_name": raw["class_name"],
            "tab__age": raw["age"].astype(float),
            "tab__feedback": raw["positive_feedback_count"].astype(float),
        }
    )
    return frame.reset_index(drop=True), y.reset_index(drop=True)


def fit_and_score(name: str, model: FusionClassifier, data: tuple) -> FusionClassifier:
    X_train, X_test, y_train, y_test = data
    start = time.perf_counter()
    model.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    print(
        f"{name}: test accuracy {model.score(X_test, y_test):.3f}, fit {seconds:.1f} s", flush=True
    )
    return model


def load_in_new_process(path: Path, X_test: pd.DataFrame, folder: Path) -> np.ndarray:
    X_test.to_parquet(folder / "X_test.parquet")
    got = folder / "loaded_proba.npy"
    command = [sys.executable, "-c", LOAD_WITHOUT_WORDLLAMA, str(path)]
    subprocess.run([*command, str(folder / "X_test.parquet"), str(got)], check=True, timeout=300)
    return np.load(got)


def bench(data_file: Path, out: Path, folds: int, epochs: int) -> None:
    """``fusekit bench --data`` on a file with text and category columns; its leaderboard."""
    command = [
        *[sys.executable, "-m", "fusekit", "bench", "--data", str(data_file)],
        *["--target", "recommended", "--param", "backbone=" + json.dumps(BACKBONES)],
        *["--param", "frozen_backbones=review,", "--fusion", "concat,late"],
        *["--folds", str(folds), "--max-epochs", str(epochs), "--backend", "serial"],
        *["--out", str(out), "--quiet"],
    ]
    print("$ fusekit " + " ".join(command[3:]), flush=True)
    subprocess.run(command, check=True, timeout=600)  # prints the leaderboard


def main(args: argparse.Namespace, folder: Path) -> None:
    n_rows, epochs, folds = (120, 2, 2) if args.quick else (3000, 10, 5)
    frame, y = reviews_frame(n_rows)
    data = train_test_split(frame, y, test_size=0.25, stratify=y, random_state=0)
    print(f"{n_rows} reviews, {frame['review__text'].isna().sum()} without text; majority class "
          f"{y.value_counts(normalize=True).max():.3f}", flush=True)  # fmt: skip

    frozen = fit_and_score(
        "wordllama frozen",
        FusionClassifier(
            backbone=BACKBONES, frozen_backbones=("review",), max_epochs=epochs, random_state=0
        ),
        data,
    )
    fit_and_score(
        "wordllama fine-tuned",
        FusionClassifier(
            backbone=BACKBONES,
            backbone__review__freeze=False,  # the embedding matrix becomes a trained parameter
            lr=1e-2,
            optimizer__param_groups=[("backbones.review.*", {"lr": 1e-3})],
            max_epochs=epochs,
            random_state=0,
        ),
        data,
    )

    X_test = data[1]
    path = frozen.save(folder / "reviews.safetensors")
    expected = frozen.predict_proba(X_test)
    loaded = load_in_new_process(path, X_test, folder)
    same = np.array_equal(loaded, expected)
    verdict = "same" if same else "DIFFERENT"
    print(f"saved {path.stat().st_size / 2**20:.1f} MB; loaded in a new process without the "
          f"wordllama package: {verdict} probabilities", flush=True)  # fmt: skip
    if not same:
        raise SystemExit("the model loaded in a new process predicts differently")
    assert np.array_equal(fusekit.load(path).predict_proba(X_test), expected)

    table = frame.assign(recommended=y)
    table.to_csv(folder / "reviews.csv", index=False)
    table.to_parquet(folder / "reviews.parquet", index=False)
    # the quick run benches the CSV file only (each bench is a new process: a few seconds)
    for name in ("reviews.csv",) if args.quick else ("reviews.csv", "reviews.parquet"):
        bench(folder / name, folder / f"bench-{Path(name).suffix[1:]}", folds, epochs)


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.out is None:
        with tempfile.TemporaryDirectory() as temporary:
            main(arguments, Path(temporary))
    else:
        arguments.out.mkdir(parents=True, exist_ok=True)
        main(arguments, arguments.out)
