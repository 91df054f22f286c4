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

    The members annotated below are the network's own, handed through unchanged (an explicit
    allow-list, :data:`FORWARDED`; any other name is an ``AttributeError``); the methods written
    out are those whose view differs from the network (they return the view, or a view of a
    copy). Facts:

    * ``names``: modality names, in mask-column order; ``spec``: the :class:`BuildSpec` every
      component was built with; ``training``: whether the network is in training mode;
    * ``fusion``: the fusion component (read its class attributes and hyperparameters);
      ``head``: the head after the fusion (``nn.Linear``; ``nn.Identity`` for logit fusions);
      ``unimodal_heads``: ``{m: Linear}`` per-modality heads when a component asked for them,
      else ``None``;
    * ``modality_parameters(m)``: the parameters of modality ``m``'s encoder (per-branch
      gradient modulation); ``parameters()``: every parameter (an optimiser over a
      :meth:`copy`).

    Passes:

    * ``fuse(features, mask, output=None, steps=None)``: weightings, fusion and head on
      calibrated ``features`` under ``mask``, the logits. Without ``output`` (an extra pass)
      features of modalities that ``mask`` marks absent are zeroed first; pass the full pass's
      ``output.steps`` as ``steps`` for padded sequences. With ``output``, the pass writes into
      it (``fused``, ``logits``...);
    * ``decide(features, mask, steps=None)``: fusion and head only (no weighting) on
      ``features`` as given, ``(B, n_outputs)``;
    * ``unimodal(features, steps=None)``: per-modality head logits ``{m: (B, n_outputs)}``, or
      ``None`` without unimodal heads;
    * ``predict_logits(batch, batch_size)``: fused logits of every row, in chunks, without
      gradients; a full pass is ``view(batch)`` (hooks and training-time perturbation as in
      training).

    Losses: ``criterion``, the :class:`TaskCriterion` the network trains on (``per_sample``,
    ``mean``; inside a loss term use the context's ``ctx.per_sample_loss``, ``ctx.mean_loss``);
    ``task_loss(output, ctx)``, the task loss as the weightings define it (without auxiliary
    terms); ``loss(output, target, batch, training)``, the whole training loss of a pass.

    Hooks: ``register_forward_pre_hook(hook)`` runs ``hook(module, (batch,))`` before every
    forward pass and returns a removable handle; ``has_forward_pre_hook(hook)`` says whether
    ``hook`` is registered.
    """

    __slots__ = ("_network",)

    names: tuple[str, ...]
    spec: BuildSpec
    training: bool
    fusion: nn.Module
    head: nn.Module
    unimodal_heads: nn.ModuleDict | None
    criterion: TaskCriterion
    modality_parameters: Callable[[str], list[nn.Parameter]]
    parameters: Callable[[], Iterator[nn.Parameter]]
    fuse: Callable[..., Tensor]
    decide: Callable[..., Tensor]
    unimodal: Callable[..., dict[str, Tensor] | None]
    predict_logits: Callable[[ModalityBatch, int], Tensor]
    task_loss: Callable[[FusionOutput, Any], Tensor]
    loss: Callable[[FusionOutput, Tensor, ModalityBatch, bool], Tensor]
    register_forward_pre_hook: Callable[[Callable[[Any, tuple[Any, ...]], Any]], Any]
    has_forward_pre_hook: Callable[[Callable[..., Any]], bool]

    def __init__(self, network: Any) -> None:
        self._network = network

    def __getattr__(self, name: str) -> Any:
        # only for names not found on the view: the allow-list, read from the network
        if name in FORWARDED:
            return getattr(self._network, name)
        raise AttributeError(
            f"NetworkView has no {name!r}: a plugin may use {sorted(_MEMBERS)} on the network "
            "(see fusekit.plugin.views.NetworkView)"
        )

    def __dir__(self) -> list[str]:
        return sorted(_MEMBERS)

    @property
    def weightings(self) -> tuple[nn.Module, ...]:
        """The weighting components, in the order they are applied."""
        return tuple(self._network.weightings)

    def __call__(self, batch: ModalityBatch) -> FusionOutput:
        """A full forward pass (hooks and training-time perturbation as in training)."""
        return self._network(batch)

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


#: The network's members a view hands through unchanged (those annotated on the class).
FORWARDED: frozenset[str] = frozenset(NetworkView.__annotations__)
#: Everything a plugin may use on a view.
_MEMBERS: frozenset[str] = FORWARDED | {
    name for name in vars(NetworkView) if not name.startswith("_")
}


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
