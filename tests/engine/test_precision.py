"""Mixed precision (``precision="bf16" | "16-mixed"``): autocast in training and prediction, the
float32 rule of the plugin contract, and unscaled gradients in ``on_grad_computed``."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from first_party import NEEDS_A_USER_MODEL, first_party_entries
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.utils._param_validation import InvalidParameterError

import fusekit
from fusekit import FusionClassifier, FusionRegressor
from fusekit.engine.precision import autocast
from fusekit.plugin import Weighting, full_precision
from fusekit.testing.checks import _easy_task
from fusekit.testing.fixtures import make_joint_split

#: bfloat16 keeps 8 bits of mantissa (relative rounding 2**-9 per operation); a few layers of
#: products and sums stay within a few per cent of float32 on unit-scale inputs.
BF16_RTOL, BF16_ATOL = 0.05, 0.05

COMPONENTS = sorted(
    {(entry.kind, entry.name) for entry in first_party_entries() if entry.kind != "dataset"}
    - NEEDS_A_USER_MODEL
)


@pytest.fixture(scope="module")
def task():
    return make_joint_split(96, 48, seed=0)


def _fit(task, **params):
    X, y, _, _ = task
    return FusionClassifier(max_epochs=3, batch_size=32, random_state=0, **params).fit(X, y)


def test_bf16_fit_and_predict_agree_with_float32(task):
    _, _, X_test, y_test = task
    full = _fit(task)
    half = _fit(task, precision="bf16")
    # the same training run in bfloat16: the probabilities drift by the rounding, no more
    np.testing.assert_allclose(
        half.predict_proba(X_test), full.predict_proba(X_test), atol=BF16_ATOL
    )
    assert (half.predict(X_test) == full.predict(X_test)).mean() >= 0.95
    assert half.predict_proba(X_test).dtype == np.float64


def test_bf16_prediction_runs_under_autocast(task, monkeypatch):
    """predict's forward pass runs in bfloat16 (not silently in float32)."""
    model = _fit(task, precision="bf16")
    seen = []
    head = model.module_.head
    head.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    model.predict(task[2])
    assert seen and set(seen) == {torch.bfloat16}
    model.set_params(precision="32").predict(task[2])
    assert seen[-1] == torch.float32


def test_task_loss_is_float32_under_autocast(task):
    model = _fit(task)
    network = model.module_
    logits = torch.randn(6, 4).bfloat16()
    target = torch.tensor([0, 1, 2, 3, 0, 1])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = network.criterion.per_sample(logits, target)
    assert loss.dtype == torch.float32
    expected = torch.nn.functional.cross_entropy(logits.float(), target, reduction="none")
    torch.testing.assert_close(loss, expected)


