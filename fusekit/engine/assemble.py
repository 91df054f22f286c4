"""The engine's one door: an estimator's choices in, a built network and a skorch net out.

skorch's ``NeuralNet.initialize()`` is the model: the net is made from its parameters in one
place. Here :func:`assemble` takes what an estimator chose for each component kind (a registered
name, a class or an instance, with the ``kind__param`` nested parameters, as :class:`Choices`),
the input shapes and the task; it resolves each component once (recording its :class:`Origin`:
kind, place, registered name, distribution, version), builds the :class:`FusionNetwork` and
resolves the training settings with their sources (:class:`TrainingSettings`).
:func:`make_net` then wraps the network in the skorch net that trains it.

Building is two steps: :func:`resolve_choices` (each component from the registry, once, with
its origin: a :class:`Resolution`) and :func:`build_resolved` (the network of those components);
:func:`build_network` is both. The estimator's fit, the contract checks
(:mod:`fusekit.testing.checks`) and the test fixtures (:mod:`fusekit.testing.fixtures`) build
through them; loading a model resolves its stored components once, makes the input encoders from
those backbones, builds from copies of the resolution (a ``meta`` skeleton, then the network)
and takes its settings from the file (:meth:`TrainingSettings.stored`), never resolving anything
again. Nothing after this door looks a plugin up in the registry: the network carries the
origins (``network.origins``); :func:`plugins_used` and :func:`plugin_names` read them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from fusekit.engine import compilation, frozen_cache
from fusekit.engine.network import FusionNetwork
from fusekit.engine.resolve import (
    Resolved,
    resolve,
    resolve_backbones,
    resolve_weightings,
    split_nested,
)
from fusekit.engine.settings import (
    OPTIMIZERS,
    ProgressLRScheduler,
    Setting,
    resolve_training_settings,
)
from fusekit.engine.stopping import BestValidationStopping, FixedSplit
from fusekit.engine.training import ComponentHooks, FusionNet
from fusekit.plugin import (
    COMPONENT_KINDS,
    KINDS,
    RECOMMENDABLE_PARAMS,
    InputEncoder,
    TrainingData,
)


@dataclass(frozen=True)
class Choices:
    """What was chosen for each component kind (each defaults to its kind's default,
    :data:`fusekit.plugin.KINDS`) and the nested parameters (``"fusion__rank": 8``; keys of
    other prefixes are ignored).

    ``fresh=False`` uses instances given without nested parameters as they are instead of
    copies (tests that hold the component they hand in)."""

    backbone: Any = KINDS["backbone"].default
    calibration: Any = KINDS["calibration"].default
    fusion: Any = KINDS["fusion"].default
    weighting: Any = KINDS["weighting"].default
    nested: Mapping[str, Any] = field(default_factory=dict)
    fresh: bool = True

    @classmethod
    def of(cls, params: Mapping[str, Any]) -> Choices:
        """The choices in an estimator's parameters (``get_params()``, nested ones included)."""
        chosen = {kind: params[kind] for kind in COMPONENT_KINDS if kind in params}
        nested = {
            k: v for k, v in params.items() if "__" in k and k.split("__", 1)[0] in COMPONENT_KINDS
        }
        return cls(**chosen, nested=nested)


@dataclass(frozen=True)
class Resolution:
    """Each component of a network resolved (fresh, unbuilt, with its :class:`Origin`), before
    anything is built: what :func:`build_resolved` builds."""

    backbones: Mapping[str, Resolved]
    calibration: Resolved
    fusion: Resolved
    weightings: Sequence[Resolved]

    def ordered(self) -> list[Resolved]:
        """Every component in :meth:`FusionNetwork.components` order."""
        return [*self.backbones.values(), self.calibration, self.fusion, *self.weightings]

    def copy(self) -> Resolution:
        """Unbuilt deep copies of the components with the same origins (one per build: a
        build turns the components it is given into the network's modules)."""
        return copy.deepcopy(self)


def resolve_choices(choices: Choices, names: Sequence[str]) -> Resolution:
    """Each component of ``choices`` for modalities ``names`` resolved once (``TypeError`` /
    ``ValueError`` naming the kind and the parameter for a choice that cannot be), its origin
    recorded."""
    nested, fresh = choices.nested, choices.fresh
    return Resolution(
        backbones=resolve_backbones(
            choices.backbone, split_nested(nested, "backbone"), tuple(names), fresh=fresh
        ),
        calibration=resolve(
            "calibration", choices.calibration, split_nested(nested, "calibration"), fresh=fresh
        ),
        fusion=resolve("fusion", choices.fusion, split_nested(nested, "fusion"), fresh=fresh),
        weightings=resolve_weightings(
            choices.weighting, split_nested(nested, "weighting"), fresh=fresh
        ),
    )


