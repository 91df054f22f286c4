"""Contract checks for the four network plugin kinds.

Each check takes ``(kind, plugin, params)`` where ``plugin`` is a registered name, a class or an
instance and ``params`` optional nested parameters, and raises :class:`ContractError` with the
promise that broke and how to fix it. ``checks_for(kind)`` lists the checks that apply.
"""

from __future__ import annotations

import inspect
import pickle
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, train_test_split

from fusekit.data import Modalities
from fusekit.engine.assemble import Choices, build_network
from fusekit.engine.network import FusionNetwork
from fusekit.engine.resolve import instantiate
from fusekit.engine.settings import check_setting
from fusekit.estimator import FusionClassifier
from fusekit.plugin import (
    COMPONENT_KINDS,
    KINDS,
    RECOMMENDABLE_PARAMS,
    TRAINING_HOOKS,
    Component,
    FusionOutput,
    ModalityBatch,
    TrainingContext,
    TrainingData,
    TrainingLoop,
    expand_mask,
    input_kind,
)
from fusekit.testing import meta_device, raw_fixtures
from fusekit.testing.seed_env import current_seed

DEFAULTS = {kind: KINDS[kind].default for kind in COMPONENT_KINDS}
N_CLASSES = 3


class ContractError(AssertionError):
    """A plugin broke a promise of the fusekit plugin contract."""


def _label(kind: str, plugin: Any) -> str:
    if isinstance(plugin, str):
        return f"{kind} {plugin!r}"
    cls = plugin if isinstance(plugin, type) else type(plugin)
    return f"{kind} {cls.__name__}"


def _fail(kind: str, plugin: Any, promise: str, what: str, fix: str) -> None:
    raise ContractError(f"{_label(kind, plugin)}: promise '{promise}' broken: {what}. Fix: {fix}")


def _plugin_class(kind: str, plugin: Any) -> type:
    from fusekit.engine.registry import get_registry

    if isinstance(plugin, str):
        return get_registry().get(kind, plugin)
    return plugin if isinstance(plugin, type) else type(plugin)


# -- data -------------------------------------------------------------------------------------
class InputShapes(dict):
    """``{modality: shape}``, and for a backbone that reads raw values (text, categories) the
    raw kind and the fitted encoders that give those shapes (:mod:`.raw_fixtures`)."""

    raw_kind: str | None = None
    encoders: dict[str, Any] | None = None


def _shapes(
    kind: str,
    plugin: Any,
    n_modalities: int,
    form: str,
    params: Mapping[str, Any] | None = None,
) -> InputShapes:
    """Modalities of different widths; for a backbone, a form it accepts."""
    if kind == "backbone":
        accepted = _plugin_class(kind, plugin).input_kinds
        form = form if form in accepted else accepted[0]
        raw = raw_fixtures.raw_kind(accepted)
        if raw is not None:
            names = tuple(f"m{i}" for i in range(n_modalities))
            fitted = raw_fixtures.encoders(raw, plugin, dict(params or {}), names)
            shapes = InputShapes({m: tuple(e.shape) for m, e in fitted.items()})
            shapes.raw_kind, shapes.encoders = raw, fitted
            return shapes
    widths = [3, 5, 4, 7, 2][:n_modalities]
    if form == "vector":
        return InputShapes({f"m{i}": (w,) for i, w in enumerate(widths)})
    if form == "sequence":
        return InputShapes({f"m{i}": (4 + i % 2, w) for i, w in enumerate(widths)})
    return InputShapes({f"m{i}": (2, 4, 4) for i in range(n_modalities)})


