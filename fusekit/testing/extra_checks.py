"""Contract checks that catch plugins which pass the others but break in real use.

* :func:`check_row_independent`: a sample's prediction does not depend on the rest of its batch
  (one row at a time equals the full batch).
* :func:`check_padded_steps_ignored`: the values inside padded time steps of a sequence change
  nothing.
* :func:`check_loss_terms_mapping`: ``loss_terms`` returns ``{name: scalar tensor}`` in training
  and evaluation (``None`` from a forgotten ``return`` is caught here, and by the engine).
* :func:`check_supported_tasks_declared`: ``supported_tasks`` is a non-empty subset of
  :data:`fusekit.plugin.TASKS`.
* :func:`check_regression`: on a regression network the plugin gives finite outputs of the right
  shape and a short fit beats predicting the mean; a plugin that declares classification only is
  refused by the estimator with an error naming it.
* :func:`check_beside_multipass` (weightings): trains beside ``agm``, whose masked passes call
  ``adjust_logits`` on outputs without features, so a weighting that reads them there fails.

They use the fixtures of :mod:`fusekit.testing.checks` and are listed by
:func:`fusekit.testing.suite.checks_for`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from fusekit.engine.resolve import instantiate
from fusekit.plugin import TASKS, LossContext, ModalityBatch
from fusekit.testing import checks as base
from fusekit.testing.checks import _batch, _easy_task, _fail, _network, _plugin_class, _shapes

#: Multi-pass weighting run beside every weighting by :func:`check_beside_multipass`.
MULTI_PASS = "agm"
_TOLERANCE = 1e-5


def supports(kind: str, plugin: Any, task: str) -> bool:
    """Whether ``plugin`` declares ``task`` in its ``supported_tasks``."""
    return task in tuple(getattr(_plugin_class(kind, plugin), "supported_tasks", TASKS))


def _close(reference: torch.Tensor, other: torch.Tensor) -> float:
    """Largest difference, or ``inf`` when it is above the tolerance."""
    difference = (reference - other).abs().max().item()
    bound = _TOLERANCE * max(1.0, reference.abs().max().item())
    return difference if difference > bound else 0.0


def check_row_independent(kind: str, plugin: Any, params: Mapping[str, Any] | None = None) -> None:
    """In evaluation a sample's outputs are the same alone (a batch of one) as in a batch."""
    params = params or {}
    for form in ("vector", "sequence"):
        shapes = _shapes(kind, plugin, 3, form, params)
        network = _network(kind, plugin, params, shapes).eval()
        batch = _batch(shapes, 9, {"m0": 0.3}, seed=21)
        with torch.no_grad():
            together = network(batch).logits
            alone = torch.cat([network(batch.take(slice(i, i + 1))).logits for i in range(9)])
        difference = _close(together, alone)
        if difference:
            _fail(
                kind,
                plugin,
                "a prediction depends on its own row only",
                f"{form} input: logits changed by {difference:.3g} between a batch of 9 and the "
                "same rows one at a time",
                "at prediction compute no statistic over the batch (means, softmax over rows, "
                "batch normalisation in train mode); keep fitted statistics in buffers",
            )


def _pad(batch: ModalityBatch, seed: int) -> tuple[ModalityBatch, ModalityBatch]:
    """``batch`` with the last steps of every other row padded (zeros, as the data layer
    leaves them), and the same batch with random values in those padded steps."""
    generator = torch.Generator().manual_seed(seed)
    zeroed, scrambled, steps = {}, {}, {}
    for name, value in batch.features.items():
        real = torch.ones(value.shape[:2], dtype=torch.bool)
        real[::2, -2:] = False  # rows 0, 2, ...: the last two steps are padding
        keep = real.unsqueeze(-1)
        zeroed[name] = value * keep
        noise = torch.randn(value.shape, generator=generator) * 5 + 3
        scrambled[name] = torch.where(keep, value, noise)
        steps[name] = real & batch.mask[:, list(batch.features).index(name)].unsqueeze(1)
    return (
        ModalityBatch(zeroed, batch.mask, batch.index, steps),
        ModalityBatch(scrambled, batch.mask, batch.index, steps),
    )


