"""The private skorch net that trains a :class:`FusionNetwork`, and the hooks callback.

skorch keeps the loop, callbacks, history and optimiser handling; fusekit replaces the data path:
``get_dataset`` takes prepared tensors (:class:`TrainingData`), ``get_iterator`` slices them in
memory (no per-sample ``Dataset`` + collate), ``infer`` calls the network on a
:class:`ModalityBatch`, and ``get_loss`` asks the network (task loss + every auxiliary term).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from skorch import NeuralNet
from skorch.callbacks import Callback
from torch.utils.data import Subset

from fusekit.batch import BatchIterator, ModalityBatch, TrainingData
from fusekit.components import Component
from fusekit.network import FusionNetwork
from fusekit.output import FusionOutput, TrainingContext

_HOOKS = ("on_train_begin", "on_epoch_begin", "on_batch_begin", "on_grad_computed", "on_epoch_end")


class FusionNet(NeuralNet):
    """skorch ``NeuralNet`` over in-memory modality tensors."""

    generator: torch.Generator | None = None

    def check_data(self, X: Any, y: Any = None) -> None:
        if not isinstance(X, (TrainingData, Subset)):
            raise TypeError(f"FusionNet trains on TrainingData, got {type(X).__name__}")

    def get_dataset(self, X: Any, y: Any = None) -> Any:
        return X

    def get_iterator(self, dataset: Any, training: bool = False) -> BatchIterator:
        rows = None
        if isinstance(dataset, Subset):
            rows = torch.as_tensor(dataset.indices, dtype=torch.long)
            dataset = dataset.dataset
        batch_size = self.batch_size if self.batch_size > 0 else len(dataset)
        return BatchIterator(
            dataset, batch_size, shuffle=training, generator=self.generator, rows=rows
        )

    def _set_training(self, training: bool = True) -> None:
        # skorch calls this every batch; Module.train() walks every submodule, which costs ~10% of
        # a small network's step. Switch only when the network's mode actually changes.
        if self.module_.training != training:
            super()._set_training(training)

    def notify(self, method_name: str, **cb_kwargs: Any) -> None:
        # skorch calls every callback's hook (mostly inherited no-ops) several times per batch;
        # call only the ones that override it. The list is rebuilt when callbacks_ changes.
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
            listeners.insert(0, getattr(self, method_name))  # the net's own hook (history)
            cache[1][method_name] = listeners
        for listener in listeners:
            listener(self, **cb_kwargs)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("_listener_cache", None)
        return state

    def infer(self, x: ModalityBatch, **fit_params: Any) -> FusionOutput:
        return self.module_(x)

    def get_loss(
        self, y_pred: FusionOutput, y_true: torch.Tensor, X: Any = None, training: bool = False
    ) -> torch.Tensor:
        return self.module_.loss(y_pred, y_true, X, training)


class DivergenceGuard(Callback):
    """Stops training with a clear error when the loss stops being finite.

    A diverged run would otherwise return a model that predicts NaN; the error names the epoch
    and batch so the user can lower ``lr`` or add normalisation.
    """

    def on_batch_end(
        self,
        net: NeuralNet,
        batch: Any = None,
        training: bool = False,
        loss: Any = None,
        **kwargs: Any,
    ) -> None:
        loss = float(loss.detach()) if loss is not None else 0.0
        if not math.isfinite(loss):
            epoch = len(net.history)
            step = len(net.history[-1, "batches"])
            raise FloatingPointError(
                f"training diverged: the {'training' if training else 'validation'} loss became "
                f"{loss} at epoch {epoch}, batch {step}. Lower lr (now {net.lr}), standardize "
                "inputs, or check the plugins' auxiliary losses."
            )


class ComponentHooks(Callback):
    """Forwards skorch's training events to the calibration, fusion and weighting plugins.

    Only components that override a hook are called for it, so the default costs nothing per batch.
    """

    def __init__(self, data: TrainingData | None = None) -> None:
        self.data = data

    def initialize(self) -> ComponentHooks:
        self._listeners: dict[str, list[Component]] = {hook: [] for hook in _HOOKS}
        self._train_rows: torch.Tensor | None = None
        self._batch_index = 0
        return self

    def _context(self, net: NeuralNet, **extra: Any) -> TrainingContext:
        return TrainingContext(
            network=net.module_,
            net=net,
            data=self.data,
            epoch=len(net.history) - 1,
            train_rows=self._train_rows,
            batch_index=self._batch_index,
            **extra,
        )

    def on_train_begin(self, net: NeuralNet, X: Any = None, y: Any = None, **kwargs: Any) -> None:
        network: FusionNetwork = net.module_
        self._listeners = {
            hook: [
                component
                for component in network.components()
                if getattr(type(component), hook) is not getattr(Component, hook)
            ]
            for hook in _HOOKS
        }
        self._dispatch("on_train_begin", TrainingContext(network, net, self.data, len(net.history)))

    def _dispatch(self, hook: str, ctx: TrainingContext) -> None:
        for component in self._listeners[hook]:
            getattr(component, hook)(ctx)

    def on_epoch_begin(self, net: NeuralNet, dataset_train: Any = None, **kwargs: Any) -> None:
        self._batch_index = 0
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

    def on_batch_end(self, net: NeuralNet, training: bool = False, **kwargs: Any) -> None:
        if training:
            self._batch_index += 1

    def on_epoch_end(self, net: NeuralNet, **kwargs: Any) -> None:
        if self._listeners["on_epoch_end"]:
            self._dispatch("on_epoch_end", self._context(net))