def _batch(
    shapes: Mapping[str, tuple[int, ...]], n: int, absent: Mapping[str, float] | None, seed: int
) -> ModalityBatch:
    generator = torch.Generator().manual_seed(seed)
    steps: dict[str, torch.Tensor] = {}
    if getattr(shapes, "encoders", None):
        features, steps = raw_fixtures.encoded(shapes.raw_kind, shapes.encoders, n, seed)
    else:
        features = {m: torch.randn((n, *s), generator=generator) for m, s in shapes.items()}
    mask = torch.ones(n, len(shapes), dtype=torch.bool)
    for position, m in enumerate(shapes):
        fraction = (absent or {}).get(m, 0.0)
        if fraction:
            drop = torch.rand(n, generator=generator) < fraction
            if fraction >= 1.0:
                drop[:] = True
            mask[:, position] = ~drop
            if m in steps:  # an absent row has no real step, as the data layer leaves it
                steps[m] = steps[m] & ~drop.unsqueeze(1)
    batch = ModalityBatch(features, mask, index=torch.arange(n), steps=steps)
    return batch.with_mask(mask)


def _network(
    kind: str,
    plugin: Any,
    params: Mapping[str, Any],
    shapes: Mapping[str, tuple[int, ...]],
    task: str = "classification",
) -> FusionNetwork:
    nested = {f"{kind}__{name}": value for name, value in params.items()}
    choices = Choices(**{kind: plugin}, nested=nested)
    encoders = getattr(shapes, "encoders", None)
    return build_network(choices, shapes, N_CLASSES, task, encoders=encoders)


