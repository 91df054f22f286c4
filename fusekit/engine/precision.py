"""Mixed precision for the training and inference steps (the estimators' ``precision``).

Lightning's vocabulary:

* ``"32"``: float32 throughout (the default); nothing here runs.
* ``"bf16"`` (and its synonym ``"bf16-mixed"``, Lightning's newer name): the forward pass and the
  loss under ``torch.autocast(dtype=torch.bfloat16)``; weights, gradients and the optimiser stay
  float32. bfloat16 has float32's exponent range, so no loss scaling is needed. Runs on CPUs and
  on GPUs with bfloat16 support.
* ``"16-mixed"``: the same with float16 and a ``torch.amp.GradScaler``: the loss is multiplied by
  the scale before ``backward``, the gradients are unscaled *before* the components'
  ``on_grad_computed`` hooks (gradient-modulating weightings see true gradients), and a step whose
  gradients hold inf or NaN is skipped and the scale lowered, as ``GradScaler.step`` does.

The task loss is computed in float32 whatever the precision (the criterion casts the logits
first, :class:`fusekit.plugin.criterion.TaskCriterion`); components keep their own float32
numerics inside :func:`fusekit.plugin.full_precision` blocks (the plugin contract).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

import torch

#: The accepted values of ``precision``, and the autocast type of each (``None``: no autocast).
PRECISIONS: dict[str, torch.dtype | None] = {
    "32": None,
    "bf16": torch.bfloat16,
    "bf16-mixed": torch.bfloat16,
    "16-mixed": torch.float16,
}


def autocast(precision: str, device: str | torch.device) -> contextlib.AbstractContextManager:
    """The autocast block of ``precision`` on ``device`` (a no-op context for ``"32"``)."""
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)


class MixedPrecision:
    """The autocast block, the scaled ``backward`` and the optimiser step of one training run.

    The ``GradScaler``'s state (its scale and growth tracker) belongs to the run: a later
    ``partial_fit`` call carries it on (:meth:`state_dict`, :meth:`load_state_dict`).
    """

    def __init__(self, precision: str, device: str | torch.device) -> None:
        self.precision = precision
        self.device = torch.device(device)
        scaled = PRECISIONS[precision] == torch.float16
        self.scaler = torch.amp.GradScaler(self.device.type) if scaled else None

    def autocast(self) -> contextlib.AbstractContextManager:
        return autocast(self.precision, self.device)

    def backward(self, loss: torch.Tensor) -> None:
        """``backward`` of ``loss``, times the scale under ``"16-mixed"``."""
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()

    def unscale(self, optimizers: Iterable[torch.optim.Optimizer]) -> None:
        """Divide the gradients by the scale (and note inf/NaN) before anything reads them."""
        if self.scaler is not None:
            for optimizer in optimizers:
                self.scaler.unscale_(optimizer)

    def step(self, optimizers: Iterable[torch.optim.Optimizer]) -> None:
        """Step every optimiser; under ``"16-mixed"`` skip a step whose gradients were not
        finite and update the scale."""
        if self.scaler is None:
            for optimizer in optimizers:
                optimizer.step()
            return
        for optimizer in optimizers:
            self.scaler.step(optimizer)
        self.scaler.update()

    def state_dict(self) -> dict[str, Any]:
        return {} if self.scaler is None else self.scaler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)


def carry_over(previous: Any, net: Any) -> None:
    """Continue ``previous`` net's loss scale in ``net`` (a later ``partial_fit`` call or a warm
    start) when both train at the same precision."""
    old, new = previous.mixed_precision_, net.mixed_precision_
    if old.precision == new.precision:
        new.load_state_dict(old.state_dict())
