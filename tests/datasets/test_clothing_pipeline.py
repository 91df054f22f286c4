"""The clothing reviews example: text + tabular in one Pipeline, missing reviews as absent rows."""

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from fusekit import FusionClassifier
from fusekit.datasets import AbsentWhereMissing, load_clothing_reviews

NUMERIC = ["age", "positive_feedback_count"]
CATEGORICAL = ["division", "department", "class_name"]


def clothing_pipeline(max_epochs=8):
    """The pipeline shown on fusekit/datasets/data/clothing_reviews.md."""
    text = AbsentWhereMissing(make_pipeline(TfidfVectorizer(min_df=3), TruncatedSVD(16)))
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
    return make_pipeline(features, FusionClassifier(max_epochs=max_epochs, random_state=0))


def _sample(frame, target, n):
    """``n`` rows with every missing review among them (so both cases are exercised)."""
    missing = np.flatnonzero(frame["text"].isna().to_numpy())[:100]
    present = np.random.default_rng(0).choice(np.flatnonzero(frame["text"].notna()), n - 100)
    rows = np.sort(np.concatenate([missing, present]))
    return frame.iloc[rows], target.iloc[rows]


def test_missing_reviews_reach_the_model_as_absent_text_rows():
    frame, recommended = load_clothing_reviews(target="recommended")
    X, y = _sample(frame, recommended, 1000)
    pipeline = clothing_pipeline()
    pipeline.fit(X[:800], y[:800])
    features = pipeline[0].transform(X)
    text_columns = [c for c in features.columns if c.startswith("text__")]
    assert len(text_columns) == 16
    absent = features[text_columns].isna().all(axis=1).to_numpy()
    np.testing.assert_array_equal(absent, X["text"].isna().to_numpy())
    assert not features.drop(columns=text_columns).isna().any().any()
    model = pipeline[-1]
    assert list(model.modalities_) == ["text", "tabular"]
    assert pipeline.score(X[800:], y[800:]) > (y[800:] == 1).mean()  # beats the majority
    probabilities = pipeline.predict_proba(X[X["text"].isna()])
    assert np.isfinite(probabilities).all()