def _easy_task(
    kind: str, plugin: Any, n: int = 240, seed: int = 0
) -> tuple[Modalities, np.ndarray]:
    """Two informative modalities and one noise modality, in a form the plugin accepts."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, N_CLASSES, n)
    shapes = _shapes(kind, plugin, 3, "vector")
    if shapes.raw_kind is not None:  # raw values: informative rows name their class
        return Modalities(
            {
                m: raw_fixtures.values(shapes.raw_kind, n, seed + i, y if i < 2 else None)
                for i, m in enumerate(shapes)
            }
        ), y
    arrays = {}
    for position, (m, shape) in enumerate(shapes.items()):
        values = rng.normal(size=(n, *shape))
        if position < 2:
            values += 1.5 * y.reshape(-1, *([1] * len(shape)))
        arrays[m] = values
    return Modalities(arrays), y


def _estimator(
    kind: str, plugin: Any, params: Mapping[str, Any], **kwargs: Any
) -> FusionClassifier:
    nested = {f"{kind}__{k}": v for k, v in params.items()}
    return FusionClassifier(**{kind: plugin}, **nested, **{"random_state": 0, **kwargs})


# -- checks -----------------------------------------------------------------------------------
def check_recommended_params(
    kind: str, plugin: Any, params: Mapping[str, Any] | None = None
) -> None:
    """``recommended_params`` names only recommendable settings, each with a valid value."""
    recommended = dict(getattr(_plugin_class(kind, plugin), "recommended_params", {}))
    unknown = sorted(set(recommended) - set(RECOMMENDABLE_PARAMS))
    if unknown:
        _fail(
            kind,
            plugin,
            "recommends only training settings",
            f"recommended_params has {unknown}",
            f"recommend only {list(RECOMMENDABLE_PARAMS)}",
        )
    for name, value in recommended.items():
        try:
            check_setting(name, value, "recommended_params")
            factors = [value(p) for p in (0.0, 0.5, 1.0)] if name == "lr_schedule" else []
        except Exception as error:  # noqa: BLE001
            _fail(kind, plugin, "recommends valid settings", repr(error), "fix the value")
        if not all(np.isfinite(f) and f >= 0 for f in factors):
            _fail(
                kind,
                plugin,
                "recommends valid settings",
                f"lr_schedule factors at progress 0, 0.5, 1: {factors}",
                "return a finite factor >= 0 for every progress in [0, 1]",
            )


def check_constructible(kind: str, plugin: Any, params: Mapping[str, Any] | None = None) -> None:
    """Built from the registry with defaults and with every default passed back explicitly."""
    cls = _plugin_class(kind, plugin)
    try:
        component = instantiate(kind, plugin, {})
    except Exception as error:  # noqa: BLE001
        _fail(
            kind,
            plugin,
            "constructible with defaults",
            repr(error),
            "give every __init__ parameter a default value",
        )
    if not isinstance(component, Component):
        _fail(kind, plugin, "is a Component", f"got {type(component)}", "subclass the kind's base")
    try:
        stored = component.get_params()
    except AttributeError as error:
        missing = [n for n in component._param_names() if not hasattr(component, n)]
        first = missing[0] if missing else "name"
        _fail(
            kind,
            plugin,
            "parameters stored unchanged",
            f"__init__ parameters {missing} are not stored as attributes of the same name "
            f"({error})",
            f"store every __init__ argument under its own name: self.{first} = {first}",
        )
    signature = inspect.signature(cls.__init__)
    for name, parameter in signature.parameters.items():
        if name == "self" or parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
            continue
        if name not in stored:
            _fail(
                kind,
                plugin,
                "parameters stored unchanged",
                f"no attribute {name!r}",
                f"store every __init__ argument as self.{name} = {name}",
            )
        if isinstance(plugin, Component):
            continue  # an instance keeps the values it was given, not the defaults
        same = stored[name] is parameter.default or (
            isinstance(stored[name], (int, float, str, bool, type(None)))
            and stored[name] == parameter.default
        )
        if parameter.default is not parameter.empty and not same:
            _fail(
                kind,
                plugin,
                "parameters stored unchanged",
                f"{name}={stored[name]!r} but the default is {parameter.default!r}",
                "store arguments as given; validate or convert them in build()",
            )
    try:
        rebuilt = instantiate(kind, plugin, {**stored, **(params or {})})
    except Exception as error:  # noqa: BLE001
        _fail(
            kind,
            plugin,
            "nested parameters",
            repr(error),
            "accept every parameter get_params() returns as a keyword argument",
        )
    assert isinstance(rebuilt, Component)


def _logits_shape(kind: str, plugin: Any, network: FusionNetwork, batch: ModalityBatch) -> None:
    output = network(batch)
    if output.logits is None or tuple(output.logits.shape) != (len(batch), N_CLASSES):
        got = None if output.logits is None else tuple(output.logits.shape)
        _fail(
            kind,
            plugin,
            "output shapes",
            f"logits of shape {got}, expected {(len(batch), N_CLASSES)}",
            "return (B, width) from forward and the width from build",
        )


def check_output_shapes(kind: str, plugin: Any, params: Mapping[str, Any] | None = None) -> None:
    """Right shapes for 2, 3 and 5 modalities of different widths, vectors and sequences."""
    params = params or {}
    for n_modalities in (2, 3, 5):
        for form in ("vector", "sequence"):
            shapes = _shapes(kind, plugin, n_modalities, form, params)
            network = _network(kind, plugin, params, shapes)
            batch = _batch(shapes, 6, None, seed=n_modalities)
            network.eval()
            with torch.no_grad():
                if kind == "fusion":
                    features = network.encode(batch)
                    fused = network.fusion(features, batch.mask, FusionOutput(mask=batch.mask))
                    expected = (
                        N_CLASSES if network.fusion.emits_logits else network.head.in_features
                    )
                    if tuple(fused.shape) != (6, expected):
                        _fail(
                            kind,
                            plugin,
                            "output shapes",
                            f"{n_modalities} {form} modalities gave {tuple(fused.shape)}, build() "
                            f"promised (6, {expected})",
                            "return the width forward produces",
                        )
                if kind == "calibration":
                    features = network.encode(batch)
                    calibrated = network.calibration(features, batch.mask, FusionOutput())
                    for m, h in features.items():
                        if m not in calibrated or calibrated[m].shape != h.shape:
                            got = None if m not in calibrated else tuple(calibrated[m].shape)
                            _fail(
                                kind,
                                plugin,
                                "shapes unchanged",
                                f"modality {m!r} came in as {tuple(h.shape)} and left as {got}",
                                "return every modality with its input shape",
                            )
                if kind == "backbone":
                    features = network.encode(batch)
                    for m, h in features.items():
                        promised = network.spec.feature_shapes[m]
                        if tuple(h.shape[1:]) != promised:
                            _fail(
                                kind,
                                plugin,
                                "output shapes",
                                f"{m!r} {input_kind(shapes[m])} gave {tuple(h.shape[1:])}, build() "
                                f"returned {promised}",
                                "return the real output shape from build",
                            )
                _logits_shape(kind, plugin, network, batch)


def check_absent_finite(kind: str, plugin: Any, params: Mapping[str, Any] | None = None) -> None:
    """Finite outputs with 0%, 30% and 100% of a modality absent, and with nothing present."""
    params = params or {}
    for form in ("vector", "sequence"):
        shapes = _shapes(kind, plugin, 3, form, params)
        network = _network(kind, plugin, params, shapes)
        for fraction in (0.0, 0.3, 1.0):
            batch = _batch(shapes, 10, {"m0": fraction}, seed=1)
            for training in (True, False):
                network.train(training)
                with torch.set_grad_enabled(training):
                    logits = network(batch).logits
                if not torch.isfinite(logits).all():
                    _fail(
                        kind,
                        plugin,
                        "finite with absent modalities",
                        f"{form} input, {fraction:.0%} of 'm0' absent, training={training}: "
                        "non-finite outputs",
                        "exclude absent modalities from means/softmax "
                        "(mask), clamp denominators, never divide by a zero count",
                    )
        nothing = _batch(shapes, 4, dict.fromkeys(shapes, 1.0), seed=2)
        network.eval()
        with torch.no_grad():
            logits = network(nothing).logits
        if not torch.isfinite(logits).all():
            _fail(
                kind,
                plugin,
                "finite with absent modalities",
                "a sample with every modality absent gave non-finite outputs",
                "return zeros (or a learned constant) when no modality is present",
            )


def check_no_real_step_finite(
    kind: str, plugin: Any, params: Mapping[str, Any] | None = None
) -> None:
    """A text backbone gives finite outputs for a present row without a real token (``""``).

    A backbone check (:data:`PER_KIND`); passes for backbones not checked on text
    (:mod:`.raw_fixtures`).
    """
    shapes = _shapes(kind, plugin, 2, "vector", params)
    if shapes.raw_kind != "text":
        return
    network = _network(kind, plugin, params or {}, shapes)
    batch = _batch(shapes, 4, None, seed=8)
    batch.features = {m: x.clone() for m, x in batch.features.items()}
    for m in shapes:
        batch.features[m][0] = 0
        batch.steps[m] = batch.steps[m].clone()
        batch.steps[m][0] = False
    for training in (True, False):
        network.train(training)
        with torch.set_grad_enabled(training):
            encoded = network.encode(batch)
            logits = network(batch).logits
        if not (
            all(torch.isfinite(h).all() for h in encoded.values()) and torch.isfinite(logits).all()
        ):
            _fail(
                kind,
                plugin,
                "finite for a text without tokens",
                f"a row whose steps are all padding gave non-finite outputs (training={training})",
                "pool over real steps with a clamped count (fusekit.plugin.masked_mean), and "
                "give attention at least one key (e.g. keep the first token unmasked)",
            )


def _scramble_absent(batch: ModalityBatch, seed: int) -> ModalityBatch:
    generator = torch.Generator().manual_seed(seed)
    features = {}
    for position, (m, value) in enumerate(batch.features.items()):
        if value.is_floating_point():
            noise = torch.randn(value.shape, generator=generator) * 5 + 3
        else:  # ids or codes: another row's, so the values stay valid
            noise = value[torch.randperm(len(value), generator=generator)]
        absent = (~batch.mask[:, position]).reshape(-1, *([1] * (value.dim() - 1)))
        features[m] = torch.where(absent, noise, value)
    return ModalityBatch(features, batch.mask, batch.index, batch.steps, batch.extras)


def check_absent_invariance(
    kind: str, plugin: Any, params: Mapping[str, Any] | None = None
) -> None:
    """A sample's output does not depend on the values inside its absent modalities."""
    params = params or {}
    shapes = _shapes(kind, plugin, 3, "vector", params)
    network = _network(kind, plugin, params, shapes).eval()
    batch = _batch(shapes, 12, {"m0": 0.5, "m1": 0.25}, seed=3)
    scrambled = _scramble_absent(batch, seed=4)
    with torch.no_grad():
        if kind in ("fusion", "calibration"):
            # the component itself must ignore absent rows, whatever values they hold
            features = network.encode(batch)
            noisy = _scramble_absent(ModalityBatch(features, batch.mask), seed=5).features
            component = network.fusion if kind == "fusion" else network.calibration
            reference = component(features, batch.mask, FusionOutput(mask=batch.mask))
            changed = component(noisy, batch.mask, FusionOutput(mask=batch.mask))
            if kind == "calibration":  # compare what present modalities pass on to fusion
                reference = torch.cat(
                    [
                        (h * expand_mask(batch.mask[:, i], h)).flatten(1)
                        for i, h in enumerate(reference.values())
                    ],
                    dim=1,
                )
                changed = torch.cat(
                    [
                        (h * expand_mask(batch.mask[:, i], h)).flatten(1)
                        for i, h in enumerate(changed.values())
                    ],
                    dim=1,
                )
        else:
            reference = network(batch).logits
            changed = network(scrambled).logits
    difference = (reference - changed).abs().max().item()
    if not difference <= 1e-5 * max(1.0, reference.abs().max().item()):
        _fail(
            kind,
            plugin,
            "absent values are ignored",
            f"outputs changed by {difference:.3g} when only the values inside absent modalities "
            "changed",
            "use the (B, M) bool mask (columns in the order features iterate): ignore absent "
            "positions in pooling, attention and normalisation, or put the operation's neutral "
            "element there (0 for sums, 1 for products, -inf for maxima); zero is neutral "
            "only for additive fusions",
        )


