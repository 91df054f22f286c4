"""fusekit.robustness on a fitted FusionClassifier trained on data with known ground truth."""

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from fusekit import FusionClassifier, FusionRegressor, Modalities
from fusekit.datasets import make_multimodal_classification
from fusekit.robustness import (
    CORRUPTIONS,
    apply_corruption,
    corrupt,
    missing_modality_table,
    plot_robustness,
    robustness_curve,
)
from fusekit.robustness.blocks import pipeline_columns


@pytest.fixture(scope="module")
def fitted(train_seed):
    """``signal`` determines y, ``noise`` is independent of it; trained with random absences.

    The task leaves room on both sides of every threshold below: over seeds 0-5 the full model
    scores 0.90-0.94 (threshold 0.8), 'signal' alone is within 0.01 of it (allowed: 0.05 below)
    and 'noise' alone 0.31-0.39 (allowed: below 0.48). With 500 rows and noise 0.3 the full score
    spread over 0.65-0.85 and the first threshold sat inside that spread.
    """
    X, y = make_multimodal_classification(
        1000, [6, 6], n_classes=3, informative=[1.0, 0.0], shared=1.0, noise=0.1,
        names=["signal", "noise"], random_state=train_seed,
    )  # fmt: skip
    train = Modalities({name: values.copy() for name, values in X[:700].items()})
    rng = np.random.default_rng(train_seed)
    train["noise"][rng.random(700) < 0.3] = np.nan  # teach the model that 'noise' may be absent
    model = FusionClassifier(max_epochs=25, random_state=train_seed).fit(train, y[:700])
    return model, X[700:], y[700:]


def test_accuracy_falls_as_gaussian_noise_grows_on_the_informative_modality(fitted):
    model, X, y = fitted
    table = robustness_curve(model, X, y, modality="signal", levels=[0, 0.5, 1, 3], n_repeats=3)
    assert list(table.columns) == [
        "modality", "corruption", "level", "metric", "mean", "std", "n_repeats"
    ]  # fmt: skip
    clean, noisiest = table["mean"].iloc[0], table["mean"].iloc[-1]
    assert clean == pytest.approx(model.score(X, y))
    assert table["std"].iloc[0] == 0.0  # sigma = 0 leaves X unchanged
    assert noisiest < clean - 0.2
    assert noisiest < 1 / 3 + 0.2  # towards chance (3 classes)


def test_curve_is_deterministic_under_a_seed(fitted):
    model, X, y = fitted
    kwargs = dict(corruption="salt_and_pepper", levels=[0.2, 0.5], n_repeats=2)
    first = robustness_curve(model, X, y, random_state=7, **kwargs)
    again = robustness_curve(model, X, y, random_state=7, **kwargs)
    other = robustness_curve(model, X, y, random_state=8, **kwargs)
    pd.testing.assert_frame_equal(first, again)
    assert set(first["modality"]) == {"signal", "noise"}  # modality=None: one curve each
    assert not np.allclose(first["mean"], other["mean"])


def test_removing_the_uninformative_modality_keeps_accuracy_the_informative_one_loses_it(fitted):
    model, X, y = fitted
    table = missing_modality_table(model, X, y).set_index("present")
    assert list(table.index) == ["signal+noise", "signal", "noise"]
    assert table.loc["signal", "removed"] == "noise"
    full = table.loc["signal+noise", "score"]
    assert full > 0.8
    assert table.loc["signal", "score"] > full - 0.05
    assert table.loc["noise", "score"] < 1 / 3 + 0.15
    with_empty = missing_modality_table(model, X, y, include_empty=True)
    assert len(with_empty) == 4 and with_empty["n_present"].iloc[-1] == 0


def test_remove_at_rates_interpolates_between_full_and_missing(fitted):
    model, X, y = fitted
    table = robustness_curve(model, X, y, "signal", "remove", levels=[0, 0.5, 1], n_repeats=2)
    scores = table["mean"].to_numpy()
    assert scores[0] > scores[1] > scores[2]
    only_noise = missing_modality_table(model, X, y).set_index("present").loc["noise", "score"]
    assert scores[2] == pytest.approx(only_noise)


def test_plot_is_written_to_png(fitted, tmp_path):
    pytest.importorskip("matplotlib")
    model, X, y = fitted
    table = robustness_curve(model, X, y, levels=[0, 1, 2], n_repeats=2)
    figure = plot_robustness(table, title="gaussian noise")
    path = tmp_path / "robustness.png"
    figure.savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    assert len(figure.axes[0].lines) == 2  # one line per corrupted modality