def check_padded_steps_ignored(
    kind: str, plugin: Any, params: Mapping[str, Any] | None = None
) -> None:
    """The values inside padded steps of a sequence (``steps`` False) change no output.

    Applies where the network sees float sequences (a backbone that reads raw values or no
    sequences passes).
    """
    params = params or {}
    if kind == "backbone" and "sequence" not in _plugin_class(kind, plugin).input_kinds:
        return
    shapes = _shapes(kind, plugin, 3, "sequence", params)
    if shapes.raw_kind is not None:
        return
    network = _network(kind, plugin, params, shapes).eval()
    padded, scrambled = _pad(_batch(shapes, 8, {"m0": 0.25}, seed=22), seed=23)
    with torch.no_grad():
        reference = network(padded).logits
        changed = network(scrambled).logits
    difference = _close(reference, changed)
    if difference:
        _fail(
            kind,
            plugin,
            "padded steps are ignored",
            f"outputs changed by {difference:.3g} when only the values inside padded steps changed",
            "pool sequences over their real steps: fusekit.plugin.as_vector(h, steps) / "
            "masked_mean with output.steps (batch.steps in perturb), a key padding mask in "
            "attention, steps passed on to network.fuse(..., steps=output.steps)",
        )


def check_loss_terms_mapping(
    kind: str, plugin: Any, params: Mapping[str, Any] | None = None
) -> None:
    """``loss_terms`` returns a mapping of scalar tensors, in training and in evaluation."""
    params = params or {}
    shapes = _shapes(kind, plugin, 3, "vector", params)
    network = _network(kind, plugin, params, shapes)
    batch = _batch(shapes, 12, {"m0": 0.3}, seed=24)
    target = torch.arange(12) % base.N_CLASSES
    for training in (True, False):
        network.train(training)
        with torch.set_grad_enabled(training):
            output = network(batch)
            ctx = LossContext(network=network.view, batch=batch, target=target, training=training)
            for component in network.components():
                terms = component.loss_terms(output, ctx)
                bad = not isinstance(terms, Mapping) or not all(
                    isinstance(v, torch.Tensor) and v.dim() == 0 for v in terms.values()
                )
                if bad:
                    _fail(
                        kind,
                        plugin,
                        "loss_terms returns {name: scalar tensor}",
                        f"training={training}: loss_terms returned {terms!r:.80}",
                        "return a dict of 0-dim tensors, {} when there is nothing to add "
                        "(never None)",
                    )


def check_supported_tasks_declared(
    kind: str, plugin: Any, params: Mapping[str, Any] | None = None
) -> None:
    """``supported_tasks`` is a non-empty tuple of tasks from ``fusekit.plugin.TASKS``."""
    declared = getattr(_plugin_class(kind, plugin), "supported_tasks", TASKS)
    if (
        not isinstance(declared, tuple)
        or not declared
        or any(task not in TASKS for task in declared)
    ):
        _fail(
            kind,
            plugin,
            "declares its tasks",
            f"supported_tasks is {declared!r}",
            f"declare a non-empty tuple from {TASKS}, e.g. supported_tasks = ('classification',)",
        )


def _regressor(kind: str, plugin: Any, params: Mapping[str, Any], **kwargs: Any) -> Any:
    from fusekit.estimator import FusionRegressor

    nested = {f"{kind}__{k}": v for k, v in params.items()}
    return FusionRegressor(**{kind: plugin}, **nested, **{"random_state": 0, **kwargs})


def _regression_pass(kind: str, plugin: Any, params: Mapping[str, Any]) -> str | None:
    """What goes wrong in a training and an evaluation pass of a regression network, or None."""
    shapes = _shapes(kind, plugin, 3, "vector", params)
    network = _network(kind, plugin, params, shapes, task="regression")
    batch = _batch(shapes, 12, {"m0": 0.3}, seed=26)
    target = torch.randn(12, base.N_CLASSES, generator=torch.Generator().manual_seed(27))
    for training in (True, False):
        network.train(training)
        with torch.set_grad_enabled(training):
            output = network(batch)
            logits = output.logits
            if tuple(logits.shape) != (12, base.N_CLASSES) or not torch.isfinite(logits).all():
                return (
                    f"training={training}: outputs of shape {tuple(logits.shape)} (expected "
                    f"(12, {base.N_CLASSES})), all finite: {bool(torch.isfinite(logits).all())}"
                )
            if not training:
                continue
            loss = network.loss(output, target, batch, training=True)
            if not torch.isfinite(loss):
                return f"the training loss is {loss.item()}"
            loss.backward()
            for m in shapes:
                grads = [p.grad for p in network.modality_parameters(m) if p.requires_grad]
                if grads and all(g is None or not g.abs().sum() > 0 for g in grads):
                    return f"no gradient reached modality {m!r}'s encoder"
    return None


