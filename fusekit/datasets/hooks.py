"""The built-in data sets as a plugin of fusekit-learn: the ``fusekit_datasets`` hook.

The data-set loaders are an application, above the engine, so this hook lives here rather than
in :mod:`fusekit.builtin` (the methods, which import the plugin layer only); the registry loads
it by its module name, as it loads an entry point (:data:`fusekit.engine.registry.BUILTIN_PLUGINS`).
"""

from __future__ import annotations

from collections.abc import Callable

from fusekit.datasets import BUILTIN_LOADERS
from fusekit.plugin import hookimpl


@hookimpl
def fusekit_datasets() -> dict[str, Callable]:
    return dict(BUILTIN_LOADERS)
