"""BTW inside FusionClassifier / FusionRegressor: registration, training, weights, prediction."""

import pickle

import numpy as np
import pytest
import torch
from btw_tasks import exclusion_task, split, sum_task
from fusekit_btw import BTW, BTWLocal
from scipy.special import softmax
from scipy.stats import entropy
from sklearn.base import clone
from sklearn.feature_selection import mutual_info_regression
from sklearn.metrics import mutual_info_score
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
    """Finite, normalised outputs and absent modalities at weight 0 under 30 % missingness.

    Accuracy is checked by ``test_classifier_uses_every_modality`` (held out, on a task that
    needs every modality): here m0 alone carries the label, so an accuracy bar could not tell a
    model that ignores the other modalities from one that uses them.
    """
    X, y = make_data(n_modalities)
    model = FusionClassifier(weighting=weighting, weighting__unimodal=unimodal, **FAST).fit(X, y)
    probabilities = model.predict_proba(X)
    assert np.isfinite(probabilities).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    stored = model.module_.weighting.weights_
    mask = model.module_.weighting.weights_.new_tensor(~np.isnan(_first_column(X)))
    assert torch.isfinite(stored).all() and (stored >= 0).all()
    assert (stored[mask == 0] == 0).all()


@pytest.mark.parametrize("weighting", ["btw", "btw_local"])
@pytest.mark.parametrize(("n_modalities", "n_train", "epochs"), [(2, 300, 6), (3, 400, 10)])
@pytest.mark.parametrize("unimodal", ["separate", "heads"])
def test_classifier_uses_every_modality(
    weighting, n_modalities, n_train, epochs, unimodal, train_seed
):
    """Held-out accuracy above the 1/2 a model ignoring any one modality can reach.

    Scored on 300 fresh rows: training accuracy would not do, a model with modality m0 shuffled
    memorises its way to 0.58-0.77 on the training rows (but 0.44-0.56 held out). Over
    FUSEKIT_TEST_SEED=0-5: M = 2 (chance 1/3) 0.89-0.95, M = 3 (chance 1/4) 0.84-0.90;
    threshold 0.75; cap of a model that drops a modality 0.5 (see ``exclusion_task``).
    """
    X, y = exclusion_task(n_modalities, n_train + 300, train_seed)
    X_train, y_train, X_test, y_test = split(X, y, n_train)
    model = FusionClassifier(
        weighting=weighting, weighting__unimodal=unimodal, max_epochs=epochs,
        random_state=train_seed,
    ).fit(X_train, y_train)  # fmt: skip
    assert model.score(X_test, y_test) > 0.75


@pytest.mark.parametrize("weighting", ["btw", "btw_local"])
def test_regressor_uses_every_modality(weighting, train_seed):
    """Held-out R² above the 1/2 a model ignoring one of the two modalities can reach.

    Over FUSEKIT_TEST_SEED=0-5: 0.78-0.89 on 300 fresh rows (threshold 0.65); with m0 shuffled
    the same fit scores 0.33-0.49 (see ``sum_task``).
    """
    X, y = sum_task(2, 500, train_seed)
    X_train, y_train, X_test, y_test = split(X, y, 200)
    model = FusionRegressor(weighting=weighting, max_epochs=8, random_state=train_seed)
    assert model.fit(X_train, y_train).score(X_test, y_test) > 0.65


@pytest.mark.parametrize("weighting", ["btw", "btw_local"])
@pytest.mark.parametrize("n_modalities", [2, 4])
def test_multi_output_regressor_with_30_percent_missing(weighting, n_modalities):
    """Shapes, finiteness, pooled stds; R² is checked by ``test_regressor_uses_every_modality``."""
    X, y = make_data(n_modalities, task="regression")
    model = FusionRegressor(weighting=weighting, **FAST).fit(X, y)
    prediction = model.predict(X)
    assert prediction.shape == y.shape and np.isfinite(prediction).all()
    btw = model.module_.weighting
    assert btw.multimodal_std_.shape == (2,) and (btw.unimodal_std_ > 0).all()


