"""The user guide's ``AbsentWhereMissing`` example runs as written, and does what it says."""

import re
from pathlib import Path

import numpy as np
import pandas as pd

from fusekit import FusionClassifier

GUIDE = Path(__file__).parents[2] / "docs" / "user-guide.md"
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def _block(containing: str) -> str:
    (code,) = [c for c in FENCE.findall(GUIDE.read_text()) if containing in c]
    return code


def _reviews(n: int = 80, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Short reviews whose words follow the label, a quarter of them missing."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    words = np.array(
        [
            ["great", "love", "fits", "soft", "perfect", "comfy"],
            ["poor", "broke", "returned", "tight", "itchy", "faded"],
        ]
    )
    reviews = [" ".join(rng.choice(words[label], 4)) for label in y]
    frame = pd.DataFrame(
        {"review": reviews, "age": rng.normal(40, 10, n), "price": rng.normal(50, 5, n)}
    )
    frame.loc[rng.choice(n, n // 4, replace=False), "review"] = None
    return frame, y


def test_absent_where_missing_example_runs_and_marks_missing_reviews_absent():
    frame, y = _reviews()
    namespace = {"frame": frame, "y": y}
    exec(compile(_block("AbsentWhereMissing("), str(GUIDE), "exec"), namespace)  # noqa: S102
    model = namespace["model"]
    features = model[0].transform(frame)
    text = features[[c for c in features.columns if c.startswith("text__")]]
    np.testing.assert_array_equal(text.isna().all(axis=1), frame["review"].isna())
    assert not text[frame["review"].notna()].isna().any().any()
    assert list(model[-1].modalities_) == ["text", "tabular"]
    assert np.isfinite(model.predict_proba(frame[frame["review"].isna()])).all()


def test_partial_fit_example_runs_one_epoch_per_chunk():
    rng = np.random.default_rng(0)
    chunks = []
    for _ in range(3):
        a = rng.normal(size=(40, 3))
        chunks.append(({"a": a, "b": rng.normal(size=(40, 2))}, (a[:, 0] > 0).astype(int)))
    namespace = {"chunks": chunks, "classes": np.array([0, 1])}
    namespace.update(FusionClassifier=FusionClassifier)
    exec(compile(_block("partial_fit("), str(GUIDE), "exec"), namespace)  # noqa: S102
    model = namespace["model"]
    assert model.n_iter_ == 3 and model.classes_.tolist() == [0, 1]


def test_text_and_categories_example_runs_offline(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(_block('"hashed_text"'), str(GUIDE), "exec"), namespace)  # noqa: S102
    model = namespace["model"]
    assert model.layout_.kinds == {"review": "text", "shop": "categorical"}
    assert sorted(model.standardizer_.means) == ["tab"]
    assert model.score(namespace["frame"], namespace["y"]) > 0.9
    assert (tmp_path / "reviews.safetensors").is_file()


def test_streaming_examples_run_on_a_file_a_dask_frame_and_chunks(tmp_path, monkeypatch):
    import dask
    import dask.dataframe as dd

    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(48, 3)), rng.normal(size=(48, 2))
    frame = pd.DataFrame(np.hstack([a, b]), columns=["a__0", "a__1", "a__2", "b__0", "b__1"])
    frame["label"] = np.arange(48) % 3
    monkeypatch.chdir(tmp_path)
    frame.to_parquet("big.parquet", row_group_size=16)
    features = frame.drop(columns="label")

    def read_chunks(path):
        assert path == "big.parquet"
        return iter([(features[:24], frame["label"][:24]), (features[24:], frame["label"][24:])])

    namespace = {
        "ddf": dd.from_pandas(frame, npartitions=2),
        "read_chunks": read_chunks,
        "path": "big.parquet",
        "X_small": features[:5],
    }
    exec(compile(_block("ParquetSource("), str(GUIDE), "exec"), namespace)  # noqa: S102
    assert namespace["model"].classes_.tolist() == [0, 1, 2]
    with dask.config.set(scheduler="synchronous"):
        exec(compile(_block("Incremental("), str(GUIDE), "exec"), namespace)  # noqa: S102
    assert namespace["model"].estimator_.n_iter_ == 2  # one partial_fit per partition
