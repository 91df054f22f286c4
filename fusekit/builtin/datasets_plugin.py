"""The built-in data sets, registered by name through the ``fusekit_datasets`` hook."""

from __future__ import annotations

from collections.abc import Callable

from fusekit.plugin import hookimpl


@hookimpl
def fusekit_datasets() -> dict[str, Callable]:
    from fusekit.datasets import BUILTIN_LOADERS

    return dict(BUILTIN_LOADERS)