def test_table_input_is_split_by_the_fitted_column_layout():
    rng = np.random.default_rng(0)
    y = rng.normal(size=120)
    frame = pd.DataFrame(
        {"a__0": y + 0.1 * rng.normal(size=120), "a__1": rng.normal(size=120),
         "b__0": rng.normal(size=120)}
    )  # fmt: skip
    model = FusionRegressor(max_epochs=5, random_state=0).fit(frame, y)
    corrupted = corrupt(frame, "a", "zero_out", level=1.0, estimator=model)
    assert isinstance(corrupted, pd.DataFrame) and list(corrupted.columns) == list(frame.columns)
    assert (corrupted[["a__0", "a__1"]] == 0).all().all()
    pd.testing.assert_series_equal(corrupted["b__0"], frame["b__0"])
    table = missing_modality_table(model, frame, y)
    assert table["metric"].iloc[0] == "r2" and len(table) == 3
    with pytest.raises(ValueError, match="needs a fitted fusekit estimator"):
        corrupt(frame.to_numpy(), "a", estimator=None)


# -- pipelines -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scaled_pipeline():
    """Per-modality scalers in a ColumnTransformer, then a FusionClassifier on its output."""
    X, y = make_multimodal_classification(
        300, [4, 3], n_classes=2, informative=[1.0, 0.0], names=["a", "b"], random_state=0
    )
    frame = pd.DataFrame(np.hstack([X["a"], X["b"]]), columns=[*"pqrs", *"tuv"])
    prep = ColumnTransformer(
        [("a", StandardScaler(), list("pqrs")), ("b", StandardScaler(), list("tuv"))]
    ).set_output(transform="pandas")
    pipeline = make_pipeline(prep, FusionClassifier(max_epochs=3, random_state=0))
    pipeline.fit(frame.iloc[:200], y[:200])
    return pipeline, frame.iloc[200:], y[200:]


def test_pipelines_are_scored_with_modalities_removed_at_their_input(scaled_pipeline):
    pipeline, frame, y = scaled_pipeline
    final, transformed = pipeline[-1], pipeline[:-1].transform(frame)
    # the scalers keep NaN rows NaN: removing at the input = removing at the final estimator
    pd.testing.assert_frame_equal(
        missing_modality_table(pipeline, frame, y), missing_modality_table(final, transformed, y)
    )
    kwargs = dict(modality="a", corruption="remove", levels=[0, 0.5, 1], n_repeats=2)
    pd.testing.assert_frame_equal(
        robustness_curve(pipeline, frame, y, **kwargs),
        robustness_curve(final, transformed, y, **kwargs),
    )
    noisy = corrupt(frame, "b", "gaussian", level=1.0, random_state=0, estimator=pipeline)
    changed = [c for c in frame.columns if not np.allclose(noisy[c], frame[c])]
    assert changed == list("tuv") and list(noisy.columns) == list(frame.columns)
    curve = robustness_curve(pipeline, frame, y, levels=[0, 2], n_repeats=2)
    assert set(curve["modality"]) == {"a", "b"}


def test_pipeline_on_modalities_input_corrupts_the_arrays():
    X, y = make_multimodal_classification(120, [3, 2], names=["a", "b"], random_state=0)
    pipeline = Pipeline([("same", FunctionTransformer()), ("fuse", FusionClassifier(max_epochs=2))])
    pipeline.fit(X, y)
    table = missing_modality_table(pipeline, X, y)
    assert list(table["present"]) == ["a+b", "a", "b"]
    assert table["score"].iloc[1] == pipeline[-1].score(
        Modalities(a=X["a"], b=np.full_like(X["b"], np.nan)), y
    )