def test_full_precision_switches_autocast_off():
    a = torch.randn(4, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert (a @ a).dtype == torch.bfloat16
        with full_precision():
            assert (a @ a).dtype == torch.float32
        assert (a @ a).dtype == torch.bfloat16
    with full_precision():  # outside autocast it changes nothing
        assert (a @ a).dtype == torch.float32


@pytest.mark.parametrize(("kind", "name"), COMPONENTS)
def test_every_component_is_finite_and_close_to_float32_under_bf16(kind, name):
    """Same weights, same batch: the bf16 forward pass, loss and gradients are finite and the
    logits and loss within bfloat16's rounding of float32's (the float32 rule of the contract)."""
    X, y = _easy_task(kind, name, n=48)
    model = FusionClassifier(**{kind: name}, max_epochs=1, batch_size=16, random_state=0)
    model.fit(X, y)
    proba = model.predict_proba(X)
    half = model.set_params(precision="bf16").predict_proba(X)
    np.testing.assert_allclose(half, proba, atol=BF16_ATOL)

    batch = model._batch(model._prepare(X, reset=False), with_index=True)
    target = torch.as_tensor(np.searchsorted(model.classes_, y))
    results = {}
    for precision in ("32", "bf16"):
        network = copy.deepcopy(model.module_).train()  # a pass may update the method's state
        torch.manual_seed(0)  # the same dropout / perturbation draws in both runs
        with autocast(precision, "cpu"):
            output = network(batch)
            loss = network.loss(output, target, batch, training=True)
        loss.backward()
        grads = [p.grad for p in network.parameters() if p.grad is not None]
        assert all(torch.isfinite(g).all() for g in grads), f"{precision}: non-finite gradient"
        assert loss.dtype == torch.float32
        results[precision] = (output.logits.float().detach(), loss.detach())
    (logits32, loss32), (logits16, loss16) = results["32"], results["bf16"]
    assert torch.isfinite(logits16).all() and torch.isfinite(loss16)
    scale = float(logits32.abs().max()) + 1.0
    torch.testing.assert_close(logits16, logits32, rtol=BF16_RTOL, atol=BF16_ATOL * scale)
    torch.testing.assert_close(loss16, loss32, rtol=BF16_RTOL, atol=BF16_ATOL)


class GradientRecorder(Weighting):
    """Records the gradient norm of every modality's encoder in ``on_grad_computed``."""

    def __init__(self) -> None:
        super().__init__()
        self.norms: list[float] = []

    def on_grad_computed(self, ctx) -> None:
        squares = [
            p.grad.double().pow(2).sum()
            for name in ctx.network.names
            for p in ctx.network.modality_parameters(name)
            if p.grad is not None
        ]
        self.norms.append(float(torch.stack(squares).sum().sqrt()))


class Overflowing(GradientRecorder):
    """A finite loss term whose gradient overflows once multiplied by the loss scale: 1e35 fits
    float32 (max 3.4e38), 1e35 * 2**16 does not. Keeps the initial weights to compare."""

    def on_train_begin(self, ctx) -> None:
        self.initial = [p.detach().clone() for p in ctx.network.modality_parameters("a")]

    def loss_terms(self, output, ctx):
        return {"overflow": output.logits.float().pow(2).mean() * 1e35}


def _one_batch_fit(task, weighting, **params):
    X, y, _, _ = task
    model = FusionClassifier(
        weighting=weighting, max_epochs=1, batch_size=len(y), random_state=0, lr=0.01, **params
    )
    return model.fit(X, y)


def test_16_mixed_hooks_see_unscaled_gradients(task):
    """The scale in force is 2**16; the hook's gradient norm is float32's (within float16's
    rounding), not 65536 times it."""
    full = _one_batch_fit(task, GradientRecorder())
    half = _one_batch_fit(task, GradientRecorder(), precision="16-mixed")
    assert half.net_.mixed_precision_.scaler.get_scale() == 2.0**16  # no growth, no backoff
    (expected,), (seen,) = full.module_.weighting.norms, half.module_.weighting.norms
    assert expected > 0
    assert seen == pytest.approx(expected, rel=0.02)


def test_16_mixed_skips_a_step_with_overflowing_gradients_and_lowers_the_scale(task):
    half = _one_batch_fit(task, Overflowing(), precision="16-mixed", optimizer="sgd")
    weighting = half.module_.weighting
    for before, after in zip(weighting.initial, half.module_.modality_parameters("a"), strict=True):
        torch.testing.assert_close(after, before, rtol=0, atol=0)  # the step was skipped
    assert half.net_.mixed_precision_.scaler.get_scale() == 2.0**15  # GradScaler's backoff 0.5
    # float32 takes the (huge, finite) step; SGD, as Adam's squared gradient would overflow
    full = _one_batch_fit(task, Overflowing(), optimizer="sgd")
    after = full.module_.modality_parameters("a")
    changed = [
        not torch.equal(a, b) for a, b in zip(full.module_.weighting.initial, after, strict=True)
    ]
    assert any(changed)


def test_16_mixed_loss_scale_carries_across_partial_fit(task):
    X, y, _, _ = task
    model = FusionClassifier(
        weighting=Overflowing(), batch_size=len(y), random_state=0, precision="16-mixed"
    )
    model.partial_fit(X, y, classes=np.unique(y))
    assert model.net_.mixed_precision_.scaler.get_scale() == 2.0**15
    model.partial_fit(X, y)  # a fresh scaler would be back at 2**16 and halve to 2**15
    assert model.net_.mixed_precision_.scaler.get_scale() == 2.0**14


def test_16_mixed_refuses_a_closure_optimizer(task):
    X, y, _, _ = task
    model = FusionClassifier(max_epochs=1, optimizer=torch.optim.LBFGS, precision="16-mixed")
    with pytest.raises(ValueError, match="16-mixed.*LBFGS"):
        model.fit(X, y)


def test_unknown_precision_is_refused_by_name(task):
    X, y, _, _ = task
    with pytest.raises(InvalidParameterError, match="'precision' parameter of FusionClassifier"):
        FusionClassifier(precision="fp16").fit(X, y)


@pytest.mark.parametrize("estimator", [FusionClassifier, FusionRegressor])
def test_precision_survives_save_load_clone_and_grid_search(task, tmp_path, estimator):
    X, y, X_test, _ = task
    if estimator is FusionRegressor:
        y = y.astype(float)
    model = estimator(max_epochs=2, batch_size=32, random_state=0, precision="bf16").fit(X, y)
    model.save(tmp_path / "model.fusekit")
    loaded = fusekit.load(tmp_path / "model.fusekit")
    assert loaded.get_params()["precision"] == "bf16"
    np.testing.assert_array_equal(loaded.predict(X_test), model.predict(X_test))
    assert clone(model).get_params()["precision"] == "bf16"
    search = GridSearchCV(
        estimator(max_epochs=1, batch_size=32, random_state=0),
        {"precision": ["32", "bf16"]},
        cv=2,
    ).fit(X, y)
    assert search.best_params_["precision"] in ("32", "bf16")
    assert len(search.cv_results_["params"]) == 2
