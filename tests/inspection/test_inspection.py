"""fusekit.inspection: Shapley attribution of a model's score to its modalities.

The game-theory functions are checked on a 3-player game worked by hand; the model-level
function on synthetic data whose answer is known (an informative modality, an exact copy of it,
pure noise), against scores the test computes itself by marking modalities absent with NaN.
"""

import time
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from fusekit import FusionClassifier, FusionRegressor, Modalities
from fusekit.datasets import load_mfeat, make_multimodal_classification
from fusekit.engine.registry import available
from fusekit.inspection import (
    exact_shapley,
    leave_one_out,
    modality_importance,
    permutation_shapley,
    plot_modality_importance,
    sample_permutations,
)
from fusekit.robustness import missing_modality_table

# -- the game, by hand -------------------------------------------------------------------------

# v over coalitions of players {0, 1, 2}
GAME = {
    (): 0, (0,): 1, (1,): 2, (2,): 4, (0, 1): 4, (0, 2): 6, (1, 2): 7, (0, 1, 2): 10,
}  # fmt: skip
# Shapley weights for M = 3: |S|!(M-|S|-1)!/M! = 1/3 (|S| = 0), 1/6 (|S| = 1), 1/3 (|S| = 2).
#   phi_0 = 1/3*(1-0) + 1/6*(4-2) + 1/6*(6-4) + 1/3*(10-7) = 1/3 + 1/3 + 1/3 + 1 = 2
#   phi_1 = 1/3*(2-0) + 1/6*(4-1) + 1/6*(7-4) + 1/3*(10-6) = 2/3 + 1/2 + 1/2 + 4/3 = 3
#   phi_2 = 1/3*(4-0) + 1/6*(6-1) + 1/6*(7-2) + 1/3*(10-4) = 4/3 + 5/6 + 5/6 + 2 = 5
GAME_SHAPLEY = [2.0, 3.0, 5.0]
assert sum(Fraction(v) for v in GAME_SHAPLEY) == GAME[(0, 1, 2)] - GAME[()]  # efficiency


class CountingGame:
    def __init__(self, table=GAME):
        self.table, self.calls = table, []

    def __call__(self, coalition):
        self.calls.append(coalition)
        return self.table[tuple(sorted(coalition))]


def test_exact_shapley_matches_the_game_worked_by_hand():
    game = CountingGame()
    np.testing.assert_allclose(exact_shapley(game, 3), GAME_SHAPLEY, rtol=0, atol=1e-12)
    assert len(game.calls) == 8 and len(set(game.calls)) == 8  # each coalition once


def test_exact_shapley_of_array_values_is_taken_per_entry():
    doubled = {key: np.array([value, 2 * value, -value]) for key, value in GAME.items()}
    phi = exact_shapley(CountingGame(doubled), 3)
    assert phi.shape == (3, 3)
    np.testing.assert_allclose(phi, np.outer(GAME_SHAPLEY, [1, 2, -1]), atol=1e-12)


def test_permutation_sampling_converges_to_the_exact_values():
    permutations = sample_permutations(3, 4000, np.random.default_rng(0))
    assert sorted(map(tuple, permutations[:50])) != [tuple(range(3))] * 50  # really shuffled
    estimate, stderr = permutation_shapley(CountingGame(), permutations)
    assert np.all(np.abs(estimate - GAME_SHAPLEY) < 4 * stderr)
    assert np.all(stderr < 0.03)  # marginals spread ~1.2, / sqrt(4000)
    assert estimate.sum() == pytest.approx(10.0, abs=1e-12)  # each order telescopes: efficient
    few, few_stderr = permutation_shapley(CountingGame(), permutations[:40])
    assert np.all(few_stderr > 4 * stderr)  # the error shrinks like 1/sqrt(P)


def test_leave_one_out_is_full_minus_without_each_player():
    game = CountingGame()
    np.testing.assert_allclose(leave_one_out(game, 3), [10 - 7, 10 - 6, 10 - 4])
    assert len(game.calls) == 4


# -- the model: informative, a redundant copy, noise --------------------------------------------


def _known_answer_data(seed):
    X, y = make_multimodal_classification(
        1000, [6, 6], n_classes=3, informative=[1.0, 0.0], shared=1.0, noise=0.1,
        names=["signal", "noise"], random_state=seed,
    )  # fmt: skip
    X = Modalities(signal=X["signal"], copy=X["signal"].copy(), noise=X["noise"])
    return X, y


