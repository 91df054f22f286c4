"""Promises of the plugin contract that the engine enforces at run time, naming the plugin.

* ``supported_tasks``: a component declares the tasks it works for; a network for another task
  is refused before anything is built (:func:`check_supported_tasks`).
* ``loss_terms`` returns a mapping ``{name: scalar tensor}``; anything else (``None`` from a
  forgotten ``return``) is a ``TypeError`` naming the plugin, not an engine crash naming nobody
  (:func:`loss_terms_of`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from torch import Tensor

from fusekit.plugin import TASKS, Component, FusionOutput, LossContext

if TYPE_CHECKING:
    from fusekit.engine.resolve import Origin


def plugin_label(component: Component, origin: Origin | None) -> str:
    """``kind 'name' (distribution version)``: the registry entry the component was resolved
    by (its recorded ``origin``, so a class registered under two names is named as the user
    chose it), else its class name."""
    kind, cls = component.kind, type(component).__name__
    if origin is None:
        return f"{kind} {cls} (origin not recorded)"
    if origin.name is None:
        return f"{kind} {cls} (not registered)"
    return f"{kind} {origin.name!r} ({origin.distribution} {origin.version})"


def check_supported_tasks(components: Iterable[tuple[Component, Origin | None]], task: str) -> None:
    """``ValueError`` naming the first component whose ``supported_tasks`` lack ``task``; each
    component comes with its recorded origin (``None`` if none was recorded)."""
    for component, origin in components:
        supported = tuple(getattr(component, "supported_tasks", TASKS))
        if task not in supported:
            name = (
                type(component).__name__ if origin is None or origin.name is None else origin.name
            )
            raise ValueError(
                f"{name}: needs a {' or '.join(supported)} task, got {task}. "
                f"{plugin_label(component, origin)} declares supported_tasks = {supported!r}; "
                f"choose another {component.kind}, or the estimator for {supported[0]}."
            )


def loss_terms_of(
    component: Component, origin: Origin | None, output: FusionOutput, ctx: LossContext
) -> Mapping[str, Tensor]:
    """``component.loss_terms(output, ctx)``, checked to be a mapping of tensors; a bad return
    names the component by its recorded ``origin``."""
    terms = component.loss_terms(output, ctx)
    if not isinstance(terms, Mapping) or not all(isinstance(v, Tensor) for v in terms.values()):
        got = type(terms).__name__ if not isinstance(terms, Mapping) else "non-tensor values"
        raise TypeError(
            f"{plugin_label(component, origin)}: loss_terms returned {got}; expected a dict "
            "{name: scalar tensor}, an empty dict {} when there is no term to add."
        )
    return terms
