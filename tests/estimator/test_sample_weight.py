"""``fit(sample_weight=)``, ``class_weight`` and their metadata routing in scikit-learn."""

from dataclasses import replace

import numpy as np
import pytest
import sklearn
import torch
from scipy.special import log_softmax
from sklearn.base import clone
from sklearn.metrics import recall_score
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from fusekit import FusionClassifier, FusionRegressor, load
from fusekit.plugin import LossContext, ModalityBatch

SPEC = {"a": 3, "b": 2}


def _data(n: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    y = (X[:, 0] + X[:, 3] + 0.5 * rng.normal(size=n) > 0).astype(int)
    return X, y


def _duplicated(X, y, row: int):
    """(X with ``row`` repeated, y likewise) and (X, y, weights with 2 at ``row``)."""
    X_dup, y_dup = np.vstack([X, X[row : row + 1]]), np.append(y, y[row])
    weights = np.ones(len(y))
    weights[row] = 2.0
    return (X_dup, y_dup), weights


def _model(**params):
    # one batch holds every row: the loss is a sum over the same rows whatever the shuffle
    defaults = dict(modalities=SPEC, batch_size=256, max_epochs=4, lr=0.05, random_state=0)
    return FusionClassifier(**{**defaults, **params})


def test_loss_of_a_row_weighted_2_is_the_loss_of_it_twice():
    X, y = _data()
    (X_dup, y_dup), weights = _duplicated(X, y, row=3)
    model = _model(max_epochs=1).fit(X, y)
    network = model.module_
    prepared = model._prepare(X_dup, reset=False)
    batch = model._batch(prepared)
    target = torch.as_tensor(y_dup)
    with torch.no_grad():
        output = network(batch)
        repeated = network.loss(output, target, batch, training=True)
        single = batch.take(slice(0, len(y)))
        single.sample_weight = torch.as_tensor(weights, dtype=torch.float32)
        weighted = network.loss(network(single), target[: len(y)], single, training=True)
        logits = output.logits[: len(y)].double().numpy()
    # independent: sum_i w_i * (-log softmax(z_i)[y_i]) / sum_i w_i with scipy
    per_sample = -log_softmax(logits, axis=1)[np.arange(len(y)), y]
    expected = np.average(per_sample, weights=weights)
    assert repeated.item() == pytest.approx(expected, rel=1e-6)
    assert weighted.item() == pytest.approx(expected, rel=1e-6)


def test_weighted_mean_is_plain_mean_when_unweighted_and_ignores_zero_weight_rows():
    values = torch.tensor([1.0, 2.0, 6.0])
    where = torch.tensor([True, True, False])
    plain = LossContext(None, None, None, True)  # network unused by weighted_mean
    assert plain.weighted_mean(values).item() == pytest.approx(3.0)
    assert plain.weighted_mean(values, where).item() == pytest.approx(1.5)
    weighted = LossContext(None, _weighted_batch([0.0, 3.0, 1.0]), None, True)
    assert weighted.weighted_mean(values).item() == pytest.approx((6 + 6) / 4)
    assert weighted.weighted_mean(values, where).item() == pytest.approx(2.0)
    nothing = LossContext(None, _weighted_batch([0.0, 0.0, 0.0]), None, True)
    assert nothing.weighted_mean(values).item() == 0.0


def _weighted_batch(weights):
    """Three rows of one modality; the weights ride on the batch, where a context reads them."""
    n = len(weights)
    return ModalityBatch(
        {"a": torch.zeros(n, 1)},
        torch.ones(n, 1, dtype=torch.bool),
        sample_weight=torch.tensor(weights),
    )


@pytest.mark.parametrize("estimator", ["classifier", "regressor"])
def test_trained_parameters_of_a_row_weighted_2_equal_those_of_it_twice(estimator):
    X, y = _data()
    (X_dup, y_dup), weights = _duplicated(X, y, row=7)
    if estimator == "regressor":
        y, y_dup = X[:, 1] * 2.0 + X[:, 4], np.append(X[:, 1] * 2.0 + X[:, 4], 0.0)
        y_dup[-1] = y[7]
        make = lambda: FusionRegressor(  # noqa: E731
            modalities=SPEC, batch_size=256, max_epochs=4, lr=0.05, random_state=0
        )
    else:
        make = _model
    weighted = make().fit(X, y, sample_weight=weights)
    repeated = make().fit(X_dup, y_dup)
    unweighted = make().fit(X, y)
    for (name, a), b in zip(
        weighted.module_.state_dict().items(), repeated.module_.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    differs = [
        not torch.allclose(a, c, atol=1e-4)
        for a, c in zip(
            weighted.module_.state_dict().values(),
            unweighted.module_.state_dict().values(),
            strict=True,
        )
    ]
    assert any(differs), "the weights changed nothing: they never reached the loss"


@pytest.mark.parametrize("weighting", ["qmf", "tmc", "gradient_blending", "mla", "mmpareto"])
def test_task_loss_weightings_use_the_weights(weighting):
    X, y = _data()
    (X_dup, y_dup), weights = _duplicated(X, y, row=5)
    model = _model(weighting=weighting, max_epochs=1).fit(X, y)
    network = model.module_
    network.train()
    batch = model.as_batch(X_dup)
    torch.manual_seed(0)
    with torch.no_grad():
        output = network(batch)
        repeated = network.task_loss(
            output, LossContext(network, batch, torch.as_tensor(y_dup), True)
        )
        rows = slice(0, len(y))
        single = batch.take(rows)
        w = torch.as_tensor(weights, dtype=torch.float32)
        sliced = _slice_output(output, rows, single)
        ctx = LossContext(network, replace(single, sample_weight=w), torch.as_tensor(y), True)
        weighted = network.task_loss(sliced, ctx)
        unweighted = network.task_loss(
            sliced, LossContext(network, single, torch.as_tensor(y), True)
        )
    assert weighted.item() == pytest.approx(repeated.item(), rel=1e-5)
    assert weighted.item() != pytest.approx(unweighted.item(), rel=1e-6)


def _slice_output(output, rows, batch):
    """The first rows of every per-sample tensor of a FusionOutput (same pass, fewer rows)."""
    import copy

    sliced = copy.copy(output)
    sliced.mask, sliced.batch = output.mask[rows], batch
    sliced.logits = output.logits[rows]
    if output.unimodal_logits is not None:
        sliced.unimodal_logits = {m: v[rows] for m, v in output.unimodal_logits.items()}
    sliced.diagnostics = {
        k: (v[rows] if torch.is_tensor(v) and v.dim() > 0 and len(v) == len(output.mask) else v)
        for k, v in output.diagnostics.items()
    }
    if "mla_inputs" in output.diagnostics:
        sliced.diagnostics["mla_inputs"] = [v[rows] for v in output.diagnostics["mla_inputs"]]
    return sliced


def test_bad_sample_weight_is_refused_with_the_parameter_named():
    X, y = _data()
    with pytest.raises(ValueError, match="sample_weight"):
        _model().fit(X, y, sample_weight=np.ones(len(y) + 1))
    with pytest.raises(ValueError, match="[Nn]egative"):
        _model().fit(X, y, sample_weight=-np.ones(len(y)))
    with pytest.raises(ValueError, match="non-zero|sums to zero"):
        _model().fit(X, y, sample_weight=np.zeros(len(y)))


def test_class_weight_balanced_raises_minority_recall(train_seed):
    """Imbalanced 92/8 overlapping Gaussians. Minority recall (seeds 0..5): unweighted
    0.26-0.52, balanced 0.63-0.93, gain 0.22-0.48; the test asks for a gain above 0.1."""
    rng = np.random.default_rng(train_seed)
    n = 1200
    y = (rng.uniform(size=n) < 0.08).astype(int)
    X = rng.normal(size=(n, 4)) + 0.9 * y[:, None]
    train, test = slice(0, 800), slice(800, None)
    params = dict(modalities={"a": 2, "b": 2}, max_epochs=15, random_state=train_seed)
    plain = FusionClassifier(**params).fit(X[train], y[train])
    balanced = FusionClassifier(class_weight="balanced", **params).fit(X[train], y[train])
    recall_plain = recall_score(y[test], plain.predict(X[test]))
    recall_balanced = recall_score(y[test], balanced.predict(X[test]))
    assert recall_balanced > recall_plain + 0.1, (recall_plain, recall_balanced)


def test_class_weight_dict_equals_the_matching_sample_weight():
    X, y = _data()
    by_class = _model(class_weight={0: 1.0, 1: 3.0}).fit(X, y)
    by_row = _model().fit(X, y, sample_weight=np.where(y == 1, 3.0, 1.0))
    torch.testing.assert_close(by_class.predict_proba(X), by_row.predict_proba(X))


class Recording(FusionClassifier):
    """Records the weights (which encode row ids) every fit receives, and its validation rows."""

    fits: list = []

    def fit(self, X, y, sample_weight=None):
        super().fit(X, y, sample_weight=sample_weight)
        split = self.net_.train_split
        valid = None if split is None else sample_weight[split.valid_rows]
        type(self).fits.append((np.asarray(sample_weight).copy(), valid))
        return self


def _ids(weights):
    return set(np.rint(weights * 1000).astype(int).tolist())


def test_grid_search_routes_weights_and_early_stopping_never_sees_the_test_fold():
    X, y = _data(n=90)
    weights = 1.0 + np.arange(len(y)) / 1000  # row i weighs 1 + i/1000: the weight names the row
    Recording.fits = []
    folds = list(KFold(3, shuffle=True, random_state=0).split(X))
    with sklearn.config_context(enable_metadata_routing=True):
        model = (
            Recording(
                modalities=SPEC,
                max_epochs=5,
                early_stopping=True,
                n_iter_no_change=2,
                random_state=0,
            )
            .set_fit_request(sample_weight=True)
            .set_score_request(sample_weight=False)
        )
        search = GridSearchCV(model, {"lr": [0.01, 0.05]}, cv=folds, refit=False)
        search.fit(X, y, sample_weight=weights)
    assert len(Recording.fits) == 2 * len(folds)
    for (seen, valid), (train_rows, test_rows) in zip(Recording.fits, folds * 2, strict=True):
        assert _ids(seen) == _ids(weights[train_rows])  # exactly the training fold, weighted
        assert valid is not None and _ids(valid) <= _ids(weights[train_rows])
        assert not _ids(valid) & _ids(weights[test_rows])


def test_cross_validate_and_pipeline_route_weights():
    X, y = _data(n=60)
    weights = 1.0 + np.arange(len(y)) / 1000
    Recording.fits = []
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = Pipeline(
            [
                ("identity", FunctionTransformer()),
                (
                    "model",
                    Recording(modalities=SPEC, max_epochs=2)
                    .set_fit_request(sample_weight=True)
                    .set_score_request(sample_weight=True),
                ),
            ]
        )
        cross_validate(pipe, X, y, cv=KFold(2), params={"sample_weight": weights})
    assert [len(seen) for seen, _ in Recording.fits] == [30, 30]
    assert _ids(Recording.fits[0][0]) == _ids(weights[30:])


def test_without_routing_request_weights_are_refused_by_sklearn():
    X, y = _data(n=30)
    with (
        sklearn.config_context(enable_metadata_routing=True),
        pytest.raises(Exception, match="sample_weight"),
    ):
        cross_validate(_model(), X, y, cv=2, params={"sample_weight": np.ones(30)})


def test_new_parameters_in_get_params_clone_and_save(tmp_path):
    params = dict(
        early_stopping=True,
        validation_fraction=0.2,
        n_iter_no_change=3,
        tol=1e-3,
        warm_start=True,
        class_weight={0: 1.0, 1: 2.5},
    )
    model = _model(**params)
    assert {k: model.get_params()[k] for k in params} == params
    assert {k: clone(model).get_params()[k] for k in params} == params
    X, y = _data()
    model.fit(X, y)
    loaded = load(model.save(tmp_path / "model.fusekit"))
    assert {k: loaded.get_params()[k] for k in params} == params
    regressor = FusionRegressor(early_stopping=True, tol=0.5)
    assert "class_weight" not in regressor.get_params()
    assert clone(regressor).get_params()["tol"] == 0.5
