"""The bench's outer cross-validation: a registered splitter name plus parameters (data, never an
importable path), or any scikit-learn splitter object from Python.

Names (``BenchConfig(cv="group_kfold")``, ``--cv group_kfold``) map to scikit-learn classes in
:data:`SPLITTERS`; ``cv_params`` are their parameters. The bench sets ``n_splits`` to ``folds``
unless ``cv_params`` gives it, and, for every splitter that takes them, ``shuffle=True`` and
``random_state = seed + repeat`` (each repeat a fresh shuffle; a splitter without randomness
cannot be repeated). With ``groups`` and no ``cv``: ``stratified_group_kfold`` for classification,
``group_kfold`` for regression (leave-subject-out style: no group is on both sides of a split);
without either: ``stratified_kfold`` / ``kfold``, as before.

A splitter object passed from Python (``cv=GroupKFold(4)``) is recorded in ``manifest.json`` by
its registered name and ``get_params()`` when its class is one of :data:`SPLITTERS`; any other
class is recorded for the reader only (``{"class": "module:Name"}``) and a rerun refuses it, as
it refuses a component class.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.model_selection import (
    GroupKFold,
    KFold,
    LeaveOneGroupOut,
    RepeatedStratifiedKFold,
    ShuffleSplit,
    StratifiedGroupKFold,
    StratifiedKFold,
    StratifiedShuffleSplit,
)

SPLITTERS: dict[str, type] = {
    "kfold": KFold,
    "stratified_kfold": StratifiedKFold,
    "group_kfold": GroupKFold,
    "stratified_group_kfold": StratifiedGroupKFold,
    "leave_one_group_out": LeaveOneGroupOut,
    "shuffle_split": ShuffleSplit,
    "stratified_shuffle_split": StratifiedShuffleSplit,
}
GROUPED = ("group_kfold", "stratified_group_kfold", "leave_one_group_out")
_REFUSED = (RepeatedStratifiedKFold,)  # repeats are the bench's own (``repeats=``)


def splitter_params(cv: Any) -> dict[str, Any]:
    """A splitter's constructor parameters (scikit-learn's splitters store each one under its
    own name, as their ``repr`` reads them; they have no ``get_params``)."""
    names = inspect.signature(type(cv)).parameters
    return {name: getattr(cv, name) for name in names if hasattr(cv, name)}


def _copy(cv: Any) -> Any:
    """A fresh splitter of the same class and parameters (the caller's is never changed)."""
    return type(cv)(**splitter_params(cv))


def splitter_name(cv: Any) -> str | None:
    """The registered name of a splitter object's class (None: not registered)."""
    return next((name for name, cls in SPLITTERS.items() if type(cv) is cls), None)


def default_name(task: str, grouped: bool) -> str:
    if grouped:
        return "stratified_group_kfold" if task == "classification" else "group_kfold"
    return "stratified_kfold" if task == "classification" else "kfold"


def check_cv(cv: Any, cv_params: Mapping[str, Any]) -> None:
    """A clear error for an unknown name, parameters the class does not take, or an object that
    is not a splitter."""
    if cv is None:
        if cv_params:
            raise ValueError(f"cv_params {dict(cv_params)} need cv= (a splitter name).")
        return
    if isinstance(cv, str):
        if cv not in SPLITTERS:
            raise ValueError(f"cv must be one of {sorted(SPLITTERS)} or a splitter; got {cv!r}.")
        accepted = set(inspect.signature(SPLITTERS[cv]).parameters)
        unknown = sorted(set(cv_params) - accepted)
        if unknown:
            raise ValueError(
                f"cv_params {unknown} are not parameters of {cv} "
                f"({SPLITTERS[cv].__name__}); it takes {sorted(accepted)}."
            )
        return
    if not (hasattr(cv, "split") and hasattr(cv, "get_n_splits")) or isinstance(cv, _REFUSED):
        raise TypeError(
            "cv must be a splitter name or a scikit-learn splitter object with split() and "
            f"get_n_splits() (not a repeated one: use repeats=), got {type(cv).__name__}."
        )
    if cv_params:
        raise ValueError("cv_params go with a splitter name; set them on the cv object instead.")


def describe(cv: Any, cv_params: Mapping[str, Any]) -> dict[str, Any] | None:
    """What ``manifest.json`` and the unit ids record: ``{"name": ..., "params": {...}}``, a
    non-registered class as ``{"class": "module:Name", "params": "repr"}``, None by default."""
    if cv is None:
        return None
    if isinstance(cv, str):
        return {"name": cv, "params": dict(cv_params)}
    name = splitter_name(cv)
    params = splitter_params(cv)
    if name is not None:
        try:
            json.dumps(params)
        except TypeError:
            name = None
        else:
            return {"name": name, "params": params}
    cls = type(cv)
    return {"class": f"{cls.__module__}:{cls.__qualname__}", "params": repr(params)}


def _splitter(
    task: str,
    folds: int,
    seed: int,
    cv: Any,
    cv_params: Mapping[str, Any],
    grouped: bool,
    repeats: int,
) -> Any:
    if cv is not None and not isinstance(cv, str):
        splitter = _copy(cv)
    else:
        name = cv or default_name(task, grouped)
        cls = SPLITTERS[name]
        accepted = inspect.signature(cls).parameters
        params = {"n_splits": folds} if "n_splits" in accepted else {}
        if "shuffle" in accepted:
            params["shuffle"] = True
        params |= dict(cv_params)
        splitter = cls(**params)
    names = splitter_params(splitter)
    if "random_state" in names and names.get("shuffle", True):
        splitter.random_state = seed
    elif repeats > 1:
        raise ValueError(
            f"repeats={repeats} with {type(splitter).__name__}, which has no randomness: every "
            "repeat would be the same split. Use repeats=1, or a shuffling splitter."
        )
    return splitter


def splits(
    y: np.ndarray,
    task: str,
    folds: int,
    repeats: int,
    seed: int,
    *,
    groups: np.ndarray | None = None,
    cv: Any = None,
    cv_params: Mapping[str, Any] | None = None,
) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
    """``[(repeat, fold, train, test)]`` of the outer cross-validation (see the module doc)."""
    cv_params = dict(cv_params or {})
    name = cv if isinstance(cv, str) else splitter_name(cv) if cv is not None else None
    if name in GROUPED and groups is None:
        raise ValueError(f"cv={name!r} splits by groups: pass groups= (--groups COLUMN).")
    out = []
    for repeat in range(repeats):
        splitter = _splitter(task, folds, seed + repeat, cv, cv_params, groups is not None, repeats)
        target = y if task == "classification" else np.zeros(len(y))
        pieces = splitter.split(np.zeros(len(y)), target, groups)
        for fold, (train, test) in enumerate(pieces):
            out.append((repeat, fold, np.asarray(train), np.asarray(test)))
    if not out:
        raise ValueError(f"the splitter {cv!r} gave no split.")
    return out
