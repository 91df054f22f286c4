"""The contract suite composed: which checks apply to each plugin kind, and the runners.

The common checks (:data:`COMMON`, :mod:`fusekit.testing.checks`) and the harm checks
(:mod:`fusekit.testing.extra_checks`), then the kind's own (:data:`PER_KIND`), as scikit-learn's
``_yield_all_checks`` composes its lists. A module of its own so that the check modules import
nothing from the suite (no import circle).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from fusekit.plugin import COMPONENT_KINDS
from fusekit.testing.checks import (
    DEFAULTS,
    ContractError,
    _plugin_class,
    check_absent_finite,
    check_absent_invariance,
    check_beats_chance,
    check_constructible,
    check_deterministic,
    check_gradients_reach_encoders,
    check_hooks_and_loss_terms_reach_the_plugin,
    check_no_real_step_finite,
    check_output_shapes,
    check_recommended_params,
    check_runs_on_meta_device,
    check_sklearn_compatible,
    check_trains_in_chunks,
)
from fusekit.testing.extra_checks import EXTRA_CHECKS, applies

#: Checks that train a model and threshold a score (seeded from ``FUSEKIT_TEST_SEED``).
SEEDED_CHECKS = (check_beats_chance,)

COMMON = [
    check_constructible,
    check_recommended_params,
    check_output_shapes,
    check_absent_finite,
    check_absent_invariance,
    check_gradients_reach_encoders,
    check_hooks_and_loss_terms_reach_the_plugin,
    check_deterministic,
    check_sklearn_compatible,
    check_trains_in_chunks,
    check_beats_chance,
    check_runs_on_meta_device,
]


#: The checks of one kind only, run after the common ones (as scikit-learn's
#: ``_yield_all_checks`` adds the classifier or regressor checks to the common ones).
PER_KIND: dict[str, list[Callable[..., None]]] = {
    "backbone": [check_no_real_step_finite],
    "calibration": [],
    "fusion": [],
    "weighting": [],
}


def checks_for(kind: str) -> list[Callable[..., None]]:
    """The checks that apply to a plugin ``kind``, each ``check(kind, plugin, params)``: the
    common ones (:data:`COMMON`), then the kind's own (:data:`PER_KIND`)."""
    if kind not in DEFAULTS:
        raise ValueError(f"unknown plugin kind {kind!r}; kinds: {list(DEFAULTS)}")
    return [*COMMON, *EXTRA_CHECKS, *PER_KIND[kind]]


def _plugin_name(kind: str, plugin: Any) -> str:
    return plugin if isinstance(plugin, str) else _plugin_class(kind, plugin).__name__


def _exempt(
    exemptions: Mapping[Any, str] | None, kind: str, plugin: Any, check: Callable[..., None]
) -> str | None:
    """The reason ``check`` is exempted for ``plugin``: keys ``(plugin_name, check_name)`` as in
    :func:`parametrize_with_checks` (a bare ``check_name`` is accepted too)."""
    exemptions = exemptions or {}
    name = check.__name__
    return exemptions.get((_plugin_name(kind, plugin), name), exemptions.get(name))


def _run_all(
    kind: str,
    plugin: Any,
    params: Mapping[str, Any] | None = None,
    exemptions: Mapping[Any, str] | None = None,
) -> None:
    for check in checks_for(kind):
        if _exempt(exemptions, kind, plugin, check) is None and applies(check, kind, plugin):
            check(kind, plugin, params)


check_fusion = functools.partial(_run_all, "fusion")
check_backbone = functools.partial(_run_all, "backbone")
check_calibration = functools.partial(_run_all, "calibration")
check_weighting = functools.partial(_run_all, "weighting")
_KIND_CHECKS = {
    "fusion": check_fusion,
    "backbone": check_backbone,
    "calibration": check_calibration,
    "weighting": check_weighting,
}
assert set(_KIND_CHECKS) == set(COMPONENT_KINDS), "one check_<kind> per component kind"
for _kind, _function in _KIND_CHECKS.items():
    _function.__doc__ = (
        f"Run every contract check on a {_kind} plugin (name, class or instance); "
        "``params`` are nested parameters; ``exemptions`` ``{(plugin_name, check_name): "
        "reason}`` (as in ``parametrize_with_checks``) skips checks."
    )


def parametrize_with_checks(
    kind: str,
    plugins: Iterable[Any],
    params: Mapping[str, Any] | None = None,
    exemptions: Mapping[tuple[str, str], str] | None = None,
):
    """A ``pytest.mark.parametrize`` over ``(plugin, check)``; call ``check(plugin)`` in the test.

    ``exemptions`` maps ``(plugin_name, check_name)`` to a reason; those cases are marked as
    expected failures (strict), so an exemption that stops being needed is reported.
    """
    import pytest

    cases = []
    for plugin in plugins:
        for check in checks_for(kind):
            bound = functools.partial(_bound, check, kind, params)
            bound.__name__ = check.__name__  # type: ignore[attr-defined]
            name = _plugin_name(kind, plugin)
            reason = _exempt(exemptions, kind, plugin, check)
            marks = (
                [pytest.mark.xfail(strict=True, reason=reason, raises=ContractError)]
                if reason
                else []
            )
            if not applies(check, kind, plugin):
                marks.append(pytest.mark.skip(reason="the plugin does not support classification"))
            if check in SEEDED_CHECKS:  # rerun by ``-m seeded`` under FUSEKIT_TEST_SEED
                marks.append(pytest.mark.seeded)
            cases.append(pytest.param(plugin, bound, id=f"{name}-{check.__name__}", marks=marks))
    return pytest.mark.parametrize(("plugin", "check"), cases)


def _bound(
    check: Callable[..., None], kind: str, params: Mapping[str, Any] | None, plugin: Any
) -> None:
    check(kind, plugin, params)
