"""Sequences of any length: ragged rows, channels-first layouts, other lengths at predict.

* **Ragged rows.** A sequence modality may be a list (or tuple, 1-D object array, pandas Series)
  of ``(T_i, d)`` arrays. Its rows are padded at the end with all-NaN steps to the longest
  ``T``, which :func:`fusekit.data.presence_mask` turns into the ``(n, T)`` step mask (True =
  real step), exactly as for a hand-padded NaN array. A row that is ``None`` or has no step is
  absent (mask 0), as an all-NaN row. Rows of one equal shape are a plain ``(n, T, d)`` array.
* **Layout.** The estimator parameter ``layout`` says how a sequence's two axes are ordered:
  ``"channels_last"`` (``(n, T, d)``, rows ``(T_i, d)``: fusekit's own) or ``"channels_first"``
  (``(n, d, T)``, rows ``(d, T_i)``: aeon's and sktime's numpy layout), for every sequence
  modality (a string) or per modality (``{"s": "channels_first"}``). Channels-first input is
  transposed here, once. Without a layout for it, a dense 3-D modality that *looks*
  channels-first gets a :class:`ChannelsFirstWarning` at fit (rule: :func:`looks_channels_first`).
* **Other lengths at predict** (and in a continued fit): a sequence shorter than the fitted
  ``T`` is padded with NaN steps to it; a longer one is cut to ``T`` when its extra steps are
  padding in every row, and otherwise kept as it is when the modality's backbone declares
  ``accepts_any_length`` (conv1d, gru, transformer, mlp, identity: each works step by step or
  with masks, and the transformer computes its sinusoidal positions for any length), else
  refused with a ``ValueError`` naming the modality, the fitted and the given length. Nothing
  is cut silently: a backbone that needs a fixed length gets the fitted one or an error.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

CHANNELS_LAST = "channels_last"
CHANNELS_FIRST = "channels_first"
LAYOUTS = (CHANNELS_LAST, CHANNELS_FIRST)
#: Rows :func:`looks_channels_first` reads (the rule needs no more to be stable).
_SNIFF_ROWS = 256
#: The shortest last axis :func:`looks_channels_first` judges.
_MIN_STEPS = 8
#: Frames from the ``warnings.warn`` below :func:`steps_last` to the caller of ``fit``.
_FIT_STACKLEVEL = 8


class ChannelsFirstWarning(UserWarning):
    """A 3-D modality looks channels-first ``(n, channels, T)``, and ``layout=`` does not say."""


def as_rows(value: Any) -> Any:
    """``value`` in a form :class:`~fusekit.data.Modalities` can count and index by rows.

    Lists and tuples become arrays: ``np.asarray`` when the rows form one regular array, else a
    1-D object array holding one row each (ragged sequences, ``None`` rows). A pandas Series of
    objects becomes its object array (a Series indexes by label, not by position). Anything else
    is returned as it is.
    """
    if isinstance(value, pd.Series) and value.dtype == object:
        return value.to_numpy()
    if not isinstance(value, (list, tuple)):
        return value
    if any(row is None for row in value):
        return _object_rows(value)
    try:
        return np.asarray(value)
    except ValueError:  # "inhomogeneous shape": rows of different shapes
        return _object_rows(value)


def _object_rows(rows: Any) -> np.ndarray:
    array = np.empty(len(rows), dtype=object)
    for position, row in enumerate(rows):  # item by item: numpy would broadcast equal shapes
        array[position] = row
    return array


def _is_ragged(value: Any) -> bool:
    """Whether ``value`` holds one array-like (or ``None``) per row rather than numbers."""
    if isinstance(value, np.ndarray):
        if value.dtype != object or value.ndim != 1 or len(value) == 0:
            return False
        # rows of text or category labels are a raw modality's (fusekit.raw_inputs), not steps
        return not any(isinstance(row, str | bytes) for row in value)
    return isinstance(value, (list, tuple, pd.Series)) and _is_ragged(as_rows(value))


def layout_of(layout: Any, name: str) -> str | None:
    """The layout ``layout=`` gives modality ``name`` (``None``: not said)."""
    if isinstance(layout, Mapping):
        return layout.get(name)
    return layout


def check_layout(layout: Any, names: list[str]) -> None:
    """``ValueError`` for a ``layout=`` dict naming a modality that is not in ``X``, or any value
    other than ``"channels_last"`` / ``"channels_first"``."""
    entries = layout.items() if isinstance(layout, Mapping) else [(None, layout)]
    for name, value in entries:
        if value is not None and value not in LAYOUTS:
            where = "layout" if name is None else f"layout[{name!r}]"
            raise ValueError(f"{where}={value!r}; expected one of {list(LAYOUTS)} or None.")
    if isinstance(layout, Mapping):
        unknown = [name for name in layout if name not in names]
        if unknown:
            raise ValueError(
                f"layout= names modalities {unknown} that are not in X (its modalities: "
                f"{list(names)}). Key layout= by modality name."
            )


def steps_last(values: Mapping[str, Any], layout: Any, fitting: bool) -> dict[str, Any]:
    """Each modality of ``values`` with ragged rows padded and channels-first axes swapped.

    Dense non-sequence values pass unchanged (their checks are :mod:`fusekit.data`'s). With
    ``fitting``, ``layout=`` is checked against the names and a dense 3-D modality without a
    layout that looks channels-first warns (:class:`ChannelsFirstWarning`).
    """
    if fitting:
        check_layout(layout, list(values))
    converted: dict[str, Any] = {}
    for name, value in values.items():
        order = layout_of(layout, name)
        if _is_ragged(value):
            converted[name] = pad_rows(name, as_rows(value), order)
            continue
        ndim = np.ndim(value) if hasattr(value, "shape") else None
        if order == CHANNELS_FIRST and ndim is not None:
            if ndim != 3:
                raise ValueError(
                    f"modality {name!r} has shape {tuple(np.shape(value))}, but layout "
                    f"{CHANNELS_FIRST!r} applies to sequences (n, channels, T). Give the layout "
                    "for the sequence modalities only: layout={name: 'channels_first'}."
                )
            value = np.ascontiguousarray(np.swapaxes(np.asarray(value), 1, 2))
        elif fitting and order is None and ndim == 3:
            _warn_if_channels_first(name, np.asarray(value))
        converted[name] = value
    return converted


def pad_rows(name: str, rows: np.ndarray, layout: str | None) -> np.ndarray:
    """``(n, T_max, d)`` float array of ragged ``rows``, padded at the end with all-NaN steps.

    Rows are ``(T_i, d)`` (``(d, T_i)`` with ``layout="channels_first"``); a ``None`` row or one
    with no step is all NaN (absent). ``ValueError`` naming the row for anything else.
    """
    first = layout == CHANNELS_FIRST
    axes = "(channels, T_i)" if first else "(T_i, d)"
    steps_rows: list[np.ndarray | None] = []
    for position, row in enumerate(rows):
        if row is None:
            steps_rows.append(None)
            continue
        if hasattr(row, "detach"):  # torch tensor
            row = row.detach().cpu().numpy()
        try:
            array = np.asarray(row)
            if array.dtype.kind not in "fiub":
                raise TypeError(f"dtype {array.dtype}")
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"modality {name!r}, row {position}: each row of a sequence modality must be a "
                f"numeric {axes} array, got {type(row).__name__} ({error})."
            ) from None
        if array.ndim != 2:
            raise ValueError(
                f"modality {name!r}, row {position} has shape {array.shape}; each row of a "
                f"sequence modality must be a {axes} array. Reshape a univariate series to "
                + ("(1, T_i)." if first else "(T_i, 1).")
            )
        steps_rows.append(array.T if first else array)
    present = [a for a in steps_rows if a is not None and a.shape[0] > 0]
    widths = {a.shape[1] for a in present}
    if len(widths) > 1:
        _refuse_widths(name, steps_rows, first)
    if not present:
        raise ValueError(
            f"modality {name!r}: every row is None or has no step; a sequence modality needs "
            "at least one row with a step."
        )
    length, width = max(a.shape[0] for a in present), widths.pop()
    dtype = np.float32 if all(a.dtype == np.float32 for a in present) else np.float64
    padded = np.full((len(steps_rows), length, width), np.nan, dtype=dtype)
    for position, array in enumerate(steps_rows):
        if array is not None and array.shape[0] > 0:
            padded[position, : array.shape[0]] = array
    return padded


def _refuse_widths(name: str, rows: list[np.ndarray | None], first: bool) -> None:
    """The ``ValueError`` for ragged rows whose feature axis differs from row to row; when the
    other axis is the same in every row, the rows are most likely in the other layout."""
    shaped = [(i, a) for i, a in enumerate(rows) if a is not None and a.shape[0] > 0]
    (i, a), (j, b) = (
        shaped[0],
        next((k, c) for k, c in shaped if c.shape[1] != shaped[0][1].shape[1]),
    )
    axes = "(channels, T_i)" if first else "(T_i, d)"
    message = (
        f"modality {name!r}: rows are read as {axes}, but row {i} has {a.shape[1]} features per "
        f"step and row {j} has {b.shape[1]}; every row needs the same number of features."
    )
    if len({a.shape[0] for _, a in shaped}) == 1:
        other = CHANNELS_LAST if first else CHANNELS_FIRST
        message += (
            f" Every row has the same {a.shape[0]} along the axis read as time, so the rows look "
            f"{'channels-last (T_i, d)' if first else 'channels-first (channels, T_i)'}: pass "
            f"layout={{{name!r}: {other!r}}}."
        )
    raise ValueError(message)


def looks_channels_first(array: np.ndarray) -> bool:
    """Whether a 3-D ``(n, A, B)`` array looks like ``(n, channels, T)`` read as ``(n, T, d)``.

    The rule: ``A < B`` (fewer steps than features, as when channels are read as steps),
    ``B >= 8`` (a shorter last axis is too little to judge), *and* the
    values are at least twice as smooth along the last axis as along the middle one: the mean
    absolute difference between neighbours along the last axis is at most half of that along
    the middle axis (with a single middle step: of that between neighbouring rows), over the
    first 256 rows, NaN ignored. A time axis is smooth; a feature axis (sensor channels,
    embedding dimensions) is not, so token-embedding sequences (T < d, features unordered) do
    not warn, while sensor recordings in aeon's / sktime's ``(n, channels, T)`` do.
    """
    rows, middle, last = array.shape
    if middle >= last or last < _MIN_STEPS or (middle < 2 and rows < 2):
        return False
    sample = np.asarray(array[:_SNIFF_ROWS], dtype=np.float64)
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: nanmean is NaN, no warning
        along_last = np.nanmean(np.abs(np.diff(sample, axis=2)))
        baseline_axis = 1 if middle >= 2 else 0
        along_middle = np.nanmean(np.abs(np.diff(sample, axis=baseline_axis)))
    return bool(along_last <= 0.5 * along_middle)


def _warn_if_channels_first(name: str, array: np.ndarray) -> None:
    if array.dtype.kind not in "fiu" or not looks_channels_first(array):
        return
    _, middle, last = array.shape
    warnings.warn(
        f"modality {name!r} has shape {array.shape}, read as (n, T={middle} steps, d={last} "
        f"features), but it looks channels-first (n, channels={middle}, T={last}) as aeon and "
        f"sktime write it: it has fewer steps than features and varies smoothly along the last "
        f"axis. Pass layout={{{name!r}: 'channels_first'}} to read it as (n, channels, T), or "
        f"layout={{{name!r}: 'channels_last'}} to keep (n, T, d) and silence this warning.",
        ChannelsFirstWarning,
        stacklevel=_FIT_STACKLEVEL,
    )


def any_length_modalities(estimator: Any) -> dict[str, tuple[bool, str]]:
    """``{modality: (accepts any length, backbone class name)}`` of a fitted estimator's
    backbones (read from the network, ``Backbone.accepts_any_length``)."""
    network = getattr(getattr(estimator, "net_", None), "module_", None)
    backbones = getattr(network, "backbones", {})
    return {
        name: (bool(getattr(backbone, "accepts_any_length", False)), type(backbone).__name__)
        for name, backbone in backbones.items()
    }


def match_fitted_lengths(
    arrays: dict[str, np.ndarray],
    shapes: dict[str, tuple[int, ...]],
    fitted: Mapping[str, tuple[int, ...]],
    policy: Mapping[str, tuple[bool, str]],
) -> tuple[dict[str, np.ndarray], dict[str, tuple[int, ...]]]:
    """Sequences of ``arrays`` brought to the fitted lengths where they differ (module docstring).

    ``shapes`` are the per-sample shapes seen, ``fitted`` those at fit, ``policy`` is
    :func:`any_length_modalities`. Returns the arrays and the shapes to check against the fitted
    ones: an accepted longer sequence counts as the fitted shape. Shapes that differ otherwise
    (another number of features) are left to the layout check.
    """
    arrays, shapes = dict(arrays), dict(shapes)
    for name, array in arrays.items():
        expected = fitted.get(name)
        if expected is None or len(expected) != 2 or array.ndim != 3:
            continue
        fitted_steps, width = expected
        steps = array.shape[1]
        if array.shape[2] != width or steps == fitted_steps:
            continue
        if steps < fitted_steps:
            tail = np.full((array.shape[0], fitted_steps - steps, width), np.nan, array.dtype)
            arrays[name] = np.concatenate([array, tail], axis=1)
        else:
            real = _real_length(array)
            if real <= fitted_steps:  # the extra steps are padding in every row
                arrays[name] = array[:, :fitted_steps]
            else:
                accepts, backbone = policy.get(name, (False, "its backbone"))
                if not accepts:
                    raise ValueError(
                        f"modality {name!r} has sequences of up to {real} steps, but the model "
                        f"was fitted with T={fitted_steps} and its backbone {backbone} needs "
                        f"that fixed length (it does not declare accepts_any_length). Cut the "
                        f"sequences to {fitted_steps} steps (x[:, :{fitted_steps}]), or fit a "
                        "length-agnostic backbone (conv1d, gru, transformer, mlp)."
                    )
        shapes[name] = expected
    return arrays, shapes


def _real_length(array: np.ndarray) -> int:
    """1 + the last step that is not all NaN in some row (0 when every step is all NaN)."""
    if array.dtype.kind != "f":
        return array.shape[1]
    real_steps = np.flatnonzero(~np.isnan(array).all(axis=(0, 2)))
    return int(real_steps[-1]) + 1 if len(real_steps) else 0
