"""The extension contract of fusekit: one pluggy hook per plugin kind.

A plugin is a module with functions marked ``@fusekit.hookimpl`` named like the hooks below,
registered through the entry-point group ``fusekit``::

    [project.entry-points.fusekit]
    mymethod = "fusekit_mymethod"

Each hook returns ``{name: class}``. Classes subclass the base of their kind in
:mod:`fusekit.plugin` (datasets return loader callables); :mod:`fusekit.plugin.kinds` maps each
kind to its hook. The built-in methods in :mod:`fusekit.builtin` implement these same hooks.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

PROJECT_NAME = "fusekit"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def fusekit_backbones() -> dict[str, type]:
    """Per-modality encoders: ``{name: Backbone subclass}``."""


@hookspec
def fusekit_calibrations() -> dict[str, type]:
    """Pre-fusion calibrations: ``{name: Calibration subclass}``."""


@hookspec
def fusekit_fusions() -> dict[str, type]:
    """Fusion methods: ``{name: Fusion subclass}``."""


@hookspec
def fusekit_weightings() -> dict[str, type]:
    """Modality weighting / balancing schemes: ``{name: Weighting subclass}``."""


@hookspec
def fusekit_datasets() -> dict[str, Callable]:
    """Data sets: ``{name: loader}``; a loader returns ``(Modalities, y)``."""
