"""The narrow views of the network and of the training loop that contexts hand to plugins.

A plugin never holds the engine's objects themselves: :class:`NetworkView` lists every call a
method may make on the network being trained, :class:`TrainingLoop` the facts and actions of the
loop. Both are documented here and nowhere else, so this file is the contract's surface.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from torch import Tensor, nn

from fusekit.plugin.batch import ModalityBatch
from fusekit.plugin.criterion import TaskCriterion
from fusekit.plugin.output import FusionOutput
from fusekit.plugin.spec import BuildSpec


class NetworkView:
    """What a plugin may call on the fusion network (wraps the engine's network).

    Pass order: ``batch -> backbones -> calibration -> weightings.reweight -> fusion -> head ->
    weightings.adjust_logits``. Features dicts iterate in :attr:`names` order, which is the order of
    the mask's columns.
    """

    __slots__ = ("_network",)

    def __init__(self, network: Any) -> None:
        self._network = network

    # -- facts -------------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        """Modality names, in mask-column order."""
        return self._network.names

    @property
    def spec(self) -> BuildSpec:
        """The :class:`BuildSpec` every component was built with."""
        return self._network.spec

    @property
    def training(self) -> bool:
        """Whether the network is in training mode."""
        return self._network.training

    @property
    def fusion(self) -> nn.Module:
        """The fusion component (read its class attributes and hyperparameters)."""
        return self._network.fusion

    @property
    def head(self) -> nn.Module:
        """The head after the fusion (``nn.Linear``; ``nn.Identity`` for logit fusions)."""
        return self._network.head

    @property
    def unimodal_heads(self) -> nn.ModuleDict | None:
        """``{m: Linear}`` per-modality heads, when a component asked for them, else ``None``."""
        return self._network.unimodal_heads

    @property
    def weightings(self) -> tuple[nn.Module, ...]:
        """The weighting components, in the order they are applied."""
        return tuple(self._network.weightings)

    def modality_parameters(self, name: str) -> list[nn.Parameter]:
        """Parameters of modality ``name``'s encoder (for per-branch gradient modulation)."""
        return self._network.modality_parameters(name)

    def parameters(self) -> Iterator[nn.Parameter]:
        """Every parameter of the network (e.g. for an optimiser over a :meth:`copy`)."""
        return self._network.parameters()

    # -- passes ------------------------------------------------------------------------------
    def __call__(self, batch: ModalityBatch) -> FusionOutput:
        """A full forward pass (hooks and training-time perturbation as in training)."""
        return self._network(batch)

    def fuse(
        self,
        features: dict[str, Tensor],
        mask: Tensor,
        output: FusionOutput | None = None,
        steps: dict[str, Tensor] | None = None,
    ) -> Tensor:
        """Weightings, fusion and head on calibrated ``features`` under ``mask``: logits.

        Without ``output`` (an extra pass) features of modalities that ``mask`` marks absent are
        zeroed first; pass the full pass's ``output.steps`` as ``steps`` for padded sequences.
        With ``output``, the pass writes into it (``fused``, ``logits``...).
        """
        return self._network.fuse(features, mask, output, steps)

    def decide(
        self, features: dict[str, Tensor], mask: Tensor, steps: dict[str, Tensor] | None = None
    ) -> Tensor:
        """Fusion and head only (no weighting) on ``features`` as given: ``(B, n_outputs)``."""
        return self._network.decide(features, mask, steps)

    def unimodal(
        self, features: dict[str, Tensor], steps: dict[str, Tensor] | None = None
    ) -> dict[str, Tensor] | None:
        """Per-modality head logits ``{m: (B, n_outputs)}``, or ``None`` without unimodal heads."""
        return self._network.unimodal(features, steps)

    def predict_logits(self, batch: ModalityBatch, batch_size: int) -> Tensor:
        """Fused logits of every row of ``batch``, in chunks, without gradients."""
        return self._network.predict_logits(batch, batch_size)

    # -- losses ------------------------------------------------------------------------------
    @property
    def criterion(self) -> TaskCriterion:
        """The task criterion the network trains on (``per_sample``, ``mean``); inside a loss
        term use the context's (``ctx.per_sample_loss``, ``ctx.mean_loss``)."""
        return self._network.criterion

    def task_loss(self, output: FusionOutput, ctx: Any) -> Tensor:
        """The task loss as the weightings define it (without auxiliary terms)."""
        return self._network.task_loss(output, ctx)

    def loss(
        self, output: FusionOutput, target: Tensor, batch: ModalityBatch, training: bool
    ) -> Tensor:
        """The whole training loss of a pass: task loss plus every component's terms."""
        return self._network.loss(output, target, batch, training)

    # -- modes and copies --------------------------------------------------------------------
    def train(self, mode: bool = True) -> NetworkView:
        self._network.train(mode)
        return self

    def eval(self) -> NetworkView:
        self._network.eval()
        return self

    @contextmanager
    def evaluating(self) -> Iterator[NetworkView]:
        """Eval mode inside the block, the previous mode restored after it."""
        was_training = self._network.training
        self._network.eval()
        try:
            yield self
        finally:
            self._network.train(was_training)

    def requires_grad_(self, requires_grad: bool = True) -> NetworkView:
        self._network.requires_grad_(requires_grad)
        return self

    def to(self, device: Any) -> NetworkView:
        """Move the network (a side copy, e.g. a teacher) to ``device``; returns the view."""
        self._network.to(device)
        return self

    def copy(self, plain: bool = False) -> NetworkView:
        """An independent deep copy of the network (same weights), for side training.

        ``plain=True``: without weightings and without forward hooks, i.e. the network joint
        training would build on the same backbones, calibration and fusion.
        """
        return NetworkView(self._network.copy(plain=plain))

    def register_forward_pre_hook(self, hook: Callable[[Any, tuple[Any, ...]], Any]) -> Any:
        """``hook(module, (batch,))`` before every forward pass; returns a removable handle."""
        return self._network.register_forward_pre_hook(hook)

    def has_forward_pre_hook(self, hook: Callable[..., Any]) -> bool:
        """Whether ``hook`` is already registered."""
        return hook in self._network._forward_pre_hooks.values()


class TrainingLoop:
    """The facts and actions of the training loop a hook may use (wraps the engine's loop)."""

    __slots__ = ("_loop",)

    def __init__(self, loop: Any) -> None:
        self._loop = loop

    @property
    def max_epochs(self) -> int:
        return int(self._loop.max_epochs)

    @property
    def batch_size(self) -> int:
        """Rows per training batch (``<= 0``: the whole training set in one batch)."""
        return int(self._loop.batch_size)

    @property
    def lr(self) -> float:
        return self._loop.lr

    @property
    def optimizer_class(self) -> type:
        """The optimiser class the estimator was given (``torch.optim.Adam``...)."""
        return self._loop.optimizer

    def new_optimizer(self, parameters: Iterable[nn.Parameter]) -> Any:
        """A fresh optimiser of the training optimiser's class and settings over ``parameters``."""
        current = self._loop.optimizer_
        return type(current)(parameters, **current.defaults)

    def record(self, key: str, value: Any) -> None:
        """Write ``value`` under ``key`` in this epoch's row of the training history."""
        self._loop.history.record(key, value)

    def last_epoch(self) -> dict[str, Any]:
        """The history row of the current epoch (``{}`` before the first)."""
        history = self._loop.history
        return history[-1] if len(history) else {}