def build_network(
    choices: Choices,
    input_shapes: Mapping[str, tuple[int, ...]],
    n_outputs: int,
    task: str,
    *,
    encoders: Mapping[str, InputEncoder] | None = None,
    frozen: Sequence[str] = (),
) -> FusionNetwork:
    """The network for ``choices`` over modalities of ``input_shapes`` (in that order): each
    component resolved once (:func:`resolve_choices`), then built (:func:`build_resolved`)."""
    resolution = resolve_choices(choices, tuple(input_shapes))
    return build_resolved(
        resolution, input_shapes, n_outputs, task, encoders=encoders, frozen=frozen
    )


def build_resolved(
    resolution: Resolution,
    input_shapes: Mapping[str, tuple[int, ...]],
    n_outputs: int,
    task: str,
    *,
    encoders: Mapping[str, InputEncoder] | None = None,
    frozen: Sequence[str] = (),
) -> FusionNetwork:
    """The network of the resolved components (used as they are: pass
    :meth:`Resolution.copy` to build twice), with their origins (``network.origins``, in
    :meth:`FusionNetwork.components` order).

    ``encoders``: the fitted input encoders of the raw (text, categorical) modalities, whose
    ``input_shapes`` are then the encoded shapes; ``frozen``: the modalities whose backbones
    are frozen (``frozen_backbones``, :mod:`.frozen_cache`)."""
    try:
        network = FusionNetwork(
            input_shapes=input_shapes,
            backbones={m: r.component for m, r in resolution.backbones.items()},
            calibration=resolution.calibration.component,
            fusion=resolution.fusion.component,
            weighting=[r.component for r in resolution.weightings],
            n_outputs=n_outputs,
            task=task,  # type: ignore[arg-type]
            origins=[r.origin for r in resolution.ordered()],
            encoders=encoders,
        )
    except KeyError as error:  # torch refuses a container key (ParameterDict: "copy", "get")
        clashes = [m for m in input_shapes if f"attribute '{m}' already exists" in str(error)]
        if not clashes:
            raise
        raise ValueError(
            f"modality {clashes[0]!r}: a component of this model keys a torch container by "
            f"modality and torch refuses the name ({error.args[0]}). Rename the modality, "
            f"e.g. {clashes[0] + '_data'!r}."
        ) from error
    frozen_cache.freeze(network, frozen)
    return network


def plugins_used(network: FusionNetwork) -> list[dict[str, str]]:
    """``{"kind", "name", "distribution", "version"}`` of each registered plugin the network
    uses, once each, in :meth:`FusionNetwork.components` order (unregistered classes are not
    plugins and are left out)."""
    records: list[dict[str, str]] = []
    for origin in network.origins:
        record = origin.record()
        if record is not None and record not in records:
            records.append(record)
    return records


def plugin_names(network: FusionNetwork) -> dict[tuple[str, type], str]:
    """``{(kind, class): registered name}`` of the network's registered components, from their
    origins (the first one where a class serves twice)."""
    names: dict[tuple[str, type], str] = {}
    for origin in network.origins:
        if origin.name is not None:
            names.setdefault((origin.kind, origin.cls), origin.name)
    return names


@dataclass(frozen=True)
class TrainingSettings:
    """The resolved ``lr``, optimiser class and lr schedule, with each one's source
    (``{name: {"value", "source"}}``, the estimator's ``training_settings_``)."""

    lr: float
    optimizer: type[torch.optim.Optimizer]
    lr_schedule: Callable[[float], float] | None
    sources: dict[str, dict[str, Any]]

    @classmethod
    def resolved(cls, settings: Mapping[str, Setting]) -> TrainingSettings:
        return cls(
            lr=float(settings["lr"].value),
            optimizer=optimizer_class(settings["optimizer"].value),
            lr_schedule=settings["lr_schedule"].value,
            sources={name: {"value": s.value, "source": s.source} for name, s in settings.items()},
        )

    @classmethod
    def stored(
        cls, lr: float, optimizer: type, lr_schedule: Any, sources: dict[str, dict[str, Any]]
    ) -> TrainingSettings:
        """Settings as a model file holds them (checked by the caller), not resolved again."""
        return cls(lr=lr, optimizer=optimizer, lr_schedule=lr_schedule, sources=sources)

    def callbacks(self) -> list[tuple[str, Any]]:
        """The schedule's skorch callback, if there is a schedule."""
        if self.lr_schedule is None:
            return []
        return [("lr_schedule", ProgressLRScheduler(self.lr_schedule))]


