"""``partial_fit``: one epoch per chunk, continuing the model, as ``MLPClassifier.partial_fit``.

The reference for the training path is ``fit`` with ``max_epochs=1`` over the concatenated
chunks, without shuffling: the same batches in the same order, so k calls must train the same
weights (dropout and modality dropout included: their random draws continue across calls).
"""

import numpy as np
import pytest
import torch
from reliability.raising import raises_exactly
from skorch.callbacks import Callback

from fusekit import FusionClassifier, FusionRegressor
from fusekit.plugin import Weighting

CHUNK, BATCH, K = 16, 8, 3  # chunks of two whole batches


def _chunks(seed: int = 0):
    """K chunks whose every column (and the target) holds the same values in another order, so
    statistics from the first chunk equal those of the concatenation."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(2.0, 3.0, size=(CHUNK, 3)), rng.normal(-1.0, 0.5, size=(CHUNK, 2))
    y = np.arange(CHUNK) % 3
    target = rng.normal(5.0, 2.0, size=CHUNK)
    chunks = [({"a": a, "b": b}, y, target)]
    for _ in range(K - 1):
        shuffle = lambda block: np.column_stack([rng.permutation(c) for c in block.T])  # noqa: E731
        chunks.append(
            ({"a": shuffle(a), "b": shuffle(b)}, rng.permutation(y), rng.permutation(target))
        )
    return chunks


def _concatenated(chunks, target: int):
    X = {m: np.concatenate([c[0][m] for c in chunks]) for m in ("a", "b")}
    return X, np.concatenate([c[target] for c in chunks])


PARAMS = dict(batch_size=BATCH, shuffle=False, random_state=0, lr=0.05)
RANDOM_DRAWS = dict(backbone__dropout=0.3, weighting="modality_dropout")


def _assert_same_weights(left, right):
    theirs = right.module_.state_dict()
    for name, value in left.module_.state_dict().items():
        torch.testing.assert_close(value, theirs[name], rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("extra", [{}, RANDOM_DRAWS], ids=["plain", "dropout"])
def test_k_calls_train_as_one_epoch_of_fit_over_the_concatenation(extra):
    chunks = _chunks()
    model = FusionClassifier(**PARAMS, **extra)
    for X, y, _ in chunks:
        model.partial_fit(X, y, classes=[0, 1, 2])
    X_all, y_all = _concatenated(chunks, 1)
    whole = FusionClassifier(max_epochs=1, **PARAMS, **extra).fit(X_all, y_all)
    _assert_same_weights(model, whole)
    np.testing.assert_allclose(model.predict_proba(X_all), whole.predict_proba(X_all), atol=1e-6)
    assert model.n_iter_ == K and whole.n_iter_ == 1
    untrained = FusionClassifier(max_epochs=1, **PARAMS, **extra).partial_fit(
        *chunks[0][:2], classes=[0, 1, 2]
    )
    assert not np.allclose(untrained.predict_proba(X_all), model.predict_proba(X_all))


def test_regressor_k_calls_train_as_one_epoch_of_fit_over_the_concatenation():
    chunks = _chunks(1)
    model = FusionRegressor(**PARAMS, **RANDOM_DRAWS)
    for X, _, target in chunks:
        model.partial_fit(X, target)
    X_all, y_all = _concatenated(chunks, 2)
    whole = FusionRegressor(max_epochs=1, **PARAMS, **RANDOM_DRAWS).fit(X_all, y_all)
    _assert_same_weights(model, whole)
    np.testing.assert_allclose(model.predict(X_all), whole.predict(X_all), rtol=1e-5)


def _adam_steps(model) -> set[int]:
    return {int(s["step"]) for s in model.net_.optimizer_.state_dict()["state"].values()}


def test_optimizer_state_and_history_carry_across_calls():
    (X, y, _), *_ = _chunks()
    model = FusionClassifier(batch_size=BATCH, random_state=0, max_epochs=30)
    previous = None
    for call in range(1, 4):
        model.partial_fit(X, y, classes=[0, 1, 2] if call == 1 else None)
        assert _adam_steps(model) == {call * CHUNK // BATCH}  # Adam counts every batch
        assert model.n_iter_ == call and len(model.loss_curve_) == call  # one epoch per call
        if previous is not None:  # each call trains a copy (a failure leaves the last one)
            assert model.module_ is not previous
        previous = model.module_


def test_partial_fit_after_fit_continues_the_fitted_model():
    (X, y, _), *_ = _chunks()
    model = FusionClassifier(batch_size=BATCH, max_epochs=2, random_state=0).fit(X, y)
    model.partial_fit(X, y)  # the classes are those of fit
    assert model.n_iter_ == 3 and _adam_steps(model) == {3 * CHUNK // BATCH}


class Recorder(Weighting):
    """Records the hooks a weighting sees: ``on_train_begin`` once, one epoch per call."""

    def __init__(self) -> None:
        super().__init__()

    def build(self, spec) -> None:
        self.begins, self.epochs = 0, []

    def on_train_begin(self, ctx) -> None:
        self.begins += 1

    def on_epoch_begin(self, ctx) -> None:
        self.epochs.append((ctx.epoch, len(ctx.data)))


def test_plugin_state_is_kept_and_each_call_is_one_epoch_on_its_chunk():
    (X, y, _), *_ = _chunks()
    model = FusionClassifier(weighting=Recorder(), batch_size=BATCH, random_state=0)
    model.partial_fit(X, y, classes=[0, 1, 2])
    half = {m: v[:10] for m, v in X.items()}
    model.partial_fit(half, y[:10])
    model.partial_fit(X, y)
    recorder = model.module_.weighting
    assert recorder.begins == 1
    assert recorder.epochs == [(0, CHUNK), (1, 10), (2, CHUNK)]


def _state(model):
    return (
        {k: v.clone() for k, v in model.module_.state_dict().items()},
        model.n_iter_,
        _adam_steps(model),
        model.classes_.tolist(),
    )


def _assert_unchanged(model, before):
    weights, n_iter, steps, classes = before
    torch.testing.assert_close(model.module_.state_dict(), weights, rtol=0, atol=0)
    assert (model.n_iter_, _adam_steps(model), model.classes_.tolist()) == (n_iter, steps, classes)


def test_classes_are_required_on_the_first_call():
    (X, y, _), *_ = _chunks()
    model = FusionClassifier(batch_size=BATCH)
    with raises_exactly(ValueError, r"partial_fit needs classes on its first call.*classes=None"):
        model.partial_fit(X, y)
    assert not hasattr(model, "net_") and not hasattr(model, "classes_")


def test_a_chunk_may_hold_some_classes_only_but_no_unseen_label():
    (X, y, _), *_ = _chunks()
    model = FusionClassifier(batch_size=BATCH, random_state=0)
    model.partial_fit(X, np.where(y == 2, 0, y), classes=[0, 1, 2])  # no 2 in this chunk
    assert model.classes_.tolist() == [0, 1, 2]
    before = _state(model)
    with raises_exactly(ValueError, r"y has labels \[7\] that are not in classes \[0, 1, 2\]"):
        model.partial_fit(X, np.where(y == 2, 7, y))
    _assert_unchanged(model, before)
    with raises_exactly(ValueError, r"y has labels \['x'\] that are not in classes"):
        model.partial_fit(X, np.array(["x"] * CHUNK))
    _assert_unchanged(model, before)


def test_first_call_labels_outside_classes_are_refused():
    (X, y, _), *_ = _chunks()
    with raises_exactly(ValueError, r"y has labels \[2\] that are not in classes \[0, 1\]"):
        FusionClassifier().partial_fit(X, y, classes=[0, 1])


def test_classes_may_not_change_between_calls():
    (X, y, _), *_ = _chunks()
    model = FusionClassifier(batch_size=BATCH, random_state=0).partial_fit(X, y, classes=[0, 1, 2])
    before = _state(model)
    with raises_exactly(ValueError, r"got classes=\[0, 1, 2, 3\], but the model was fitted with"):
        model.partial_fit(X, y, classes=[0, 1, 2, 3])
    _assert_unchanged(model, before)
    model.partial_fit(X, y, classes=[2, 1, 0, 1])  # the same set, in any order
    assert model.n_iter_ == 2


def test_one_class_is_not_enough():
    (X, y, _), *_ = _chunks()
    with raises_exactly(ValueError, r"needs at least 2 classes, got classes=\[0\]"):
        FusionClassifier().partial_fit(X, np.zeros(CHUNK, dtype=int), classes=[0])


class FailOnSecondBatch(Callback):
    """Raises after one optimiser step of the call it is armed for."""

    armed = False

    def on_batch_end(self, net, training=False, **kwargs):
        if training and type(self).armed and net.batch_index_ == 1:
            raise RuntimeError("stop here")


def test_a_failing_chunk_leaves_the_previous_model():
    (X, y, _), *_ = _chunks()
    model = FusionClassifier(batch_size=BATCH, random_state=0, callbacks=[FailOnSecondBatch()])
    model.partial_fit(X, y, classes=[0, 1, 2])
    before = _state(model)
    with raises_exactly(ValueError, "modality 'a': X has 2 features, but FusionClassifier is exp"):
        model.partial_fit({"a": X["a"][:, :2], "b": X["b"]}, y)  # refused before training
    _assert_unchanged(model, before)
    with raises_exactly(ValueError, "Negative values in data passed to `sample_weight`"):
        model.partial_fit(X, y, sample_weight=-np.ones(CHUNK))
    _assert_unchanged(model, before)
    FailOnSecondBatch.armed = True
    try:  # fails mid-chunk, after an optimiser step on the copy
        with raises_exactly(RuntimeError, "stop here"):
            model.partial_fit(X, y)
    finally:
        FailOnSecondBatch.armed = False
    _assert_unchanged(model, before)
    model.partial_fit(X, y)
    assert model.n_iter_ == 2


def test_standardisation_comes_from_the_first_chunk():
    (X, _, target), *_ = _chunks()
    model = FusionRegressor(batch_size=BATCH, random_state=0).partial_fit(X, target)
    np.testing.assert_allclose(model.y_mean_, [target.mean()], rtol=1e-12)
    np.testing.assert_allclose(model.y_scale_, [target.std()], rtol=1e-12)
    np.testing.assert_allclose(model.standardizer_.means["a"].ravel(), X["a"].mean(0), rtol=1e-6)
    means = model.standardizer_.means["a"].copy()
    model.partial_fit({m: v * 10 + 3 for m, v in X.items()}, target * 10)
    np.testing.assert_allclose(model.y_mean_, [target.mean()], rtol=1e-12)
    np.testing.assert_array_equal(model.standardizer_.means["a"], means)


def test_regressor_outputs_may_not_change():
    (X, _, target), *_ = _chunks()
    model = FusionRegressor(batch_size=BATCH).partial_fit(X, target)
    with raises_exactly(ValueError, r"partial_fit continues the fitted model, which has 1 output"):
        model.partial_fit(X, np.column_stack([target, target]))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"early_stopping": True}, r"partial_fit cannot use early_stopping=True"),
        ({"class_weight": "balanced"}, r"partial_fit cannot use class_weight='balanced'"),
        ({"lr_schedule": lambda progress: 1 - progress}, r"cannot follow lr_schedule=<function"),
        ({"weighting": "qmf"}, r"cannot train weighting 'qmf' \(QMFWeighting\): it needs every"),
        (
            {"weighting": ["modality_dropout", "gradient_blending"]},
            r"cannot train weighting 'gradient_blending' \(GradientBlendingWeighting\)",
        ),
    ],
    ids=["early_stopping", "balanced", "lr_schedule", "qmf", "gradient_blending"],
)
def test_what_partial_fit_cannot_honour_is_refused_by_name(params, message):
    (X, y, _), *_ = _chunks()
    model = FusionClassifier(batch_size=BATCH, **params)
    with raises_exactly(ValueError, message):
        model.partial_fit(X, y, classes=[0, 1, 2])
    assert not hasattr(model, "net_")


def test_a_refused_method_leaves_a_fitted_model_as_it_was():
    (X, y, _), *_ = _chunks()
    model = FusionClassifier(batch_size=BATCH, max_epochs=1, weighting="qmf").fit(X, y)
    before = _state(model)
    with raises_exactly(ValueError, r"cannot train weighting 'qmf'"):
        model.partial_fit(X, y)
    _assert_unchanged(model, before)


def test_a_recommended_schedule_gives_way_to_a_constant_lr():
    class Scheduled(Recorder):
        recommended_params = {"lr_schedule": lambda progress: 1 - progress}

    (X, y, _), *_ = _chunks()
    model = FusionClassifier(weighting=Scheduled(), batch_size=BATCH, lr=0.05, random_state=0)
    model.partial_fit(X, y, classes=[0, 1, 2])
    assert model.lr_schedule_ is None
    assert model.training_settings_["lr_schedule"] == {"value": None, "source": "partial_fit"}
    assert {g["lr"] for g in model.net_.optimizer_.param_groups} == {0.05}


def test_shuffled_calls_are_reproducible_and_leave_the_global_rng_alone():
    chunks = _chunks()
    params = dict(batch_size=BATCH, random_state=0, **RANDOM_DRAWS)

    def train(**extra):
        model = FusionClassifier(**params, **extra)
        for X, y, _ in chunks:
            model.partial_fit(X, y, classes=[0, 1, 2])
        return model

    before = torch.get_rng_state()
    first, again = train(), train()
    assert torch.equal(torch.get_rng_state(), before)
    torch.testing.assert_close(first.module_.state_dict(), again.module_.state_dict())
    in_order = train(shuffle=False)  # the shuffle changed the batches
    assert not torch.allclose(first.module_.head.weight, in_order.module_.head.weight)