def check_gradients_reach_encoders(
    kind: str, plugin: Any, params: Mapping[str, Any] | None = None
) -> None:
    """Training loss gradients reach every modality's encoder."""
    params = params or {}
    shapes = _shapes(kind, plugin, 3, "vector", params)
    network = _network(kind, plugin, params, shapes).train()
    batch = _batch(shapes, 32, None, seed=6)
    target = torch.arange(32) % N_CLASSES
    output = network(batch)
    loss = network.loss(output, target, batch, training=True)
    if not torch.isfinite(loss):
        _fail(kind, plugin, "finite loss", f"loss is {loss.item()}", "check auxiliary losses")
    loss.backward()
    for m in shapes:
        parameters = [p for p in network.modality_parameters(m) if p.requires_grad]
        if not parameters:  # a frozen backbone: nothing of it trains
            continue
        if all(p.grad is None or not p.grad.abs().sum() > 0 for p in parameters):
            _fail(
                kind,
                plugin,
                "gradients reach every encoder",
                f"no gradient reached modality {m!r}'s encoder",
                "do not detach features on the path to the logits; use every modality",
            )


def _fitted(kind: str, plugin: Any, params: Mapping[str, Any], epochs: int = 2) -> tuple:
    X, y = _easy_task(kind, plugin, n=90)
    return _estimator(kind, plugin, params, max_epochs=epochs).fit(X, y), X, y