@pytest.fixture(scope="module")
def fitted(train_seed):
    """Trained with each modality absent in 30% of the rows, so any one present is usable.

    Over FUSEKIT_TEST_SEED=0-5 (300 test rows): full accuracy 0.90-0.93, all absent 0.29-0.39;
    Shapley of signal 0.26-0.32 and of copy 0.26-0.30 (|difference| <= 0.035, allowed 0.08),
    noise -0.027 to 0.014 (allowed |noise| < 0.05: the model leans on the noise a little, from
    the rows where both copies were absent in training); bootstrap std 0.008-0.021 (allowed
    below 0.05); leave-one-out of signal / copy <= 0.063 (allowed 0.15); per-sample mean |noise|
    contribution <= 0.29 of signal's (allowed 0.5).
    """
    X, y = _known_answer_data(train_seed)
    train = Modalities({name: values[:700].copy() for name, values in X.items()})
    rng = np.random.default_rng(train_seed)
    for name in train:
        train[name][rng.random(700) < 0.3] = np.nan
    model = FusionClassifier(max_epochs=25, random_state=train_seed).fit(train, y[:700])
    return model, X[700:], y[700:]


def _absent(X, names):
    return Modalities({m: np.full_like(v, np.nan) if m in names else v for m, v in X.items()})


def test_credit_goes_to_the_informative_modality_and_its_copy_equally_none_to_noise(fitted):
    model, X, y = fitted
    table = modality_importance(model, X, y, n_repeats=10, random_state=0)
    assert list(table.columns) == ["modality", "importance", "std", "method", "metric"]
    assert table["method"].unique().tolist() == ["shapley"]
    assert table["metric"].unique().tolist() == ["accuracy"]
    assert table["modality"].iloc[-1] == "noise"  # sorted, noise last
    scores = table.set_index("modality")["importance"]
    assert abs(scores["signal"] - scores["copy"]) < 0.08
    assert min(scores["signal"], scores["copy"]) > 0.2
    assert abs(scores["noise"]) < 0.05
    assert (table["std"] > 0).all() and (table["std"] < 0.05).all()  # bootstrap over 300 rows


def test_shapley_values_add_up_to_full_minus_all_absent_score(fitted):
    model, X, y = fitted
    table = modality_importance(model, X, y, n_repeats=0)
    full = model.score(X, y)
    empty = model.score(_absent(X, list(X)), y)  # the model's own all-absent prediction
    assert table.attrs["full_score"] == full and table.attrs["empty_score"] == empty
    assert table["importance"].sum() == pytest.approx(full - empty, abs=1e-12)
    assert table["std"].isna().all()  # n_repeats=0: no bootstrap
    assert table.attrs["n_model_calls"] == 2**3  # each coalition predicted once


def test_leave_one_out_matches_scores_computed_by_hand(fitted):
    model, X, y = fitted
    table = modality_importance(model, X, y, method="loo", n_repeats=0).set_index("modality")
    full = model.score(X, y)
    for name in X:
        expected = full - model.score(_absent(X, [name]), y)
        assert table.loc[name, "importance"] == pytest.approx(expected, abs=1e-12)
    # redundancy: removing either copy alone costs little, unlike removing both
    assert table.loc["signal", "importance"] < 0.15 and table.loc["copy", "importance"] < 0.15


def test_permutation_method_and_automatic_switch_agree_with_exact(fitted):
    model, X, y = fitted
    exact = modality_importance(model, X, y, n_repeats=0).set_index("modality")["importance"]
    sampled = modality_importance(
        model, X, y, method="shapley", max_exact=2, n_permutations=300, n_repeats=0,
        random_state=0,
    )  # fmt: skip
    assert sampled["method"].unique().tolist() == ["permutation"]  # 3 modalities > max_exact
    assert sampled["importance"].sum() == pytest.approx(exact.sum(), abs=1e-12)
    found = sampled.set_index("modality")
    assert np.all(np.abs(found["importance"] - exact[found.index]) < 4 * found["std"] + 1e-12)
    again = modality_importance(
        model, X, y, method="permutation", n_permutations=300, n_repeats=0, random_state=0
    )
    pd.testing.assert_frame_equal(sampled, again)  # seeded


