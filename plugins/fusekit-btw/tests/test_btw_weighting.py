"""BTW inside FusionClassifier / FusionRegressor: registration, training, weights, prediction."""

import pickle

import numpy as np
import pytest
import torch
from fusekit_btw import BTW, BTWLocal
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from fusekit import FusionClassifier, FusionRegressor, Modalities
from fusekit.engine.registry import get_registry

FAST = {"max_epochs": 4, "random_state": 0}


def make_data(n_modalities=3, n=150, missing=0.3, seed=0, task="classification"):
    """Modality 0 carries the label strongly, modality 1 is pure noise, the rest weakly."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    blocks = {}
    for m in range(n_modalities):
        signal = 2.0 if m == 0 else (0.0 if m == 1 else 0.5)
        block = rng.normal(size=(n, 3 + m)) + signal * y[:, None]
        absent = rng.random(n) < missing
        absent[rng.integers(0, n, 5)] = False
        block[absent] = np.nan
        blocks[f"m{m}"] = block
    if task == "regression":
        y = np.stack([y + 0.3 * rng.normal(size=n), -y + 0.3 * rng.normal(size=n)], axis=1)
    return Modalities(**blocks), y


def test_registered_as_btw_and_btw_local():
    registry = get_registry()
    assert registry.entry("weighting", "btw").obj is BTW
    assert registry.entry("weighting", "btw_local").obj is BTWLocal
    assert registry.entry("weighting", "btw").distribution == "fusekit-btw"
    assert BTWLocal().level == "local" and BTW().level == "bi"


@pytest.mark.parametrize("unimodal", ["separate", "heads"])
def test_btw_adds_no_trainable_parameters(unimodal):
    X, y = make_data()
    plain = FusionClassifier(**FAST).fit(X, y).module_
    model = FusionClassifier(weighting="btw", weighting__unimodal=unimodal, **FAST).fit(X, y)
    weighting = model.module_.weighting
    assert sum(p.numel() for p in weighting.parameters()) == 0
    assert "weights_" in dict(weighting.named_buffers())
    optimised = {id(p) for group in model.net_.optimizer_.param_groups for p in group["params"]}
    assert id(weighting.weights_) not in optimised
    heads = 0
    if unimodal == "heads":  # the cheap protocol's reference model: one linear head per modality
        heads = sum(p.numel() for p in model.module_.unimodal_heads.parameters())
    assert _trainable(model.module_) == _trainable(plain) + heads


@pytest.mark.parametrize("weighting", ["btw", "btw_local"])
@pytest.mark.parametrize("n_modalities", [2, 6])
@pytest.mark.parametrize("unimodal", ["separate", "heads"])
def test_classifier_with_30_percent_missing(weighting, n_modalities, unimodal):
    X, y = make_data(n_modalities)
    model = FusionClassifier(weighting=weighting, weighting__unimodal=unimodal, **FAST).fit(X, y)
    probabilities = model.predict_proba(X)
    assert np.isfinite(probabilities).all()
    assert model.score(X, y) > 0.6
    stored = model.module_.weighting.weights_
    mask = model.module_.weighting.weights_.new_tensor(~np.isnan(_first_column(X)))
    assert torch.isfinite(stored).all() and (stored >= 0).all()
    assert (stored[mask == 0] == 0).all()


@pytest.mark.parametrize("weighting", ["btw", "btw_local"])
@pytest.mark.parametrize("n_modalities", [2, 4])
def test_multi_output_regressor_with_30_percent_missing(weighting, n_modalities):
    X, y = make_data(n_modalities, task="regression")
    model = FusionRegressor(weighting=weighting, **FAST).fit(X, y)
    prediction = model.predict(X)
    assert prediction.shape == y.shape and np.isfinite(prediction).all()
    assert model.score(X, y) > 0.5
    btw = model.module_.weighting
    assert btw.multimodal_std_.shape == (2,) and (btw.unimodal_std_ > 0).all()


@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize("level", ["bi", "local", "global_kl", "global_mi"])
def test_stored_weights_are_the_normalised_weights_when_alpha_is_one(task, level):
    X, y = make_data(4, task=task)
    estimator = FusionClassifier if task == "classification" else FusionRegressor
    model = estimator(
        weighting="btw", weighting__level=level, weighting__alpha=1.0, weighting__alpha_step=0.0,
        **FAST,
    ).fit(X, y)  # fmt: skip
    weights = model.module_.weighting.weights_.numpy()
    mask = np.stack([~np.isnan(X[name][:, 0]) for name in X], axis=1)
    assert (weights[~mask] == 0).all() and (weights >= 0).all()
    if level in ("bi", "local"):
        rows = mask.any(axis=1)
        np.testing.assert_allclose(weights[rows].sum(axis=1), 1.0, atol=1e-5)


def test_mi_weights_downweight_the_noise_modality():
    X, y = make_data(3, n=300, missing=0.0)
    btw = FusionClassifier(weighting="btw", **FAST).fit(X, y).module_.weighting
    assert btw.mi_.sum().item() == pytest.approx(1.0, abs=1e-6)
    assert btw.mi_[1] < btw.mi_[0]


def test_weights_scale_the_embeddings_exactly_and_zero_weight_isolates():
    X, y = make_data(3, missing=0.0)
    model = FusionClassifier(weighting="btw", **FAST).fit(X, y)
    network, btw = model.module_, model.module_.weighting
    batch = model._batch(model._prepare(X, reset=False), with_index=True)
    with torch.no_grad():
        output = network(batch)
        np.testing.assert_allclose(output.modality_weights, btw.weights_[batch.index], rtol=1e-6)
        manual = {
            m: h * btw.weights_[:, position, None]
            for position, (m, h) in enumerate(output.calibrated.items())
        }
        expected = network.head(network.fusion(manual, batch.mask, output))
        np.testing.assert_allclose(output.logits, expected, rtol=1e-5, atol=1e-6)
        btw.weights_[:, 1] = 0.0
        before = network(batch).logits
        noisy = dict(batch.features)
        noisy["m1"] = noisy["m1"] + 5.0 * torch.randn_like(noisy["m1"])
        batch.features = noisy
        np.testing.assert_allclose(network(batch).logits, before, rtol=1e-6)


def test_alpha_moves_by_exactly_one_step_per_update():
    X, y = make_data(3)
    btw = FusionClassifier(weighting="btw", max_epochs=8, random_state=0).fit(X, y)
    alphas = [0.5] + [entry["alpha"] for entry in btw.module_.weighting.history_]
    steps = np.round(np.diff(alphas), 10)
    assert steps[0] == 0.0  # the first update sets the reference score
    assert set(steps[1:]) <= {0.05, -0.05} and len(alphas) == 9


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_predict_reads_no_label_and_is_row_independent(monkeypatch, task):
    X, y = make_data(3, task=task)
    estimator = FusionClassifier if task == "classification" else FusionRegressor
    model = estimator(weighting="btw", weighting__predict_weights="recompute", **FAST)
    btw = model.fit(X, y).module_.weighting
    calls = []
    original = btw._hat_weights

    def spy(unimodal, multimodal, mask, target):
        calls.append(target)
        return original(unimodal, multimodal, mask, target)

    monkeypatch.setattr(btw, "_hat_weights", spy)
    predict = model.predict_proba if task == "classification" else model.predict
    everything = predict(X)
    assert calls and all(target is None for target in calls)
    assert np.isfinite(everything).all()
    order = np.random.default_rng(1).permutation(len(y))
    shuffled = Modalities(**{name: X[name][order] for name in X})
    np.testing.assert_allclose(predict(shuffled), everything[order], atol=1e-5)
    one_row = Modalities(**{name: X[name][:1] for name in X})
    np.testing.assert_allclose(predict(one_row), everything[:1], atol=1e-5)


@pytest.mark.parametrize("mode", ["recompute", "mean", "ones"])
def test_predict_weights_modes(mode):
    X, y = make_data(3)
    model = FusionClassifier(weighting="btw", weighting__predict_weights=mode, **FAST).fit(X, y)
    batch = model._batch(model._prepare(X, reset=False))
    with torch.no_grad():
        weights = model.module_(batch).modality_weights
    assert torch.isfinite(weights).all() and (weights[~batch.mask] == 0).all()
    if mode == "ones":
        assert torch.equal(weights, batch.mask.float())
    if mode == "mean":
        btw = model.module_.weighting
        assert torch.allclose(weights, btw.mean_weights_ * batch.mask)


def test_same_seed_gives_identical_weights_and_predictions():
    X, y = make_data(3)
    estimator = FusionRegressor(weighting="btw", **FAST)
    first, second = clone(estimator).fit(X, y[:, None]), clone(estimator).fit(X, y[:, None])
    assert torch.equal(first.module_.weighting.weights_, second.module_.weighting.weights_)
    np.testing.assert_array_equal(first.predict(X), second.predict(X))


def test_grid_search_over_weighting():
    X, y = make_data(3, n=120)
    search = GridSearchCV(
        FusionClassifier(max_epochs=3, random_state=0),
        {"weighting": ["none", "btw", "btw_local"]},
        cv=2,
    ).fit(X, y)
    assert len(search.cv_results_["mean_test_score"]) == 3
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("level", "global"),
        ("unimodal", "oof"),
        ("alpha", 1.5),
        ("update_every", 0),
        ("predict_weights", "test"),
        ("unimodal_epochs", -1),
    ],
)
def test_bad_parameters_raise_a_clear_error(param, value):
    X, y = make_data(2, n=40)
    with pytest.raises(ValueError, match=param):
        FusionClassifier(weighting="btw", **{f"weighting__{param}": value}, **FAST).fit(X, y)


def _trainable(network):
    return sum(p.numel() for p in network.parameters() if p.requires_grad)


def _first_column(X):
    return np.stack([X[name][:, 0] for name in X], axis=1)


@pytest.mark.parametrize("mode", ["mean", "recompute"])
def test_fitted_model_pickles_with_its_unimodal_models(mode):
    X, y = make_data(3)
    model = FusionClassifier(weighting="btw", weighting__predict_weights=mode, **FAST).fit(X, y)
    restored = pickle.loads(pickle.dumps(model))
    assert len(restored.module_.weighting._unimodal_models) == 3
    np.testing.assert_allclose(restored.predict_proba(X), model.predict_proba(X), atol=1e-7)