def optimizer_class(optimizer: Any) -> type[torch.optim.Optimizer]:
    """The optimiser class of a resolved ``optimizer`` setting (a name or a class)."""
    if isinstance(optimizer, str):
        if optimizer.lower() not in OPTIMIZERS:
            raise ValueError(
                f"optimizer={optimizer!r} is unknown; use 'auto', one of "
                f"{sorted(OPTIMIZERS)} or a torch.optim.Optimizer class."
            )
        return OPTIMIZERS[optimizer.lower()]
    return optimizer


@dataclass(frozen=True)
class Assembly:
    """A network, the settings it trains with and the plugins it uses."""

    network: FusionNetwork
    settings: TrainingSettings

    @property
    def plugins(self) -> list[dict[str, str]]:
        return plugins_used(self.network)


def assemble(
    choices: Choices,
    input_shapes: Mapping[str, tuple[int, ...]],
    n_outputs: int,
    task: str,
    requested: Mapping[str, Any],
    partial: bool = False,
    network: FusionNetwork | None = None,
    *,
    encoders: Mapping[str, InputEncoder] | None = None,
    frozen: Sequence[str] = (),
) -> Assembly:
    """Build the network for ``choices`` (:func:`resolve_choices`, :func:`build_resolved`) and
    resolve its training settings: ``lr``, ``optimizer`` and ``lr_schedule`` of ``requested``
    (the estimator's parameters), those left at ``"auto"`` filled from the network's
    components (:mod:`.settings`). With ``network`` (a continued fit) that network is kept and
    only the settings are resolved.

    ``partial``: a schedule needs the length of training, which ``partial_fit`` does not know, so
    the lr stays constant (source ``"partial_fit"``). ``encoders`` and ``frozen`` as for
    :func:`build_network`."""
    if network is None:
        resolution = resolve_choices(choices, tuple(input_shapes))
        network = build_resolved(
            resolution, input_shapes, n_outputs, task, encoders=encoders, frozen=frozen
        )
    settings = resolve_training_settings({k: requested[k] for k in RECOMMENDABLE_PARAMS}, network)
    if partial:
        settings["lr_schedule"] = Setting(None, "partial_fit")
    return Assembly(network, TrainingSettings.resolved(settings))


#: The nested-parameter prefixes that go to skorch (``optimizer__momentum``, ``callbacks__...``).
SKORCH_PREFIXES = ("optimizer", "callbacks")


def make_net(
    network: FusionNetwork,
    settings: TrainingSettings,
    params: Mapping[str, Any],
    data: TrainingData | None,
    split: FixedSplit | None = None,
    device: str | None = None,
    resume: bool = False,
) -> FusionNet:
    """The skorch net that trains ``network`` with ``settings`` under the estimator's loop
    ``params`` (``get_params()``: ``max_epochs``, ``batch_size``, ``train_split``, ``callbacks``,
    ``device``, ``verbose``, ``shuffle``, ``n_iter_no_change``, ``tol``, ``precision``,
    ``compile`` and the ``optimizer__`` / ``callbacks__`` / ``compile__`` nested ones), its plugin
    hooks on ``data``'s rows, on ``device`` (the resolved device; default ``params["device"]``).
    With an early-stopping ``split`` it validates on that split's rows and stops on their loss;
    ``resume``: the components' state carries on (a later ``partial_fit`` call)."""
    skorch_params = {
        k: v for k, v in params.items() if "__" in k and k.split("__", 1)[0] in SKORCH_PREFIXES
    }
    if not params["verbose"]:  # skorch's PrintLog tabulates every epoch even when it prints nothing
        skorch_params.setdefault("callbacks__print_log", None)
    net = FusionNet(
        module=network,
        criterion=torch.nn.Identity,
        optimizer=settings.optimizer,
        lr=settings.lr,
        max_epochs=params["max_epochs"],
        batch_size=params["batch_size"],
        train_split=params["train_split"] if split is None else split,
        callbacks=[
            # plugin hooks first: gradient modulation precedes e.g. user gradient clipping
            ("fusekit_hooks", ComponentHooks(data, resume=resume)),
            *settings.callbacks(),
            *(params["callbacks"] or []),
            # last: sees the epoch's valid_loss, restores the best weights after every hook
            *(
                [
                    (
                        "fusekit_early_stopping",
                        BestValidationStopping(params["n_iter_no_change"], params["tol"]),
                    )
                ]
                if split is not None
                else []
            ),
        ],
        device=params["device"] if device is None else device,
        verbose=params["verbose"],
        **skorch_params,
    )
    net.shuffle = bool(params["shuffle"])
    net.precision = params["precision"]
    compilation.apply(network, params["compile"], compilation.options_from(params))
    return net