def test_per_sample_contributions_add_up_to_the_predicted_probabilities(fitted):
    model, X, y = fitted
    table, contributions = modality_importance(model, X, y, n_repeats=0, per_sample=True)
    assert contributions.values.shape == (len(y), 3, 3)  # (n, M, K)
    assert contributions.modalities == ("signal", "copy", "noise")
    np.testing.assert_array_equal(contributions.classes, model.classes_)
    np.testing.assert_allclose(contributions.output, model.predict_proba(X), atol=1e-12)
    np.testing.assert_allclose(
        contributions.baseline, model.predict_proba(_absent(X, list(X))), atol=1e-12
    )
    np.testing.assert_allclose(
        contributions.baseline + contributions.values.sum(axis=1), contributions.output, atol=1e-9
    )
    np.testing.assert_allclose(contributions.values.sum(axis=2), 0.0, atol=1e-9)  # sum_k p_k = 1
    mean_abs = np.abs(contributions.of_predicted_class()).mean(axis=0)  # (M,)
    assert mean_abs[2] < 0.5 * mean_abs[0]  # noise moves little probability
    frame = contributions.to_frame(model.classes_[1])
    assert list(frame.columns) == ["signal", "copy", "noise"] and len(frame) == len(y)
    with pytest.raises(ValueError, match="label must be one of"):
        contributions.to_frame("no such class")


def test_scoring_accepts_scorer_names_and_callables(fitted):
    model, X, y = fitted
    table = modality_importance(model, X, y, scoring="neg_log_loss", n_repeats=0)
    assert table["metric"].iloc[0] == "neg_log_loss"
    from sklearn.metrics import log_loss

    full = -log_loss(y, model.predict_proba(X), labels=model.classes_)
    empty = -log_loss(y, model.predict_proba(_absent(X, list(X))), labels=model.classes_)
    assert table["importance"].sum() == pytest.approx(full - empty, rel=1e-9)

    def balanced(estimator, X_, y_):
        from sklearn.metrics import balanced_accuracy_score

        return balanced_accuracy_score(y_, estimator.predict(X_))

    custom = modality_importance(model, X, y, scoring=balanced, n_repeats=0)
    assert custom["metric"].iloc[0] == "balanced"


def test_regressor_contributions_are_in_the_target_units():
    rng = np.random.default_rng(0)
    X = Modalities(a=rng.normal(size=(200, 3)), b=rng.normal(size=(200, 2)))
    y = 3 * X["a"][:, 0] + X["b"][:, 0]
    model = FusionRegressor(max_epochs=5, random_state=0).fit(X, y)
    table, contributions = modality_importance(model, X, y, n_repeats=3, per_sample=True)
    assert table["metric"].iloc[0] == "r2"
    assert contributions.values.shape == (200, 2) and contributions.classes is None
    np.testing.assert_allclose(
        contributions.baseline + contributions.values.sum(axis=1), model.predict(X), atol=1e-9
    )
    assert contributions.to_frame().shape == (200, 2)


def test_plot_is_a_bar_per_modality(fitted, tmp_path):
    pytest.importorskip("matplotlib")
    model, X, y = fitted
    table = modality_importance(model, X, y, n_repeats=3, random_state=0)
    figure = plot_modality_importance(table)
    path = tmp_path / "importance.png"
    figure.savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bars = figure.axes[0].patches
    assert len(bars) == 3
    widths = sorted(bar.get_width() for bar in bars)
    np.testing.assert_allclose(widths, sorted(table["importance"]))
    with pytest.raises(ValueError, match="lacks the columns"):
        plot_modality_importance(table.drop(columns="std"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(method="gradient"), "method must be one of"),
        (dict(n_permutations=0), "n_permutations must be an integer >= 1"),
        (dict(n_repeats=-1), "n_repeats must be an integer >= 0"),
        (dict(max_exact=1.5), "max_exact must be an integer"),
        (dict(scoring=3), "scoring must be None"),
    ],
)
def test_bad_arguments_are_clear_errors(fitted, kwargs, message):
    model, X, y = fitted
    with pytest.raises(ValueError, match=message):
        modality_importance(model, X, y, **kwargs)


def test_other_estimators_and_mismatched_input_are_refused(fitted):
    model, X, y = fitted
    with pytest.raises(ValueError, match="needs a fitted fusekit estimator"):
        modality_importance(LogisticRegression(), X["signal"], y)
    with pytest.raises(ValueError, match="but y has"):
        modality_importance(model, X, y[:10])
    with pytest.raises(ValueError, match="was fitted with"):
        modality_importance(model, Modalities(signal=X["signal"], noise=X["noise"]), y)


# -- mfeat: six views, 64 coalitions ------------------------------------------------------------