@pytest.mark.parametrize(
    ("selections", "remainder", "expected"),
    [
        # names, ints, a slice, a boolean mask, a callable selector; remainder dropped
        ([["c0", "c1"], [2, 3]], "drop", {"t0": [0, 1], "t1": [2, 3]}),
        ([slice(0, 2), [False, False, True, False, True, False]], "drop",
         {"t0": [0, 1], "t1": [2, 4]}),
        ([make_column_selector("c[01]"), ["c5"]], "drop", {"t0": [0, 1], "t1": [5]}),
        # remainder passthrough becomes a modality of its own
        ([["c0"], ["c1", "c2"]], "passthrough", {"t0": [0], "t1": [1, 2], "remainder": [3, 4, 5]}),
    ],
)  # fmt: skip
def test_column_transformer_outputs_are_traced_to_their_input_columns(
    selections, remainder, expected
):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(40, 6)), columns=[f"c{i}" for i in range(6)])
    prep = ColumnTransformer(
        [(f"t{i}", StandardScaler(), columns) for i, columns in enumerate(selections)],
        remainder=remainder,
    ).set_output(transform="pandas")
    pipeline = make_pipeline(prep, StandardScaler().set_output(transform="pandas"),
                             FusionRegressor(max_epochs=1))  # fmt: skip
    pipeline.fit(frame, rng.normal(size=40))
    traced = pipeline_columns(pipeline, 6)
    assert {name: list(columns) for name, columns in traced.items()} == expected


# -- the corruptions themselves (no model) ------------------------------------------------------


def _sequence(n=50):
    return np.random.default_rng(0).normal(size=(n, 8, 3))


def test_gaussian_noise_scales_with_each_feature_spread():
    values = np.random.default_rng(0).normal(size=(4000, 2)) * [1.0, 100.0]
    noisy = apply_corruption(values, "gaussian", 0.5, None, np.random.default_rng(1))
    np.testing.assert_allclose((noisy - values).std(axis=0), 0.5 * values.std(axis=0), rtol=0.05)


def test_salt_and_pepper_uses_feature_extremes_at_the_given_fraction():
    values = np.random.default_rng(0).normal(size=(2000, 4))
    hit = apply_corruption(values, "salt_and_pepper", 0.1, None, np.random.default_rng(1))
    changed = hit != values
    assert abs(changed.mean() - 0.1) < 0.02
    extremes = np.isin(hit, np.concatenate([values.min(axis=0), values.max(axis=0)]))
    assert extremes[changed].all()


def test_sample_corruptions_hit_nested_rows_and_leave_absent_rows_alone():
    values = _sequence(400)
    values[:40] = np.nan  # already absent
    removed_low = apply_corruption(values, "remove", 0.3, None, np.random.default_rng(5))
    removed_high = apply_corruption(values, "remove", 0.6, None, np.random.default_rng(5))
    absent_low = np.isnan(removed_low).all(axis=(1, 2))
    absent_high = np.isnan(removed_high).all(axis=(1, 2))
    assert (absent_high >= absent_low).all()  # common random numbers: nested hit rows
    assert abs(absent_low[40:].mean() - 0.3) < 0.07
    zeroed = apply_corruption(values, "zero_out", 1.0, None, np.random.default_rng(0))
    assert np.isnan(zeroed[:40]).all() and (zeroed[40:] == 0).all()


def test_temporal_shuffle_permutes_steps_of_sequences_only():
    values = _sequence()
    shuffled = apply_corruption(values, "temporal_shuffle", 1.0, None, np.random.default_rng(0))
    assert not np.allclose(shuffled, values)
    np.testing.assert_allclose(np.sort(shuffled, axis=1), np.sort(values, axis=1))
    with pytest.raises(ValueError, match="needs a sequence modality"):
        apply_corruption(values[:, 0], "temporal_shuffle", 1.0, None, np.random.default_rng(0))


def test_corrupt_copies_and_keeps_other_modalities():
    X = Modalities(a=np.ones((10, 3)), b=_sequence(10))
    out = corrupt(X, "b", "gaussian", level=1.0, random_state=0)
    assert isinstance(out, Modalities)
    np.testing.assert_array_equal(out["a"], X["a"])
    assert not np.allclose(out["b"], X["b"])
    np.testing.assert_array_equal(X["b"], _sequence(10))  # input untouched


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(corruption="blur"), "unknown corruption"),
        (dict(corruption="remove", level=0.5, rate=0.5), "rate must be None"),
        (dict(corruption="gaussian", level=1.0, rate=1.5), "rate must be in"),
        (dict(corruption="gaussian", level=-1.0), "level must be >= 0"),
        (dict(modality="c"), "modality must be among"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, message):
    X = Modalities(a=np.ones((10, 3)), b=np.zeros((10, 2)))
    kwargs = {"modality": "a", **kwargs}
    with pytest.raises(ValueError, match=message):
        corrupt(X, random_state=0, **kwargs)


def test_every_corruption_is_listed():
    assert set(CORRUPTIONS) == {
        "gaussian", "salt_and_pepper", "zero_out", "remove", "temporal_shuffle"
    }  # fmt: skip