def btw_weights_by_hand(unimodal, multimodal, mask, target, level, task, seed):
    """ŵ (N, M) from the paper's equations, written here independently of ``fusekit_btw``.

    ``unimodal`` (N, M, K) and ``multimodal`` (N, K) are logits (classification) or predictions
    (regression), ``mask`` (N, M) bool, ``target`` (N, K). Hou et al., BTW (EMNLP Findings 2025):
    Eq. 5 KL(p^m ‖ p^MM) of the softmax outputs (scipy's ``entropy``), or Eq. 6 = Eq. 15, the
    Gaussian KL with μ = ŷ and σ = |y − ŷ| (floored at 1e-3, summed over outputs); both floored
    at 1e-5 (authors' code) and sum-normalised over the present modalities of each instance.
    Eq. 7: I(Ŷ^m; Ŷ^MM), ``mutual_info_score`` of argmax classes or k = 3 ``mutual_info_regression``
    (mean over outputs), floored at 1e-5 and normalised to sum 1. Eq. 8 (local): KL̃; Eq. 9 (bi):
    KL̃·Ĩ renormalised per instance; Sec. 6.1 ablations: mean_i KL̃ (global_kl), Ĩ (global_mi).
    """
    n_modalities = unimodal.shape[1]
    rows = [mask[:, m] for m in range(n_modalities)]
    if task == "classification":
        kl = entropy(softmax(unimodal, axis=-1), softmax(multimodal, axis=-1)[:, None], axis=-1)
        mi = [
            mutual_info_score(unimodal[r, m].argmax(-1), multimodal[r].argmax(-1))
            for m, r in enumerate(rows)
        ]
    else:
        std_p = np.maximum(np.abs(target[:, None] - unimodal), 1e-3)  # (N, M, K)
        std_q = np.maximum(np.abs(target - multimodal), 1e-3)[:, None]  # (N, 1, K)
        mean_gap = unimodal - multimodal[:, None]
        kl = np.log(std_q / std_p) + (std_p**2 + mean_gap**2) / (2 * std_q**2) - 0.5
        kl = kl.sum(axis=-1)
        mi = [
            np.mean(
                [
                    mutual_info_regression(
                        unimodal[r, m, k : k + 1], multimodal[r, k], n_neighbors=3,
                        random_state=seed,
                    )[0]
                    for k in range(unimodal.shape[2])
                ]
            )
            for m, r in enumerate(rows)
        ]  # fmt: skip
    kl = np.where(mask, np.maximum(kl, 1e-5), 0.0)
    kl_normalised = kl / np.maximum(kl.sum(axis=1, keepdims=True), 1e-300)
    mi = np.maximum(np.array(mi), 1e-5)
    mi = mi / mi.sum()
    if level == "local":
        return kl_normalised
    if level == "bi":
        both = kl_normalised * mi
        return both / np.maximum(both.sum(axis=1, keepdims=True), 1e-300)
    if level == "global_kl":
        return mask * (kl_normalised.sum(axis=0) / mask.sum(axis=0))
    return mask * mi


@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize("level", ["bi", "local", "global_kl", "global_mi"])
def test_stored_weights_are_the_recomputed_weights_when_alpha_is_one(monkeypatch, task, level):
    """α = 1 and step 0: the stored W is ŵ of the last update (Eq. 10), recomputed here.

    A spy records what the last update saw (ŷ^m, ŷ^MM, the mask, y, and W before it); the test
    checks that ŷ^MM is the fitted network's prediction with that W, recomputes ŵ from the
    paper's equations (``btw_weights_by_hand``) and compares it with the stored weights.
    """
    seen = {}
    original = BTW._hat_weights

    def spy(self, unimodal, multimodal, mask, target):
        if target is not None:  # an update on the training rows
            seen.update(
                unimodal=unimodal.double().numpy(), multimodal=multimodal.clone(),
                mask=mask.numpy().copy(), target=target.double().numpy(),
                before=self.weights_.clone(),
            )  # fmt: skip
        return original(self, unimodal, multimodal, mask, target)

    monkeypatch.setattr(BTW, "_hat_weights", spy)
    X, y = make_data(4, task=task)
    estimator = FusionClassifier if task == "classification" else FusionRegressor
    model = estimator(
        weighting="btw", weighting__level=level, weighting__alpha=1.0, weighting__alpha_step=0.0,
        **FAST,
    ).fit(X, y)  # fmt: skip
    network, btw = model.module_, model.module_.weighting
    weights = btw.weights_.numpy()
    mask = np.stack([~np.isnan(X[name][:, 0]) for name in X], axis=1)
    np.testing.assert_array_equal(seen["mask"], mask)
    stored = btw.weights_.clone()
    btw.weights_ = seen["before"]  # ŷ^MM of the last update: the final network, previous W
    batch = model._batch(model._prepare(X, reset=False), with_index=True)
    network.eval()
    with torch.no_grad():
        again = network(batch).logits
    btw.weights_ = stored
    torch.testing.assert_close(again, seen["multimodal"], rtol=1e-5, atol=1e-6)
    multimodal = seen["multimodal"].double().numpy()
    target = seen["target"]
    if task == "regression":
        target = target.reshape(multimodal.shape)  # (N, K), the standardised y
    expected = btw_weights_by_hand(
        seen["unimodal"], multimodal, mask, target, level, task, btw._seed
    )
    np.testing.assert_allclose(weights, expected, rtol=1e-4, atol=1e-6)
    assert (weights[~mask] == 0).all()
    if level in ("bi", "local"):
        rows = mask.any(axis=1)
        np.testing.assert_allclose(weights[rows].sum(axis=1), 1.0, atol=1e-5)


def test_mi_weights_downweight_the_noise_modality(train_seed):
    X, y = make_data(3, n=300, missing=0.0, seed=train_seed)
    model = FusionClassifier(weighting="btw", max_epochs=4, random_state=train_seed).fit(X, y)
    btw = model.module_.weighting
    assert btw.mi_.sum().item() == pytest.approx(1.0, abs=1e-6)
    # Ĩ over FUSEKIT_TEST_SEED=0-5: strong m0 0.66-0.72, pure-noise m1 0.005-0.026, weak m2
    # 0.26-0.32: the order follows the signal, and the noise modality is near the MI floor.
    assert btw.mi_[1] < 0.1 and btw.mi_[1] < btw.mi_[2] < btw.mi_[0]


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
