"""Pairwise Shapley interactions: against the Möbius transform (an independent formula) and games
worked by hand; the model-level table against scores the test computes itself with NaN-marked
modalities."""

import itertools

import numpy as np
import pytest

from fusekit import FusionClassifier, Modalities
from fusekit.datasets import make_multimodal_classification
from fusekit.inspection import exact_shapley_interactions, modality_interactions


def _subsets(players):
    return itertools.chain.from_iterable(
        itertools.combinations(players, k) for k in range(len(players) + 1)
    )


def _moebius_interactions(value, n_players):
    """I_ij = Σ_{T ⊇ {i,j}} m(T) / (|T| − 1), m(T) = Σ_{S ⊆ T} (−1)^{|T|−|S|} v(S) (Möbius)."""
    players = range(n_players)
    moebius = {
        frozenset(T): sum((-1) ** (len(T) - len(S)) * value(frozenset(S)) for S in _subsets(T))
        for T in _subsets(players)
    }
    out = np.zeros((n_players, n_players))
    for i, j in itertools.permutations(players, 2):
        out[i, j] = sum(m / (len(T) - 1) for T, m in moebius.items() if {i, j} <= T)
    return out


@pytest.mark.parametrize("n_players", [2, 3, 4, 5])
def test_interactions_equal_the_moebius_formula_on_random_games(n_players):
    rng = np.random.default_rng(n_players)
    table = {frozenset(S): rng.normal() for S in _subsets(range(n_players))}
    got = exact_shapley_interactions(table.__getitem__, n_players)
    np.testing.assert_allclose(got, _moebius_interactions(table.__getitem__, n_players), atol=1e-12)
    np.testing.assert_allclose(got, got.T)
    np.testing.assert_array_equal(np.diag(got), 0)


def test_two_players_give_the_second_difference():
    v = {frozenset(): 1.0, frozenset({0}): 3.0, frozenset({1}): 4.0, frozenset({0, 1}): 5.0}
    got = exact_shapley_interactions(v.__getitem__, 2)
    assert got[0, 1] == pytest.approx(5 - 3 - 4 + 1)  # −1: redundant


def test_complementary_redundant_and_additive_games_by_hand():
    both = exact_shapley_interactions(lambda S: float({0, 1} <= S), 3)  # needs both 0 and 1
    either = exact_shapley_interactions(lambda S: float(bool({0, 1} & S)), 3)  # either suffices
    additive = exact_shapley_interactions(lambda S: float(sum(2.0**i for i in S)), 3)
    assert both[0, 1] == pytest.approx(1.0) and both[0, 2] == pytest.approx(0.0)
    assert either[0, 1] == pytest.approx(-1.0)
    np.testing.assert_allclose(additive, 0, atol=1e-12)


def test_interactions_need_two_players():
    with pytest.raises(ValueError, match="interactions need at least two players"):
        exact_shapley_interactions(lambda S: 0.0, 1)


def _absent(X, names):
    return Modalities({m: np.full_like(v, np.nan) if m in names else v for m, v in X.items()})


@pytest.fixture(scope="module")
def fitted(train_seed):
    """An informative modality, its exact copy (redundant with it) and noise, each absent in 30 %
    of the training rows so any one present is usable."""
    X, y = make_multimodal_classification(
        1000, [6, 6], n_classes=3, informative=[1.0, 0.0], shared=1.0, noise=0.1,
        names=["signal", "noise"], random_state=train_seed,
    )  # fmt: skip
    X = Modalities(signal=X["signal"], copy=X["signal"].copy(), noise=X["noise"])
    train = Modalities({name: values[:700].copy() for name, values in X.items()})
    rng = np.random.default_rng(train_seed)
    for name in train:
        train[name][rng.random(700) < 0.3] = np.nan
    model = FusionClassifier(max_epochs=25, random_state=train_seed).fit(train, y[:700])
    return model, Modalities({n: v[700:] for n, v in X.items()}), y[700:]


def test_table_equals_the_formula_on_scores_computed_by_hand(fitted):
    model, X, y = fitted
    names = list(X)
    table = modality_interactions(model, X, y, n_repeats=0)

    def score(players):
        return model.score(_absent(X, {names[i] for i in range(3) if i not in players}), y)

    expected = _moebius_interactions(score, 3)
    matrix = table.attrs["matrix"].loc[names, names].to_numpy()
    np.testing.assert_allclose(matrix, expected, atol=1e-9)
    assert list(table.columns) == [
        "modality_a", "modality_b", "interaction", "std", "kind", "metric"
    ]  # fmt: skip
    assert table["interaction"].abs().is_monotonic_decreasing


def test_an_exact_copy_is_redundant_with_its_original(fitted):
    model, X, y = fitted
    table = modality_interactions(model, X, y, n_repeats=5, random_state=0)
    pair = table[(table.modality_a == "signal") & (table.modality_b == "copy")].iloc[0]
    assert pair["kind"] == "redundant"
    assert pair["interaction"] < -0.2  # each alone gives most of the accuracy the pair gives
    assert 0 < pair["std"] < 0.05


def test_bad_calls_are_named(fitted):
    model, X, y = fitted
    with pytest.raises(ValueError, match="above max_modalities=2"):
        modality_interactions(model, X, y, max_modalities=2)
    with pytest.raises(ValueError, match="n_repeats must be an integer >= 0"):
        modality_interactions(model, X, y, n_repeats=-1)
    with pytest.raises(ValueError, match="modality_interactions needs a fitted fusekit estimator"):
        modality_interactions(FusionClassifier(), X, y)
