"""Text + tabular fusion on the clothing reviews, with missing reviews as absent modality rows.

    .venv/bin/python benchmarks/datasets/clothing_example.py [rating|recommended]

One Pipeline: a ColumnTransformer turns the review text into TF-IDF + SVD features (absent where
the review is missing, via AbsentWhereMissing) and scales / one-hot encodes the tabular columns;
its pandas output (``text__*``, ``tabular__*`` columns) feeds FusionClassifier, which groups the
columns into the two modalities by prefix.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from fusekit import FusionClassifier
from fusekit.datasets import AbsentWhereMissing, load_clothing_reviews
from fusekit.robustness import missing_modality_table

NUMERIC = ["age", "positive_feedback_count"]
CATEGORICAL = ["division", "department", "class_name"]


def clothing_pipeline(**classifier_params):
    text = AbsentWhereMissing(
        make_pipeline(TfidfVectorizer(min_df=3), TruncatedSVD(64, random_state=0))
    )
    tabular = ColumnTransformer(
        [
            ("numeric", StandardScaler(), NUMERIC),
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                CATEGORICAL,
            ),
        ],
        verbose_feature_names_out=False,
    )
    features = ColumnTransformer(
        [("text", text, "text"), ("tabular", tabular, NUMERIC + CATEGORICAL)]
    ).set_output(transform="pandas")
    return make_pipeline(features, FusionClassifier(**classifier_params))


def main(target: str = "recommended") -> None:
    torch.set_num_threads(1)
    print("command:", " ".join([sys.executable, *sys.argv]))
    frame, y = load_clothing_reviews(target=target)
    X_train, X_test, y_train, y_test = train_test_split(
        frame, y, test_size=0.25, stratify=y, random_state=0
    )
    pipeline = clothing_pipeline(max_epochs=10, random_state=0)
    start = time.perf_counter()
    pipeline.fit(X_train, y_train)
    print(f"target={target}: fit {time.perf_counter() - start:.0f} s on {len(y_train)} rows")
    missing = X_test["text"].isna().to_numpy()
    predictions = pipeline.predict(X_test)
    print(f"test accuracy {np.mean(predictions == y_test):.3f} "
          f"(majority {y_test.value_counts(normalize=True).max():.3f}); "
          f"rows without a review: {missing.sum()}, accuracy there "
          f"{np.mean(predictions[missing] == y_test[missing]):.3f}")  # fmt: skip
    encoded = pipeline[0].transform(X_test)
    print(missing_modality_table(pipeline[-1], encoded, y_test).to_string(index=False))


if __name__ == "__main__":
    main(*sys.argv[1:])