_HOOKS = TRAINING_HOOKS
_PROBE = 1000.0


def _counting_subclass(cls: type, counts: dict[str, int], probe: list[bool]) -> type:
    """``cls`` with every training hook counted (then run) and a constant probe loss term."""

    def hook(name: str) -> Callable[..., None]:
        def counted(self: Any, ctx: Any) -> None:
            counts[name] += 1
            getattr(super(subclass, self), name)(ctx)

        counted.__name__ = name
        return counted

    def loss_terms(self: Any, output: FusionOutput, ctx: Any) -> dict[str, torch.Tensor]:
        terms = dict(super(subclass, self).loss_terms(output, ctx))
        if probe[0]:
            terms["contract_probe"] = torch.tensor(_PROBE)
        return terms

    namespace: dict[str, Any] = {name: hook(name) for name in _HOOKS}
    namespace["loss_terms"] = loss_terms
    subclass = type(f"Counting{cls.__name__}", (cls,), namespace)
    return subclass


def check_hooks_and_loss_terms_reach_the_plugin(
    kind: str, plugin: Any, params: Mapping[str, Any] | None = None
) -> None:
    """The engine calls every training hook of a component of this kind the expected number of
    times (once per fit, epoch, or training batch, per instance) and adds its loss terms."""
    params = params or {}
    counts = dict.fromkeys(_HOOKS, 0)
    probe = [True]
    cls = _plugin_class(kind, plugin)
    defaults = plugin.get_params() if isinstance(plugin, Component) else {}
    subclass = _counting_subclass(cls, counts, probe)
    epochs, batch_size, n = 2, 32, 90
    X, y = _easy_task(kind, plugin, n=n)
    model = _estimator(kind, subclass, {**defaults, **params}, max_epochs=epochs)
    model.set_params(batch_size=batch_size).fit(X, y)
    copies = len(list(X.keys())) if kind == "backbone" else 1  # one backbone per modality
    batches = -(-n // batch_size)
    expected = {
        "on_train_begin": copies,
        "on_epoch_begin": epochs * copies,
        "on_batch_begin": epochs * batches * copies,
        "on_grad_computed": epochs * batches * copies,
        "on_epoch_end": epochs * copies,
    }
    if counts != expected:
        _fail(
            kind,
            plugin,
            "its training hooks are called",
            f"hook calls were {counts}, expected {expected} ({epochs} epochs of {batches} "
            f"batches, {copies} instance(s))",
            "this is a bug in the engine (FusionNetwork.components must list every component)",
        )
    network = model.module_
    batch = model.as_batch(X)
    target = torch.as_tensor(model.classes_.searchsorted(y))
    output = network(batch)
    losses = []
    for on in (True, False):
        probe[0] = on
        torch.manual_seed(0)
        losses.append(float(network.loss(output, target, batch, training=True).detach()))
    difference = losses[0] - losses[1]
    if not abs(difference - _PROBE * copies) < 1e-2 * copies:
        _fail(
            kind,
            plugin,
            "its loss terms are added to the loss",
            f"a probe term of {_PROBE} per instance changed the loss by {difference}",
            "this is a bug in the engine (FusionNetwork.loss must sum every component's terms)",
        )


def check_deterministic(kind: str, plugin: Any, params: Mapping[str, Any] | None = None) -> None:
    """The same ``random_state`` gives identical predictions across two fits."""
    params = params or {}
    first, X, _ = _fitted(kind, plugin, params)
    second, _, _ = _fitted(kind, plugin, params)
    if not np.array_equal(first.predict_proba(X), second.predict_proba(X)):
        _fail(
            kind,
            plugin,
            "deterministic under a seed",
            "two fits with random_state=0 predicted differently",
            "draw randomness from torch's global generator (seeded by fit) or seed your own "
            "from it; never from time or numpy's global state",
        )


def check_sklearn_compatible(
    kind: str, plugin: Any, params: Mapping[str, Any] | None = None
) -> None:
    """clone, pickle and GridSearchCV work with the plugin inside a FusionClassifier."""
    params = params or {}
    model, X, y = _fitted(kind, plugin, params)
    expected = model.predict_proba(X)
    try:
        restored = pickle.loads(pickle.dumps(model))  # safe: bytes it just made itself
    except Exception as error:  # noqa: BLE001
        _fail(
            kind,
            plugin,
            "picklable",
            repr(error),
            "define the class at module level; keep no "
            "lambdas, generators or open handles on the module; use register_buffer for tensors",
        )
    if not np.array_equal(restored.predict_proba(X), expected):
        _fail(
            kind,
            plugin,
            "pickle round-trip",
            "predictions changed after unpickling",
            "keep all state needed at predict in parameters, buffers or plain attributes",
        )
    refit = clone(model).fit(X, y)
    if not np.array_equal(refit.predict_proba(X), expected):
        _fail(
            kind,
            plugin,
            "clone",
            "a clone refitted with the same seed predicted differently",
            "keep no state outside the parameters passed to __init__",
        )
    grid = [{kind: [plugin], **{f"{kind}__{k}": [v] for k, v in params.items()}}]
    if isinstance(plugin, str) and not (
        kind == "backbone" and raw_fixtures.raw_kind(_plugin_class(kind, plugin).input_kinds)
    ):  # the default backbone reads no raw values
        grid.append({kind: [DEFAULTS[kind]]})
    search = GridSearchCV(
        FusionClassifier(max_epochs=1, random_state=0), grid, cv=2, error_score="raise"
    )
    try:
        search.fit(X, y)
    except Exception as error:  # noqa: BLE001
        _fail(
            kind,
            plugin,
            "GridSearchCV",
            repr(error),
            "make the plugin work with clone and any subset of rows",
        )


def check_beats_chance(kind: str, plugin: Any, params: Mapping[str, Any] | None = None) -> None:
    """A short fit beats chance clearly on an easy synthetic task.

    Data, split and initialisation are seeded from ``FUSEKIT_TEST_SEED`` (offset 7), so
    ``make test-seeds`` reruns this check under other seeds: it trains and thresholds a score.
    """
    params = params or {}
    seed = 7 + current_seed()
    X, y = _easy_task(kind, plugin, n=300, seed=seed)
    rows = np.arange(len(y))
    train, test = train_test_split(rows, test_size=0.3, random_state=seed, stratify=y)
    model = _estimator(kind, plugin, params, max_epochs=15, random_state=seed)
    model.fit(X[train], y[train])
    accuracy = model.score(X[test], y[test])
    if not accuracy > 1.0 / N_CLASSES + 0.25:
        _fail(
            kind,
            plugin,
            "learns an easy task",
            f"held-out accuracy {accuracy:.2f} with chance at {1 / N_CLASSES:.2f}",
            "check that the fused output carries the modalities' information to the head",
        )


def check_trains_in_chunks(kind: str, plugin: Any, params: Mapping[str, Any] | None = None) -> None:
    """``partial_fit`` on three chunks of different sizes trains and predicts finite values; a
    plugin that declares ``needs_all_training_rows`` is refused by name instead."""
    params = params or {}
    X, y = _easy_task(kind, plugin, n=60)
    model = _estimator(kind, plugin, params, batch_size=16)
    needs_all = bool(getattr(_plugin_class(kind, plugin), "needs_all_training_rows", False))
    chunks = [np.arange(0, 24), np.arange(24, 34), np.arange(34, 60)]
    try:
        for position, rows in enumerate(chunks):
            classes = np.arange(N_CLASSES) if position == 0 else None
            model.partial_fit(X[rows], y[rows], classes=classes)
    except Exception as error:  # noqa: BLE001
        if needs_all and "needs_all_training_rows" in str(error):
            return
        _fail(
            kind,
            plugin,
            "trains one chunk per partial_fit call",
            f"partial_fit on chunks of 24, 10 and 26 rows raised {error!r}",
            "treat each call's ctx.data as the training rows (one epoch per call, "
            "on_train_begin on the first call only), or declare needs_all_training_rows = True",
        )
    if needs_all:
        _fail(
            kind,
            plugin,
            "refused by partial_fit when it needs every training row",
            "partial_fit trained a plugin that declares needs_all_training_rows = True",
            "declare needs_all_training_rows as a class attribute",
        )
    if not np.isfinite(model.predict_proba(X)).all():
        _fail(
            kind,
            plugin,
            "trains one chunk per partial_fit call",
            "predictions after partial_fit on three chunks are not finite",
            "size per-row state from each call's ctx.data, or declare needs_all_training_rows",
        )


class _StandInLoop:
    """What ``TrainingLoop`` reads from skorch's net, for hooks run outside a fit."""

    def __init__(self, network: FusionNetwork) -> None:
        from skorch.history import History

        self.max_epochs, self.batch_size, self.lr = 3, 8, 0.01
        self.optimizer = torch.optim.Adam
        self.optimizer_ = torch.optim.Adam(network.parameters(), lr=self.lr)
        self.history = History()
        self.history.new_epoch()
        self.history.record("epoch", 1)


def _dispatch(network: FusionNetwork, hook: str, ctx: TrainingContext) -> None:
    """Call ``hook`` on every component that overrides it, in pass order (as the engine does)."""
    for component in network.components():
        if getattr(type(component), hook) is not getattr(Component, hook):
            getattr(component, hook)(ctx)


def check_runs_on_meta_device(
    kind: str, plugin: Any, params: Mapping[str, Any] | None = None
) -> None:
    """A training batch runs with the network and the data on torch's ``meta`` device: no
    tensor created on another device, no host sync (``.item()``, ``if t.any():``).

    The network is built and ``on_train_begin`` / ``on_epoch_begin`` run on the CPU (once per fit
    or epoch, a host value is fine there), then the network moves with ``.to("meta")`` and the
    per-batch path runs there: ``on_batch_begin``, the forward pass (``perturb``, ``reweight``,
    ``adjust_logits``), the task loss and loss terms, backward, ``on_grad_computed``, and an
    evaluation pass. A component that needs a host value every batch declares why in
    ``needs_host_values``; ops meta cannot run are a skip (:class:`~fusekit.testing.meta_device.
    MetaUnsupported`), not a failure."""
    params = params or {}
    declared = getattr(_plugin_class(kind, plugin), "needs_host_values", "")
    tried = []
    for form in ("vector", "sequence"):
        shapes = _shapes(kind, plugin, 3, form)
        if shapes in tried:  # a backbone of one input form
            continue
        tried.append(shapes)
        found = _meta_batch(kind, plugin, params, shapes)
        if found is None:
            continue
        problem, stage, error = found
        if problem == "host sync" and declared:
            continue
        where = meta_device.origin(error)
        if problem == "host sync":
            _fail(
                kind,
                plugin,
                "no host sync on the training path",
                f"{stage} needs a tensor's value on the host ({str(error).splitlines()[0]}) at "
                f"{where}; on a GPU that waits for the device every batch",
                "keep the value a tensor: torch.where / masked ops instead of `if t.any():`, "
                "clamp instead of comparing a float, accumulate on the device; a component that "
                "cannot, declares why: needs_host_values = 'reason'",
            )
        _fail(
            kind,
            plugin,
            "tensors on the network's device",
            f"{stage} mixed devices ({str(error).splitlines()[0]}) at {where}",
            "create tensors on the input's device (torch.zeros(n, device=x.device), "
            "x.new_zeros(n), torch.zeros_like(x)) and keep tensor state in register_buffer so "
            "that it follows module.to()",
        )


def _meta_batch(
    kind: str, plugin: Any, params: Mapping[str, Any], shapes: Mapping[str, tuple[int, ...]]
) -> tuple[str, str, BaseException] | None:
    """One training batch of a network of ``shapes`` on the meta device (see
    :func:`check_runs_on_meta_device`); the first host sync or device mix found, else ``None``."""
    network = _network(kind, plugin, params, shapes).train()
    n, rows = 12, slice(0, 8)
    inputs = _batch(shapes, n, {"m0": 0.3}, seed=11)
    target = torch.arange(n) % N_CLASSES
    loop = TrainingLoop(_StandInLoop(network))
    data = TrainingData(inputs, target)
    _dispatch(network, "on_train_begin", TrainingContext(network.view, loop, data, 0))
    _dispatch(network, "on_epoch_begin", TrainingContext(network.view, loop, data, 0))
    network.to("meta")
    meta = TrainingData(inputs.to("meta"), target.to("meta"))
    batch, batch_target = meta.inputs.take(rows), meta.target[rows]
    ctx = TrainingContext(
        network.view, loop, meta, 0, batch=batch, target=batch_target, batch_index=0
    )
    state: dict[str, Any] = {}

    def forward_and_loss() -> None:
        state["output"] = output = network(batch)
        state["loss"] = network.loss(output, batch_target, batch, training=True)

    def evaluate() -> None:
        network.eval()
        with torch.no_grad():
            network(batch)

    stages = [
        ("on_batch_begin", lambda: _dispatch(network, "on_batch_begin", ctx)),
        ("the training forward pass and loss", forward_and_loss),
        ("backward", lambda: state["loss"].requires_grad and state["loss"].backward()),
        ("on_grad_computed", lambda: _dispatch(network, "on_grad_computed", ctx)),
        ("the evaluation forward pass", evaluate),
    ]
    for stage, step in stages:
        found = meta_device.run_step(step, stage)
        if found is not None:
            return found
    return None