def check_regression(kind: str, plugin: Any, params: Mapping[str, Any] | None = None) -> None:
    """On a regression task: finite outputs of shape ``(B, n_outputs)`` with absent rows, a loss
    whose gradients reach every encoder, and a short fit that beats predicting the mean (R² >
    0.3 held out). A plugin that declares classification only is refused by the estimator with a
    ``ValueError`` naming it."""
    params = params or {}
    X, labels = _easy_task(kind, plugin, n=240, seed=25)
    y = labels.astype(np.float64)
    if not supports(kind, plugin, "regression"):
        try:
            _regressor(kind, plugin, params, max_epochs=1).fit(X, y)
        except ValueError as error:
            if "supported_tasks" in str(error) and "got regression" in str(error):
                return
            raise
        _fail(
            kind,
            plugin,
            "refused for a task it does not support",
            "FusionRegressor trained a plugin whose supported_tasks lack 'regression'",
            "let the engine refuse it (fusekit.engine.contract_guards.check_supported_tasks)",
        )
    try:
        problem = _regression_pass(kind, plugin, params)
    except ValueError as error:
        _fail(
            kind,
            plugin,
            "declares the tasks it supports",
            f"building it for regression raised {error!r:.200}, but its supported_tasks include "
            "'regression'",
            "declare supported_tasks = ('classification',), so that the estimator refuses "
            "regression by name before anything is built",
        )
    if problem is not None:
        _fail(
            kind,
            plugin,
            "works on a regression task",
            problem,
            "handle spec.task == 'regression' (outputs are values, losses squared errors), or "
            "declare supported_tasks = ('classification',)",
        )
    train, test = train_test_split(np.arange(len(y)), test_size=0.3, random_state=0)
    model = _regressor(kind, plugin, params, max_epochs=15).fit(X[train], y[train])
    score = model.score(X[test], y[test])
    if not score > 0.3:
        _fail(
            kind,
            plugin,
            "learns an easy regression task",
            f"held-out R² {score:.2f} (predicting the mean scores 0)",
            "check the regression branch: the outputs are values, losses are squared errors",
        )


def check_beside_multipass(kind: str, plugin: Any, params: Mapping[str, Any] | None = None) -> None:
    """A weighting trains beside ``agm``, which reruns fusion, head and ``adjust_logits`` in
    masked passes on outputs that carry no features (weightings only)."""
    if kind != "weighting":
        return
    from fusekit.engine.registry import get_registry

    multi = get_registry().get("weighting", MULTI_PASS)
    if _plugin_class(kind, plugin) is multi:
        return
    params = params or {}
    X, y = _easy_task(kind, plugin, n=60, seed=28)
    instance = instantiate(kind, plugin, params)
    model = base._estimator(kind, [instance, MULTI_PASS], {}, max_epochs=2, batch_size=20)
    try:
        model.fit(X, y)
        finite = np.isfinite(model.predict_proba(X)).all()
    except Exception as error:  # noqa: BLE001
        _fail(
            kind,
            plugin,
            "composes with multi-pass weightings",
            f"weighting=[plugin, {MULTI_PASS!r}] raised {error!r:.200}",
            "in adjust_logits read only output.logits and output.mask (masked passes carry no "
            "features, calibrated features or batch); keep per-pass state out of the output",
        )
    if not finite:
        _fail(
            kind,
            plugin,
            "composes with multi-pass weightings",
            f"weighting=[plugin, {MULTI_PASS!r}] predicted non-finite values",
            "read only output.logits and output.mask in adjust_logits",
        )


#: Checks that hold for any task (the others train or score a classifier).
TASK_NEUTRAL = {"check_constructible", "check_recommended_params", "check_supported_tasks_declared",
                "check_regression"}  # fmt: skip


def applies(check: Callable[..., None], kind: str, plugin: Any) -> bool:
    """Whether ``check`` runs on ``plugin``: a plugin that declares regression only skips the
    checks that train or score a classifier."""
    return check.__name__ in TASK_NEUTRAL or supports(kind, plugin, "classification")


EXTRA_CHECKS: tuple[Callable[..., None], ...] = (
    check_supported_tasks_declared,
    check_loss_terms_mapping,
    check_row_independent,
    check_padded_steps_ignored,
    check_regression,
    check_beside_multipass,
)
