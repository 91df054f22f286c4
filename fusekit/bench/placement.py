"""Which torch device each bench unit trains on: ``devices=("cuda:0", "cuda:1")`` (``--devices``).

One unit per listed device at a time, with one worker per entry: the ``processes`` backend forks
``len(devices)`` workers and hands each one its device as it starts (:func:`worker_initializer`);
the ``dask`` backend gives every worker of its ``LocalCluster`` one ``device`` resource, submits
each unit needing one, and a worker trains on the entry of its number (on a remote cluster, start
each worker with ``--resources device=1`` and ``CUDA_VISIBLE_DEVICES`` set to its GPU, and list
``cuda``). ``serial`` runs the units one after another on the first entry. An entry may repeat
(``cpu,cpu``: two CPU workers; ``cuda:0,cuda:0``: two units share that GPU). The device a unit
trained on is its ``device`` column in ``results.csv``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fusekit import devices as torch_devices
from fusekit.bench.stopping import worker_signals

#: The Dask worker resource each unit needs one of when devices are listed.
RESOURCE = "device"
_ASSIGNED: list[str] = []  # this worker process's device, once it has one


def parse_devices(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"cuda:0,cuda:1"`` or a sequence as a tuple of devices present here (``"auto"``
    resolved); ``ValueError`` naming an entry that is not, or an empty list."""
    if value is None:
        return ()
    entries = [e.strip() for e in value.split(",")] if isinstance(value, str) else list(value)
    if not entries or any(not isinstance(e, str) or not e for e in entries):
        raise ValueError(
            f"devices must be a comma-separated list such as 'cuda:0,cuda:1', got {value!r}."
        )
    return tuple(torch_devices.fit_device(entry) for entry in entries)


def worker_initializer(queue: Any) -> None:
    """A forked worker's start: the driver's signal rules, then its device from ``queue``."""
    worker_signals()
    if queue is not None:
        _ASSIGNED[:] = [queue.get()]


def assigned_device() -> str | None:
    """The device this worker process was given, or ``None``."""
    return _ASSIGNED[0] if _ASSIGNED else None


def dask_worker_device(listed: Sequence[str]) -> str:
    """The device of the Dask worker this runs on: the entry of its number in ``listed`` (our
    ``LocalCluster`` names its workers 0, 1, ...), the first entry for a worker named otherwise."""
    from distributed import get_worker

    name = get_worker().name
    return listed[name % len(listed)] if isinstance(name, int) else listed[0]
