"""Where an estimator's network runs: the device ``fit`` resolves, and the one ``load`` picks.

``device="auto"`` is CUDA when torch sees a GPU, else the CPU (:func:`fit_device`). A model file
records the device it was fitted on (``device_``); that is data, so it is parsed and checked like
any other field. Loading a model fitted on a GPU on a machine without one puts it on the CPU with a
:class:`DeviceUnavailableWarning` instead of failing inside torch. :func:`rng_devices` names the
CUDA generators a fit must fork so that the caller's random streams are left as they were.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

#: The ``device`` value that picks CUDA when available, else the CPU.
AUTO = "auto"


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


def recorded_device(device: Any) -> str:
    """The device a model file says it was fitted on (``device_``), checked to be a device
    string (``ValueError`` otherwise); it need not exist here."""
    return str(_parse(device, "the model file's device_"))


def auto_device() -> str:
    """``"cuda"`` when torch sees a CUDA device, else ``"cpu"``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def fit_device(device: Any) -> str:
    """The estimator's ``device`` parameter as the device ``fit`` trains on: ``"auto"`` resolved,
    anything else checked to be a torch device present here (``ValueError`` naming it)."""
    if isinstance(device, str) and device == AUTO:
        return auto_device()
    parsed = _parse(device, "device")
    if not is_available(parsed):
        raise ValueError(
            f"device={str(device)!r} is not available on this machine (torch sees "
            f"{torch.cuda.device_count()} CUDA devices); pass device='cpu', device='auto' (CUDA "
            "when present, else the CPU) or an available device."
        )
    return str(parsed)


def rng_devices(device: str) -> list[int]:
    """The CUDA devices whose generators a fit on ``device`` may change, for
    ``torch.random.fork_rng(devices=...)``: all of them when CUDA is in use (the fit seeds them,
    or the caller has drawn from them); none while CUDA is untouched (forking would start it)."""
    if not torch.cuda.is_available():
        return []
    if torch.device(device).type == "cuda" or torch.cuda.is_initialized():
        return list(range(torch.cuda.device_count()))
    return []


@contextlib.contextmanager
def forked_rng(device: str) -> Iterator[list[int]]:
    """torch's CPU generator and :func:`rng_devices` forked: put back as they were on exit."""
    forked = rng_devices(device)
    with torch.random.fork_rng(devices=forked):
        yield forked


def manual_seed(seed: int, device: str, forked: list[int]) -> None:
    """Seed torch's generators for a fit on ``device`` inside :func:`forked_rng` (``forked`` its
    CUDA devices).

    ``torch.manual_seed`` also seeds every CUDA generator, lazily when CUDA has not started yet:
    outside a fork that would fix the caller's CUDA stream at its first use. So a CPU fit without
    forked CUDA devices seeds only the CPU generator (it draws from nothing else)."""
    if forked or torch.device(device).type != "cpu":
        torch.manual_seed(seed)
    else:
        torch.default_generator.manual_seed(seed)
