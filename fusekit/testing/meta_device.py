"""Run a component's per-batch training path on torch's ``meta`` device, on any CPU.

A tensor on ``meta`` has a shape and a dtype but no data, so the pass runs without computing
anything, and two mistakes that only show on a GPU fail at once:

* a tensor created on the wrong device (``torch.zeros(n)`` without ``device=``, a plain tensor
  attribute that ``module.to()`` does not move): torch refuses to mix ``cpu`` and ``meta``, as it
  refuses to mix ``cpu`` and ``cuda``;
* a host sync (``.item()``, ``float(t)``, ``if t.any():``, ``.tolist()``, ``.cpu()``, ``.numpy()``):
  every one of them needs the data, which ``meta`` does not have; on a GPU each is a wait for the
  device, every batch.

Ops meta cannot run (data-dependent output shapes such as boolean-mask indexing and
``nonzero``, which on a GPU are host syncs too) end the probe with :class:`MetaUnsupported`
instead: the path behind them is not checked. Nothing here imports the engine: the contract
check that builds the network is ``fusekit.testing.checks.check_runs_on_meta_device``.
"""

from __future__ import annotations

import re
import unittest
from collections.abc import Callable
from typing import Any

from torch import Tensor

#: torch's messages when an op needs the data of a meta tensor: a host sync on a real device.
_SYNC = re.compile(
    r"cannot be called on meta tensors|Cannot copy out of meta tensor|"
    r"can't convert meta device type tensor"
)
#: torch's messages when tensors of two devices meet in one op.
_DEVICES = re.compile(
    r"not on the expected device|Expected all tensors to be on the same device|"
    r"found at least two devices|same device"
)


class MetaUnsupported(unittest.SkipTest):
    """torch's meta device cannot run an op on the path (a skip under pytest and unittest)."""


def classify(error: BaseException) -> str | None:
    """``"host sync"``, ``"wrong device"``, or ``None`` for an error of another kind."""
    text = str(error)
    if _SYNC.search(text):
        return "host sync"
    if _DEVICES.search(text):
        return "wrong device"
    return None


def unsupported(error: BaseException) -> bool:
    """Whether ``error`` says that meta has no kernel for an op (not that the plugin is wrong)."""
    return isinstance(error, NotImplementedError) and classify(error) is None


def origin(error: BaseException, roots: tuple[str, ...] = ("/torch/",)) -> str:
    """``file:line in function`` of the innermost frame of ``error`` outside ``roots`` (the
    plugin's line that called torch), for the failure message."""
    frame, where = error.__traceback__, ""
    while frame is not None:
        code = frame.tb_frame.f_code
        if not any(root in code.co_filename for root in roots):
            where = f"{code.co_filename}:{frame.tb_lineno} in {code.co_name}"
        frame = frame.tb_next
    return where


def run_step(step: Callable[[], Any], stage: str) -> tuple[str, str, BaseException] | None:
    """Run ``step``; ``(kind, stage, error)`` when it fails by a host sync or a wrong device;
    :class:`MetaUnsupported` when meta cannot run one of its ops; other errors propagate."""
    try:
        step()
    except (RuntimeError, NotImplementedError, TypeError, ValueError) as error:
        kind = classify(error)
        if kind is not None:
            return kind, stage, error
        if unsupported(error):
            raise MetaUnsupported(
                f"torch's meta device cannot run an op in {stage} ({str(error).splitlines()[0]}"
                f" at {origin(error, ('/torch/', '/fusekit/testing/'))}); the rest of the path was "
                "not checked (a data-dependent shape is a host sync on a GPU too)"
            ) from None
        raise
    return None


def on_meta(value: Any) -> bool:
    return isinstance(value, Tensor) and value.device.type == "meta"
