"""The float32 rule of mixed precision: a block that runs in float32 whatever the estimator's
``precision``.

With ``precision="bf16"`` or ``"16-mixed"`` the network's forward pass and loss run under
``torch.autocast``: matrix products (linear layers, attention, convolutions) compute in the
low-precision type, and their outputs, and whatever is computed from them, come out in it. That
is right for layers and wrong for numerics that need float32's mantissa or range: exponentials
and logarithms of evidence (``exp``, ``softplus``, ``lgamma``, ``digamma``), log-sum-exp energies,
divisions by small sums, variances. A component computes those inside :func:`full_precision`, on
inputs cast with ``.float()``; outside autocast the block changes nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

#: Device types whose autocast state :func:`full_precision` switches off.
_AUTOCAST_DEVICES = ("cpu", "cuda", "xpu", "mps")


def at_least_float32(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` in float32 when it is in a lower floating type (bfloat16, float16), else as it
    is (float32, float64, integers): ``.float()`` that leaves double precision alone."""
    if tensor.is_floating_point() and tensor.dtype.itemsize < 4:
        return tensor.float()
    return tensor


@contextlib.contextmanager
def full_precision() -> Iterator[None]:
    """Switch autocast off for the block (on every device where it is on); cast the block's
    inputs with ``.float()``, as ``torch.autocast(..., enabled=False)`` requires::

        with full_precision():
            evidence = F.softplus(logits.float())  # (B, K) float32 under any precision
    """
    with contextlib.ExitStack() as stack:
        for device_type in _AUTOCAST_DEVICES:
            if torch.is_autocast_enabled(device_type):
                stack.enter_context(torch.autocast(device_type, enabled=False))
        yield
