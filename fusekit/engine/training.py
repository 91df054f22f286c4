"""The private skorch net that trains a :class:`FusionNetwork`, and the hooks callback.

skorch keeps the loop, callbacks, history and optimiser handling; fusekit replaces the data path:
``get_dataset`` takes prepared tensors (:class:`TrainingData`), ``get_iterator`` slices them in
memory (no per-sample ``Dataset`` + collate), ``infer`` calls the network on a
:class:`ModalityBatch`, and ``get_loss`` asks the network (task loss + every auxiliary term).

The per-batch path is trimmed to what a hand-written loop does (profiled in
``docs/performance.md``): ``run_single_epoch`` writes the history row directly (skorch's
``History.__getitem__`` parses its key three times per batch), keeps each batch's loss on the
device and reads the epoch's losses into the history once, at its end (no host sync per batch on
a GPU; the history rows hold the same floats skorch's ``loss.item()`` would), checks them for
divergence there, and calls only callbacks that override a batch hook; ``train_step`` steps built-in
``torch.optim`` optimisers without skorch's closure and step accumulator (optimisers that need a
closure, such as LBFGS or third-party ones, keep skorch's path).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import torch
from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.dataset import unpack_data
from skorch.utils import TeeGenerator
from torch.utils.data import Subset

from fusekit.engine import distributed
from fusekit.engine.batching import BatchIterator
from fusekit.engine.interrupts import watch_interrupts
from fusekit.engine.network import FusionNetwork
from fusekit.engine.precision import MixedPrecision
from fusekit.engine.streamed import StreamedData
from fusekit.plugin import (
    TRAINING_HOOKS,
    Component,
    FusionOutput,
    ModalityBatch,
    TrainingContext,
    TrainingData,
    TrainingLoop,
)

_HOOKS = TRAINING_HOOKS


def _steps_without_closure(optimizer: torch.optim.Optimizer) -> bool:
    """Whether ``optimizer.step()`` needs no loss closure: built-in torch optimisers but LBFGS."""
    return _closure_free(type(optimizer))


@functools.cache
def _closure_free(kind: type) -> bool:
    return kind.__module__.startswith("torch.optim.") and not issubclass(kind, torch.optim.LBFGS)


class FusionNet(NeuralNet):
    """skorch ``NeuralNet`` over in-memory modality tensors.

    ``run_single_epoch``, ``train_step``, ``notify``, ``_set_training`` and
    ``_callback_listeners`` replace private parts of skorch's loop; they follow skorch 1.4, which
    ``pyproject.toml`` pins (``skorch>=1.4,<1.5``). Check them against a new skorch before
    widening the pin.
    """

    generator: torch.Generator | None = None
    shuffle: bool = True  # shuffle the training rows every epoch
    #: The global torch RNG state where the last ``partial_fit`` call left it (dropout, plugins'
    #: draws), so that the next call continues the same random stream.
    rng_state_: torch.Tensor | None = None
    batch_index_: int = 0  # training batches done in the current epoch
    precision: str = "32"  # the estimator's ``precision`` (:mod:`fusekit.engine.precision`)

    @property
    def mixed_precision_(self) -> MixedPrecision:
        """Autocast, scaled backward and step for :attr:`precision` (one per training run)."""
        amp = self.__dict__.get("_mixed_precision")
        if amp is None or amp.precision != self.precision:
            amp = self.__dict__["_mixed_precision"] = MixedPrecision(self.precision, self.device)
        return amp

    #: The process group while training data-parallel (:mod:`fusekit.engine.distributed`).
    parallel: distributed.DataParallel | None = None

    def check_data(self, X: Any, y: Any = None) -> None:
        if not isinstance(X, (TrainingData, Subset, StreamedData)):
            raise TypeError(f"FusionNet trains on TrainingData, got {type(X).__name__}")

    def partial_fit(self, X: Any, y: Any = None, classes: Any = None, **fit_params: Any) -> Any:
        """skorch's ``partial_fit``, except that a real interrupt propagates.

        skorch swallows every ``KeyboardInterrupt`` raised in ``fit_loop``: that is how callbacks
        (``EarlyStopping``) end training, but it also turned a user's Ctrl-C into a normal return
        with a half-trained model. A ``KeyboardInterrupt`` that a SIGINT caused is re-raised after
        ``on_train_end`` (so the network holds usable weights); one a callback raised still just
        ends training.
        """
        if not self.initialized_:
            self.initialize()
        routing_method = fit_params.pop("_routing_method", "partial_fit")
        with distributed.training(self.parallel):  # components' all_reduce, in every hook
            self.notify("on_train_begin", X=X, y=y)
            with watch_interrupts() as interrupted:
                try:
                    self.fit_loop(X, y, _routing_method=routing_method, **fit_params)
                except KeyboardInterrupt:
                    self.notify("on_train_end", X=X, y=y)
                    if interrupted():
                        raise
                    return self
            self.notify("on_train_end", X=X, y=y)
        return self

    def get_dataset(self, X: Any, y: Any = None) -> Any:
        return X

    def get_iterator(self, dataset: Any, training: bool = False) -> BatchIterator:
        if isinstance(dataset, StreamedData):  # out of core: read window by window
            return dataset.batches(self.batch_size, training and self.shuffle, self.generator)
        rows = None
        if isinstance(dataset, Subset):
            rows = torch.as_tensor(dataset.indices, dtype=torch.long)
            dataset = dataset.dataset
        batch_size = self.batch_size if self.batch_size > 0 else len(dataset)
        iterator = BatchIterator(
            dataset,
            batch_size,
            shuffle=training and self.shuffle,
            generator=self.generator,
            rows=rows,
        )
        # data-parallel: this rank's shard of each global batch (validation is not sharded)
        return iterator if self.parallel is None or not training else self.parallel.shard(iterator)

    def train_step_single(self, batch: Any, **fit_params: Any) -> dict[str, Any]:
        if self.parallel is None:
            return self._local_train_step(batch, **fit_params)
        return self.parallel.train_step_single(self, batch)

    def _set_training(self, training: bool = True) -> None:
        # skorch calls this every batch; Module.train() walks every submodule, which costs ~10% of
        # a small network's step. Switch only when the network's mode actually changes.
        if self.module_.training != training:
            super()._set_training(training)

    def _callback_listeners(self, method_name: str) -> list[Any]:
        """Bound ``method_name`` hooks of the callbacks that override it (not the net's own).

        The list is cached and rebuilt when ``callbacks_`` changes.
        """
        cache = self.__dict__.get("_listener_cache")
        if cache is None or cache[0] is not self.callbacks_:
            cache = (self.callbacks_, {})
            self.__dict__["_listener_cache"] = cache
        listeners = cache[1].get(method_name)
        if listeners is None:
            listeners = [
                getattr(cb, method_name)
                for _, cb in self.callbacks_
                if getattr(type(cb), method_name, None) is not getattr(Callback, method_name)
            ]
            cache[1][method_name] = listeners
        return listeners

    def notify(self, method_name: str, **cb_kwargs: Any) -> None:
        # skorch calls every callback's hook (mostly inherited no-ops); call only the overrides.
        getattr(self, method_name)(self, **cb_kwargs)  # the net's own hook (history)
        for listener in self._callback_listeners(method_name):
            listener(self, **cb_kwargs)

    def run_single_epoch(
        self, iterator: Any, training: bool, prefix: str, step_fn: Any, **fit_params: Any
    ) -> None:
        """One pass over ``iterator``: skorch's loop with the same history rows and callbacks."""
        if iterator is None:
            return
        begin = self._callback_listeners("on_batch_begin")
        end = self._callback_listeners("on_batch_end")
        batches = self.history[-1]["batches"]  # the history row skorch's new_batch would append
        loss_key, size_key = f"{prefix}_loss", f"{prefix}_batch_size"
        count = 0
        records: list[dict[str, Any]] = []  # this pass's rows of the history's batch list
        losses: list[torch.Tensor] = []  # their losses, on the device until the pass ends
        weights: list[Any] = []  # their *_batch_size entries (a device tensor with sample weights)
        tasks: list[tuple[torch.Tensor, Any]] = []  # fused task losses and weights
        state = self.__dict__  # plain writes: skorch's __setattr__ inspects every assignment
        for batch in iterator:
            if training:
                state["batch_index_"] = count
            record: dict[str, Any] = {}
            batches.append(record)
            records.append(record)
            for listener in begin:
                listener(self, batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            losses.append(step["loss"].detach())
            weights.append(_batch_weight(batch[0]))
            task = state.pop("_task_loss", None)
            if task is not None:
                tasks.append((task.detach(), weights[-1]))
            for listener in end:
                listener(self, batch=batch, training=training, **step)
            # Free this step's outputs (activations of large fusions) before the next forward pass
            # allocates its own, as a hand-written loop does.
            del step
            count += 1
        _record_losses(records, loss_key, size_key, losses, weights)
        if training:
            state["batch_index_"] = count
        for position, record in enumerate(records):
            if not math.isfinite(record[loss_key]):
                self._diverged(record[loss_key], training, position)
        self.history.record(f"{prefix}_batch_count", count)
        if tasks:  # the fused prediction's task loss, without auxiliary terms (read once)
            total = sum(task * weight for task, weight in tasks)
            weight_sum = sum(weight for _, weight in tasks)
            if float(weight_sum) > 0:
                self.history.record(f"{prefix}_task_loss", float(total / weight_sum))

    def _diverged(self, loss: float, training: bool, batch: int) -> None:
        raise FloatingPointError(
            f"training diverged: the {'training' if training else 'validation'} loss became "
            f"{loss} at epoch {len(self.history)}, batch {batch + 1}. Lower lr (now {self.lr}), "
            "standardize inputs, or check the plugins' auxiliary losses."
        )

    def train_step(self, batch: Any, **fit_params: Any) -> dict[str, Any]:
        """One optimisation step; closure-free for built-in ``torch.optim`` optimisers."""
        optimizers = [getattr(self, name + "_") for name in self._optimizers]
        amp = self.mixed_precision_
        if not all(map(_steps_without_closure, optimizers)):
            if amp.scaler is not None:
                raise ValueError(
                    "precision='16-mixed' scales the loss with torch.amp.GradScaler, which cannot "
                    f"step an optimizer that needs a closure ({type(optimizers[0]).__name__}). "
                    "Use precision='bf16' or '32', or a torch.optim optimizer other than LBFGS."
                )
            return super().train_step(batch, **fit_params)
        for optimizer in optimizers:
            optimizer.zero_grad()
        step = self.train_step_single(batch, **fit_params)
        amp.unscale(optimizers)  # the hooks below read and edit true gradients
        grad_listeners = self._callback_listeners("on_grad_computed")
        if grad_listeners:
            named_parameters = TeeGenerator(self.get_all_learnable_params())
            for listener in grad_listeners:
                listener(self, named_parameters=named_parameters, batch=batch, training=True)
        amp.step(optimizers)
        return step

    def _local_train_step(self, batch: Any, **fit_params: Any) -> dict[str, Any]:
        """skorch's step (forward, loss, backward), the forward and loss under autocast."""
        self._set_training(True)
        inputs, target = unpack_data(batch)
        amp = self.mixed_precision_
        with amp.autocast():
            y_pred = self.infer(inputs, **fit_params)
            loss = self.get_loss(y_pred, target, X=inputs, training=True)
        amp.backward(loss)
        return {"loss": loss, "y_pred": y_pred}

    def validation_step(self, batch: Any, **fit_params: Any) -> dict[str, Any]:
        with self.mixed_precision_.autocast():
            return super().validation_step(batch, **fit_params)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("_listener_cache", None)
        return state

    def infer(self, x: ModalityBatch, **fit_params: Any) -> FusionOutput:
        return self.module_(x)

    def get_loss(
        self, y_pred: FusionOutput, y_true: torch.Tensor, X: Any = None, training: bool = False
    ) -> torch.Tensor:
        # the fused prediction's plain task loss beside the total (whose auxiliary terms may rise
        # while the prediction improves): the epoch's ``train_task_loss`` history entry
        self.__dict__["_task_loss"] = self.module_.criterion.mean(y_pred.logits.detach(), y_true)
        return self.module_.loss(y_pred, y_true, X, training)


class ComponentHooks(Callback):
    """Forwards skorch's training events to every component: backbones, calibration, fusion and
    weightings, in that order (``FusionNetwork.components``).

    Only components that override a hook are called for it, so the default costs nothing per batch.
    With ``resume=True`` (a later ``partial_fit`` call) the components' ``on_train_begin`` is not
    called: their state carries on from the previous call.
    """

    def __init__(self, data: TrainingData | None = None, resume: bool = False) -> None:
        self.data = data
        self.resume = resume

    def initialize(self) -> ComponentHooks:
        self._listeners: dict[str, list[Component]] = {hook: [] for hook in _HOOKS}
        self._train_rows: torch.Tensor | None = None
        self._loop: TrainingLoop | None = None
        self._streamed_rows: int | None = None
        return self

    def _context(self, net: NeuralNet, **extra: Any) -> TrainingContext:
        return TrainingContext(
            network=net.module_.view,
            loop=self._loop,
            data=self.data,
            epoch=len(net.history) - 1,
            train_rows=self._train_rows,
            batch_index=net.batch_index_,
            n_rows=self._streamed_rows,
            **extra,
        )

    def on_train_begin(self, net: NeuralNet, X: Any = None, y: Any = None, **kwargs: Any) -> None:
        network: FusionNetwork = net.module_
        self._loop = TrainingLoop(net)
        # a streamed fit holds no TrainingData: its row count still reaches the hooks
        self._streamed_rows = len(X) if isinstance(X, StreamedData) else None
        self._listeners = {
            hook: [
                component
                for component in network.components()
                if getattr(type(component), hook) is not getattr(Component, hook)
            ]
            for hook in _HOOKS
        }
        if self.resume:
            return
        self._dispatch(
            "on_train_begin",
            TrainingContext(
                network.view,
                self._loop,
                self.data,
                len(net.history),
                n_rows=self._streamed_rows,
            ),
        )

    def _dispatch(self, hook: str, ctx: TrainingContext) -> None:
        for component in self._listeners[hook]:
            getattr(component, hook)(ctx)

    def on_epoch_begin(self, net: NeuralNet, dataset_train: Any = None, **kwargs: Any) -> None:
        if isinstance(dataset_train, Subset):
            self._train_rows = torch.as_tensor(dataset_train.indices, dtype=torch.long)
        if self._listeners["on_epoch_begin"]:
            self._dispatch("on_epoch_begin", self._context(net))

    def on_batch_begin(
        self, net: NeuralNet, batch: Any = None, training: bool = False, **kwargs: Any
    ) -> None:
        if training and self._listeners["on_batch_begin"]:
            self._dispatch("on_batch_begin", self._context(net, batch=batch[0], target=batch[1]))

    def on_grad_computed(
        self,
        net: NeuralNet,
        named_parameters: Any = None,
        batch: Any = None,
        training: bool = False,
        **kwargs: Any,
    ) -> None:
        if training and self._listeners["on_grad_computed"]:
            inputs, target = batch if batch is not None else (None, None)
            self._dispatch("on_grad_computed", self._context(net, batch=inputs, target=target))

    def on_epoch_end(self, net: NeuralNet, **kwargs: Any) -> None:
        if self._listeners["on_epoch_end"]:
            self._dispatch("on_epoch_end", self._context(net))


def _record_losses(
    records: list[dict[str, Any]],
    loss_key: str,
    size_key: str,
    losses: list[torch.Tensor],
    weights: list[Any],
) -> None:
    """Write a pass's batch losses and ``*_batch_size`` entries into its history ``records`` as
    Python numbers, read from the device in one transfer. (A pass that a callback or Ctrl-C
    ends early leaves its batch rows without them, as it leaves the epoch without its
    ``train_loss``.)"""
    if not losses:
        return
    values = torch.stack(losses).tolist()
    if weights and isinstance(weights[0], torch.Tensor):
        weights = torch.stack(weights).tolist()
    for record, loss, weight in zip(records, values, weights, strict=True):
        record[loss_key] = loss
        record[size_key] = weight


def _batch_weight(batch: Any) -> torch.Tensor | int:
    """The ``*_batch_size`` history entry: the batch's rows, or with sample weights their sum (a
    device tensor, read with the losses at the end of the epoch).

    skorch averages the epoch's ``train_loss`` / ``valid_loss`` over batches weighted by this
    entry; each batch's loss is Σ w ℓ / Σ w, so weighting by Σ w makes the epoch value
    Σ w ℓ / Σ w over the whole epoch (not a row-count average of the batch means).
    """
    weights = getattr(batch, "sample_weight", None)
    return len(batch) if weights is None else weights.sum()