def test_mfeat_six_views_take_seconds():
    X, y = load_mfeat()
    train, test = train_test_split(np.arange(len(y)), test_size=500, stratify=y, random_state=0)
    model = FusionClassifier(max_epochs=3, random_state=0).fit(X[train], y[train])
    start = time.perf_counter()
    table = modality_importance(model, X[test], y[test], n_repeats=20, random_state=0)
    elapsed = time.perf_counter() - start
    assert table.attrs["n_model_calls"] == 2**6  # not 6 * 2**5 * 2
    assert set(table["modality"]) == set(X) and table["method"].iloc[0] == "shapley"
    assert table["importance"].sum() == pytest.approx(
        table.attrs["full_score"] - table.attrs["empty_score"], abs=1e-12
    )
    assert elapsed < 30, f"{elapsed:.1f} s for 64 coalitions"  # ~1 s on an idle core


# -- pipelines -----------------------------------------------------------------------------------


def _frame(X):
    return pd.DataFrame(
        {f"{m}_{j}": values[:, j] for m, values in X.items() for j in range(values.shape[1])}
    )


def _per_modality_scaler(X):
    return ColumnTransformer(
        [(m, StandardScaler(), [f"{m}_{j}" for j in range(v.shape[1])]) for m, v in X.items()]
    ).set_output(transform="pandas")


@pytest.fixture(scope="module")
def pipeline_case():
    X, y = _known_answer_data(1)
    frame = _frame(X)
    pipeline = make_pipeline(
        _per_modality_scaler(X), FusionClassifier(max_epochs=5, random_state=0)
    )
    pipeline.fit(frame.iloc[:300], y[:300])
    return pipeline, frame.iloc[300:500].reset_index(drop=True), y[300:500]


def test_pipeline_with_a_column_transformer_marks_the_input_columns_of_each_modality(pipeline_case):
    pipeline, frame, y = pipeline_case
    table = modality_importance(pipeline, frame, y, n_repeats=3, random_state=0)
    assert set(table["modality"]) == {"signal", "copy", "noise"}  # the transformer names
    # scalers keep NaN rows NaN: the same as marking the final estimator's own input
    final, transformed = pipeline[-1], pipeline[:-1].transform(frame)
    direct = modality_importance(final, transformed, y, n_repeats=3, random_state=0)
    pd.testing.assert_frame_equal(table, direct)


def test_pipeline_on_modalities_input_marks_the_arrays():
    X, y = _known_answer_data(2)
    identity = FunctionTransformer()  # passes the Modalities through untouched
    pipeline = Pipeline([("identity", identity), ("fusion", FusionClassifier(max_epochs=3))])
    pipeline.fit(X[:300], y[:300])
    table = modality_importance(pipeline, X[300:], y[300:], n_repeats=0)
    direct = modality_importance(pipeline[-1], X[300:], y[300:], n_repeats=0)
    pd.testing.assert_frame_equal(table, direct)
    assert len(missing_modality_table(pipeline, X[300:], y[300:])) == 7


def test_pipelines_whose_modalities_cannot_be_traced_are_refused():
    X, y = _known_answer_data(3)
    frame = _frame(X)
    columns = list(frame.columns)
    mixing = make_pipeline(PCA(6), FusionClassifier(max_epochs=1, modalities={"a": 3, "b": 3}))
    mixing.fit(frame, y)
    with pytest.raises(ValueError, match="cannot tell which input columns.*PCA"):
        modality_importance(mixing, frame, y)
    imputing = make_pipeline(
        SimpleImputer(), FusionClassifier(max_epochs=1, modalities={"a": 6, "b": 12})
    )
    imputing.fit(frame, y)
    with pytest.raises(ValueError, match="does not reach FusionClassifier as all-NaN"):
        modality_importance(imputing, frame, y)
    shared = ColumnTransformer([("all", StandardScaler(), columns)]).set_output(transform="pandas")
    split = make_pipeline(
        shared,
        FusionClassifier(max_epochs=1, modalities={"a": "all__signal", "b": "all__(copy|noise)"}),
    )
    split.fit(frame, y)
    with pytest.raises(ValueError, match="feeds both modality 'a' and 'b'"):
        missing_modality_table(split, frame, y)


# -- the empty coalition ------------------------------------------------------------------------


@pytest.mark.parametrize("fusion", available("fusion"))
def test_every_fusion_predicts_one_finite_output_when_nothing_is_present(fusion):
    """v({}) is the score of that constant prediction, whatever the fusion."""
    rng = np.random.default_rng(0)
    X = Modalities(a=rng.normal(size=(40, 4)), b=rng.normal(size=(40, 3)))
    y = rng.integers(0, 3, 40)
    model = FusionClassifier(fusion=fusion, max_epochs=1, random_state=0).fit(X, y)
    nothing = model.predict_proba(_absent(X, ["a", "b"]))
    assert np.isfinite(nothing).all()
    np.testing.assert_allclose(nothing, np.broadcast_to(nothing[0], nothing.shape), atol=1e-6)
