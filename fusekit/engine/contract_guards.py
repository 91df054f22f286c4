"""Promises of the plugin contract that the engine enforces at run time, naming the plugin.

* ``supported_tasks``: a component declares the tasks it works for; a network for another task
  is refused before anything is built (:func:`check_supported_tasks`).
* ``loss_terms`` returns a mapping ``{name: scalar tensor}``; anything else (``None`` from a
  forgotten ``return``) is a ``TypeError`` naming the plugin, not an engine crash naming nobody
  (:func:`loss_terms_of`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from torch import Tensor

from fusekit.engine.registry import get_registry
from fusekit.plugin import TASKS, Component, FusionOutput, LossContext


def plugin_label(kind: str, component: Component) -> str:
    """``kind 'name' (distribution version)`` of a registered plugin, else its class name."""
    registry = get_registry()
    name = registry.name_of(kind, type(component))
    if name is None:
        return f"{kind} {type(component).__name__} (not registered)"
    entry = registry.entry(kind, name)
    return f"{kind} {name!r} ({entry.distribution} {entry.version})"


def check_supported_tasks(components: Iterable[tuple[str, Component]], task: str) -> None:
    """``ValueError`` naming the first component whose ``supported_tasks`` lack ``task``."""
    for kind, component in components:
        supported = tuple(getattr(component, "supported_tasks", TASKS))
        if task not in supported:
            name = get_registry().name_of(kind, type(component)) or type(component).__name__
            raise ValueError(
                f"{name}: needs a {' or '.join(supported)} task, got {task}. "
                f"{plugin_label(kind, component)} declares supported_tasks = {supported!r}; "
                f"choose another {kind}, or the estimator for {supported[0]}."
            )


def loss_terms_of(
    kind: str, component: Component, output: FusionOutput, ctx: LossContext
) -> Mapping[str, Tensor]:
    """``component.loss_terms(output, ctx)``, checked to be a mapping of tensors."""
    terms = component.loss_terms(output, ctx)
    if not isinstance(terms, Mapping) or not all(isinstance(v, Tensor) for v in terms.values()):
        got = type(terms).__name__ if not isinstance(terms, Mapping) else "non-tensor values"
        raise TypeError(
            f"{plugin_label(kind, component)}: loss_terms returned {got}; expected a dict "
            "{name: scalar tensor}, an empty dict {} when there is no term to add."
        )
    return terms
