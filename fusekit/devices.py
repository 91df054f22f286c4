"""Which torch device a loaded model goes to: the one asked for, else the fitted one if present.

A model file records the device it was fitted on; that is data, so it is parsed and checked like
any other field. Loading a model fitted on a GPU on a machine without one puts it on the CPU with a
:class:`DeviceUnavailableWarning` instead of failing inside torch.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import torch


class DeviceUnavailableWarning(UserWarning):
    """The device a model was fitted on is not available here; it was loaded onto the CPU."""


def _parse(device: Any, what: str) -> torch.device:
    if not isinstance(device, (str, torch.device)):
        raise TypeError(
            f"{what} must be a device string such as 'cpu' or 'cuda:0', got {device!r}."
        )
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError) as error:
        raise ValueError(
            f"{what}={device!r} is not a torch device (e.g. 'cpu', 'cuda', 'cuda:1', 'mps'): "
            f"{error}"
        ) from None
    if parsed.type == "meta":
        raise ValueError(f"{what}={device!r}: a model cannot run on the 'meta' device.")
    return parsed


def _first_caller_outside_fusekit() -> int:
    """The ``stacklevel`` that makes a warning point at the user's line that called fusekit."""
    package = Path(__file__).parent
    frame, level = sys._getframe(1), 1
    while frame is not None and Path(frame.f_code.co_filename).is_relative_to(package):
        frame, level = frame.f_back, level + 1
    return level


def is_available(device: torch.device) -> bool:
    """Whether ``device`` (type and index) exists on this machine."""
    if device.type == "cpu":
        return True
    if device.type == "mps":
        return bool(torch.backends.mps.is_available()) and (device.index in (None, 0))
    backend = getattr(torch, device.type, None)
    if backend is None or not hasattr(backend, "is_available") or not backend.is_available():
        return False
    return device.index is None or device.index < backend.device_count()


def requested_device(device: Any) -> str | None:
    """The ``device`` argument of ``load`` checked: ``None``, or a device present here."""
    if device is None:
        return None
    parsed = _parse(device, "device")
    if not is_available(parsed):
        raise ValueError(
            f"device={str(device)!r} is not available on this machine (torch sees "
            f"{torch.cuda.device_count()} CUDA devices); pass device='cpu' or an available device."
        )
    return str(parsed)


def load_device(fitted: Any, requested: str | None) -> str:
    """``requested`` if given; else the ``fitted`` device when present, otherwise ``"cpu"`` with
    a :class:`DeviceUnavailableWarning`. ``ValueError`` when ``fitted`` is not a device."""
    if requested is not None:
        return requested
    parsed = _parse(fitted, "the model file's device")
    if is_available(parsed):
        return str(fitted)
    warnings.warn(
        f"the model was fitted on device={fitted!r}, which is not available here; it was loaded "
        "onto the CPU. Pass device=... to load() to choose another device.",
        DeviceUnavailableWarning,
        stacklevel=_first_caller_outside_fusekit(),
    )
    return "cpu"
