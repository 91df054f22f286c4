"""Every accepted ``X`` form in, float32 arrays per modality plus a presence mask out.

Accepted forms (converted here and nowhere else):

* :class:`Modalities` (or a plain ``dict``): ``{name: array (n, d) | (n, T, d) | (n, C, H, W)}``;
  a sequence may also be ragged, a list of ``(T_i, d)`` arrays, or channels-first with the
  estimator's ``layout=`` (:mod:`fusekit.sequences`, which also matches predict-time lengths);
* a :class:`pandas.DataFrame` grouped per modality, explicitly with
  ``modalities={"audio": [cols] | "regex" | slice}`` or by the ``name__column`` prefix that
  ``ColumnTransformer(...).set_output(transform="pandas")`` writes;
* a 2-D array with ``modalities={"a": 10, "b": 20}`` (block widths, in column order);
* a 2-D array or DataFrame with no grouping: one modality named ``"X"`` (a DataFrame warns:
  :class:`SingleModalityWarning`).

DataFrame columns are found by name at predict: the fitted columns in any order; with column
selectors, columns no modality selects are ignored at fit (``n_features_in_`` counts the used ones)
and may be absent or present at predict. A ``slice`` selects by position for integer bounds (as
``iloc``) and by label otherwise (as ``DataFrame.loc``, both ends included).

Missing values: a modality whose values are *all* NaN for a sample is absent for that sample
(mask 0, its values replaced by zeros). Any other NaN, and any inf, is an error naming the modality.
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import sparse
from sklearn.utils.validation import check_array, validate_data
from skorch.helper import SliceDict

from fusekit import sequences
from fusekit.plugin import ModalityBatch, expand_mask

SINGLE_MODALITY = "X"
PREFIX_SEPARATOR = "__"


class Modalities(SliceDict):
    """Per-modality arrays that scikit-learn can index, split and cross-validate.

    >>> X = Modalities(audio=np.zeros((100, 20)), video=np.zeros((100, 8, 32)))
    >>> X[:10]["video"].shape
    (10, 8, 32)

    All values must have the same number of rows. Use ``np.nan`` rows to mark a modality absent.
    """

    def __init__(self, mapping: Mapping[str, Any] | None = None, /, **arrays: Any) -> None:
        merged = {**(dict(mapping) if mapping is not None else {}), **arrays}
        merged = {name: sequences.as_rows(value) for name, value in merged.items()}
        if not merged:
            raise ValueError("Modalities needs at least one modality, got none.")
        lengths = {name: len(value) for name, value in merged.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(
                "every modality needs the same number of rows, got "
                + ", ".join(f"{name!r}: {n}" for name, n in lengths.items())
                + ". Align the rows (one row per sample) before building Modalities."
            )
        super().__init__(**merged)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return dict.__getitem__(self, key)
        return Modalities({name: value[key] for name, value in self.items()})

    def __repr__(self) -> str:
        shapes = ", ".join(f"{name}={tuple(np.shape(value))}" for name, value in self.items())
        return f"Modalities({shapes})"


@dataclass
class ModalityLayout:
    """How ``X`` was split into modalities at ``fit``; predict input must match it."""

    names: tuple[str, ...]
    shapes: dict[str, tuple[int, ...]]
    source: str  # "mapping" or "table"
    columns: dict[str, np.ndarray] = field(default_factory=dict)  # table: column positions
    kinds: dict[str, str] = field(default_factory=dict)  # raw modalities: "text" / "categorical"


@dataclass
class PreparedInput:
    """Float32 arrays (absent rows zeroed) and the ``(n, M)`` presence mask."""

    arrays: dict[str, np.ndarray]
    mask: np.ndarray
    steps: dict[str, np.ndarray] = field(default_factory=dict)  # sequences with padded steps

    @property
    def n_samples(self) -> int:
        return int(self.mask.shape[0])


def _is_mapping(X: Any) -> bool:
    return isinstance(X, Mapping)


@functools.cache
def _reserved_names() -> frozenset[str]:
    """Names a modality cannot take: attributes of ``torch.nn.ModuleDict``, which keys the
    network's backbones by modality (``type``, ``training``, ``forward``, ``keys``...)."""
    return frozenset(dir(torch.nn.ModuleDict()))


def modality_names(keys: list[Any], where: str) -> list[str]:
    """``keys`` as modality names (``str(key)``), else a ValueError / TypeError naming the key.

    A name must be a non-empty string without ``"."`` that is no ``torch.nn.Module`` attribute,
    and no two keys may give the same name (``{1: a, "1": b}``).
    """
    names: dict[str, Any] = {}
    for key in keys:
        name = str(key)
        if name in names:
            raise ValueError(
                f"{where} has keys {names[name]!r} and {key!r}, which both give the modality name "
                f"{name!r}; modality names must be distinct as strings. Rename one of them."
            )
        names[name] = key
        if not name:
            raise ValueError(f"{where} has a modality with an empty name; name every modality.")
        if "." in name:
            raise ValueError(
                f"modality {name!r} ({where}): modality names cannot contain '.'; rename it, "
                f"e.g. {name.replace('.', '_')!r}."
            )
        if name in _reserved_names():
            raise ValueError(
                f"modality {name!r} ({where}): the name is reserved (an attribute of "
                f"torch.nn.Module / ModuleDict, which key the network's parts by modality); "
                f"rename it, e.g. {name + '_data'!r}."
            )
    return list(names)


#: What to do about the dtypes fusekit refuses, by numpy dtype kind.
_NON_REAL_ADVICE = {
    "M": "datetimes are not numbers; convert them first, e.g. to seconds since a reference time "
    "((t - t0) / np.timedelta64(1, 's')) or to calendar features (year, day of week...)",
    "m": "durations are not numbers; convert them first, e.g. to seconds "
    "(d / np.timedelta64(1, 's'))",
    "c": "Complex data not supported; pass real numbers, e.g. the real and imaginary parts "
    "(or modulus and phase) as separate features",
}


def _refuse_non_real(name: str, value: Any) -> None:
    """ValueError for datetime, timedelta or complex values, which numpy would cast silently."""
    dtypes = (
        list(value.dtypes) if isinstance(value, pd.DataFrame) else [getattr(value, "dtype", None)]
    )
    for dtype in dtypes:
        kind = getattr(dtype, "kind", None)
        if kind in _NON_REAL_ADVICE:
            raise ValueError(f"modality {name!r} has dtype {dtype}: {_NON_REAL_ADVICE[kind]}.")


def _check_float32_range(name: str, array: np.ndarray, labels: list[Any] | None = None) -> None:
    """ValueError when a finite value does not fit float32 (training runs in float32)."""
    if array.dtype != np.float64:
        return
    limit = np.finfo(np.float32).max
    with np.errstate(invalid="ignore"):
        too_large = (np.abs(array) > limit) & np.isfinite(array)  # inf: presence_mask
    if not too_large.any():
        return
    row, *position = (int(i) for i in np.argwhere(too_large)[0])
    if labels is not None and len(position) == 1:
        where = f"column {labels[position[0]]!r}"
    elif len(position) == 1:
        where = f"column {position[0]}"
    else:
        where = f"position {tuple(position)}"
    raise ValueError(
        f"modality {name!r}, {where}: value {array[(row, *position)]:.3g} in row {row} does not "
        f"fit float32 (largest {limit:.3g}), in which fusekit trains. Rescale the feature (e.g. "
        "divide it by a power of ten, or take a logarithm)."
    )


def raw_values(value: Any) -> np.ndarray | None:
    """A modality's strings or labels as an object array ``(n, k)``, or ``None`` for numbers.

    Raw: string dtypes, pandas categories, and object arrays or lists holding a string (an
    object array of numbers stays numeric, as before). :mod:`fusekit.raw_inputs` encodes them.
    """
    if isinstance(value, pd.Series):
        value = value.to_frame()
    if isinstance(value, pd.DataFrame):
        numeric = all(pd.api.types.is_numeric_dtype(d) for d in value.dtypes)
        return None if numeric else value.to_numpy(dtype=object)
    if isinstance(value, (list, tuple)):
        if not any(isinstance(v, str) for v in value):
            return None
        value = np.array(value, dtype=object)
    kind = getattr(getattr(value, "dtype", None), "kind", None)
    if kind not in ("U", "S", "O") or (
        kind == "O" and not any(isinstance(v, str) for v in np.asarray(value).ravel())
    ):
        return None
    array = np.asarray(value).astype(object)
    return array.reshape(-1, 1) if array.ndim == 1 else array


def _to_float_array(name: str, value: Any) -> np.ndarray:
    raw = raw_values(value)
    if raw is not None:
        if raw.ndim != 2:
            raise ValueError(
                f"modality {name!r} holds strings of shape {raw.shape}; text is one string per "
                "sample (n,) and categories a table (n, k)."
            )
        return raw
    if hasattr(value, "detach"):  # torch tensor
        value = value.detach().cpu().numpy()
    _refuse_non_real(name, value)
    if sparse.issparse(value):
        raise TypeError(
            f"modality {name!r}: sparse data was passed, but dense data is required. "
            "Use .toarray() to convert it."
        )
    try:
        array = check_array(
            value,
            dtype=(np.float32, np.float64),
            ensure_2d=False,
            allow_nd=True,
            ensure_all_finite=False,  # NaN/inf are checked per modality in presence_mask
            ensure_min_samples=0,
            ensure_min_features=0,
            input_name=f"modality {name!r}",
        )
    except (ValueError, TypeError) as error:
        message = str(error) if repr(name) in str(error) else f"modality {name!r}: {error}"
        raise type(error)(message) from error
    if array.ndim < 2:
        raise ValueError(
            f"modality {name!r} has shape {array.shape}; expected (n, d), (n, T, d) or "
            f"(n, C, H, W). Reshape a single feature to (n, 1)."
        )
    if array.ndim > 4:
        raise ValueError(
            f"modality {name!r} has {array.ndim} dimensions {array.shape}; at most 4 are supported "
            "(n, C, H, W)."
        )
    if 0 in array.shape[1:]:
        raise ValueError(
            f"modality {name!r} is empty: shape {array.shape}. Each modality needs at least one "
            "feature; drop the empty modality."
        )
    _check_float32_range(name, array)
    return array


def group_columns(columns: list[str], spec: Mapping[str, Any] | None) -> dict[str, np.ndarray]:
    """Column positions per modality from an explicit spec or the ``name__col`` prefixes."""
    positions: dict[str, np.ndarray] = {}
    if spec is None:
        prefixed = [c for c in columns if isinstance(c, str) and PREFIX_SEPARATOR in c]
        if not prefixed:
            return {SINGLE_MODALITY: np.arange(len(columns))}
        if len(prefixed) != len(columns):
            loose = [c for c in columns if c not in prefixed][:5]
            raise ValueError(
                f"some DataFrame columns have a 'modality__column' prefix and some do not "
                f"(e.g. {loose}). Prefix every column, or pass modalities={{name: columns}}."
            )
        names = list(dict.fromkeys(c.split(PREFIX_SEPARATOR, 1)[0] for c in prefixed))
        for name in names:
            positions[name] = np.array(
                [i for i, c in enumerate(columns) if c.split(PREFIX_SEPARATOR, 1)[0] == name]
            )
        return positions
    index = {c: i for i, c in enumerate(columns)}
    for name, selector in spec.items():
        if isinstance(selector, str):
            chosen = [i for i, c in enumerate(columns) if re.search(selector, str(c))]
        elif isinstance(selector, slice):
            chosen = _slice_positions(name, columns, selector)
        else:
            missing = [c for c in selector if c not in index]
            if missing:
                raise ValueError(f"modality {name!r}: columns {missing[:5]} are not in X.")
            chosen = [index[c] for c in selector]
        if not chosen:
            raise ValueError(f"modality {name!r} selects no column of X (selector {selector!r}).")
        positions[name] = np.array(chosen)
    owners: dict[int, str] = {}
    for name, chosen in positions.items():
        for column in chosen:
            if column in owners:
                raise ValueError(
                    f"column {columns[column]!r} is selected by modalities {owners[column]!r} and "
                    f"{name!r}; each column belongs to one modality."
                )
            owners[int(column)] = name
    return positions


def _slice_positions(name: str, columns: list[Any], selector: slice) -> list[int]:
    """Positions a slice selects: integer bounds are positions (as ``iloc``, end excluded), other
    bounds are column labels (as ``DataFrame.loc``, both ends included)."""
    bounds = (selector.start, selector.stop)
    positions = list(range(len(columns)))
    if all(
        b is None or (isinstance(b, (int, np.integer)) and not isinstance(b, bool)) for b in bounds
    ):
        return positions[selector]
    try:
        located = pd.Index(columns).slice_indexer(selector.start, selector.stop, selector.step)
    except (KeyError, TypeError, ValueError) as error:
        message = error.args[0] if error.args else str(error)
        raise ValueError(
            f"modality {name!r}: slice({selector.start!r}, {selector.stop!r}) selects columns by "
            f"label, from start to stop inclusive (as DataFrame.loc), but {message} Use labels "
            f"that are columns of X (first columns: {[str(c) for c in columns[:5]]}), or integer "
            "positions."
        ) from None
    return positions[located]


def _width_spec(spec: Mapping[str, Any]) -> bool:
    return all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in spec.values())


def _block_positions(n_columns: int, spec: Mapping[str, int]) -> dict[str, np.ndarray]:
    total = sum(int(width) for width in spec.values())
    if total != n_columns:
        raise ValueError(
            f"modalities={dict(spec)} add up to {total} columns, but X has {n_columns}. "
            "Give one width per block, in column order."
        )
    positions, start = {}, 0
    for name, width in spec.items():
        if int(width) < 1:
            raise ValueError(f"modality {name!r} has width {width}; widths must be >= 1.")
        positions[name] = np.arange(start, start + int(width))
        start += int(width)
    return positions


class SingleModalityWarning(UserWarning):
    """A DataFrame without ``modality__column`` prefixes and no ``modalities=`` is one modality."""


def _selects_by_name(spec: Mapping[str, Any] | None) -> bool:
    return spec is not None and not _width_spec(spec)


def _names_recorded(frame: pd.DataFrame) -> bool:
    """Whether scikit-learn records the column names (``feature_names_in_``): all strings."""
    return frame.columns.is_unique and all(isinstance(c, str) for c in frame.columns)


def _columns_for_fit(
    frame: pd.DataFrame, spec: Mapping[str, Any] | None
) -> tuple[pd.DataFrame, dict[str, np.ndarray] | None]:
    """The columns a model fitted on ``frame`` uses and their positions per modality.

    With column selectors (``modalities={name: columns | regex | slice}``) the columns no modality
    selects are dropped, so ``n_features_in_`` and ``feature_names_in_`` count what the model uses
    (when the names are strings, so that predict can find the columns by name). Without
    ``modalities=`` and without prefixes, the frame is one modality and a
    :class:`SingleModalityWarning` says how to declare several.
    """
    if spec is None:
        columns = list(frame.columns)
        if not any(isinstance(c, str) and PREFIX_SEPARATOR in c for c in columns):
            warnings.warn(
                f"the DataFrame's {len(columns)} columns (e.g. {[str(c) for c in columns[:3]]}) "
                f"have no 'modality__column' prefixes and modalities= is not set, so they form "
                f"one modality {SINGLE_MODALITY!r}: nothing is fused, and a sample misses it only "
                "when its whole row is NaN. Name the columns 'audio__pitch', 'video__hue', ... "
                "(ColumnTransformer([...]).set_output(transform='pandas') writes these "
                "prefixes), or pass modalities={'audio': [columns], ...}; pass "
                "modalities={'X': slice(None)} to use one modality on purpose.",
                SingleModalityWarning,
                stacklevel=6,  # the caller of fit
            )
        return frame, None
    if not _selects_by_name(spec):
        return frame, None
    positions = group_columns(list(frame.columns), spec)
    used = np.sort(np.concatenate(list(positions.values())))
    if len(used) == frame.shape[1] or not _names_recorded(frame):
        return frame, positions
    new_position = {int(old): new for new, old in enumerate(used)}
    remapped = {m: np.array([new_position[int(c)] for c in cols]) for m, cols in positions.items()}
    return frame.iloc[:, used], remapped


def _columns_for_predict(
    frame: pd.DataFrame, spec: Mapping[str, Any] | None, estimator: Any
) -> pd.DataFrame:
    """``frame``'s columns in the fitted order, found by name.

    A frame with the fitted columns in another order is reordered. With column selectors at fit,
    columns the model does not use may also be present (they are ignored, as at fit). Anything
    else is left to scikit-learn's feature-name check, which names the columns.
    """
    fitted = getattr(estimator, "feature_names_in_", None)
    if fitted is None or not frame.columns.is_unique:
        return frame
    fitted = list(fitted)
    columns = list(frame.columns)
    if columns == fitted or not set(fitted) <= set(columns):
        return frame
    if len(columns) == len(fitted) or _selects_by_name(spec):
        return frame.loc[:, fitted]
    return frame


def _check_numeric(frame: pd.DataFrame) -> list[Any]:
    """The non-numeric columns (text, categories), after refusing datetimes and the like."""
    for column in frame.columns:
        kind = getattr(frame[column].dtype, "kind", None)
        if kind in _NON_REAL_ADVICE:
            raise ValueError(
                f"column {str(column)!r} has dtype {frame[column].dtype}: {_NON_REAL_ADVICE[kind]}."
            )
    return [
        c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame.dtypes[c])
    ]  # read raw: raw_inputs refuses them where the backbone accepts no text / categories


def _split_table(
    X: Any, spec: Mapping[str, Any] | None, estimator: Any, reset: bool
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    selected, raw = None, []
    if isinstance(X, pd.DataFrame):
        if reset:
            X, selected = _columns_for_fit(X, spec)
        else:
            X = _columns_for_predict(X, spec, estimator)
        raw = _check_numeric(X)
    table = validate_data(
        estimator,
        X,
        reset=reset,
        dtype=None if raw else (np.float32, np.float64),  # raw columns stay objects
        ensure_all_finite=False,  # NaN/inf are checked per modality in presence_mask
        ensure_min_samples=1,
    )
    if reset:
        if selected is not None:
            positions = selected
        elif spec is not None and _width_spec(spec):
            positions = _block_positions(table.shape[1], spec)
        else:
            columns = (
                list(X.columns) if isinstance(X, pd.DataFrame) else list(range(table.shape[1]))
            )
            if spec is not None and not isinstance(X, pd.DataFrame):
                raise ValueError(
                    "modalities given as column selectors need a DataFrame; for an array pass "
                    "block widths, e.g. modalities={'a': 10, 'b': 20}."
                )
            positions = group_columns(columns, spec)
    else:
        positions = estimator.layout_.columns
    labels = list(X.columns) if isinstance(X, pd.DataFrame) else None
    raw_positions = {labels.index(c) for c in raw} if raw else set()
    arrays = {}
    for name, cols in positions.items():
        arrays[name] = table[:, cols]
        if raw_positions & {int(c) for c in cols}:
            continue  # text or categories, encoded by raw_inputs
        if raw:
            arrays[name] = arrays[name].astype(np.float64)
        _check_float32_range(
            str(name), arrays[name], None if labels is None else [labels[c] for c in cols]
        )
    return arrays, positions


def split_modalities(
    X: Any, spec: Mapping[str, Any] | None, estimator: Any, reset: bool
) -> tuple[dict[str, np.ndarray], ModalityLayout]:
    """Split ``X`` into float64 arrays per modality; record the layout (``reset``) or check it."""
    if sparse.issparse(X):
        raise TypeError(
            "Sparse data was passed for X, but dense data is required: fusekit does not support "
            "sparse input. Use X.toarray() to convert to a dense numpy array."
        )
    if not reset:
        _check_same_form(X, estimator)
    if _is_mapping(X):
        if not X:
            raise ValueError("X has no modality: pass at least one array.")
        names = modality_names(list(X), "X")
        values = sequences.steps_last(  # ragged rows padded, channels-first swapped
            dict(zip(names, X.values(), strict=True)), getattr(estimator, "layout", None), reset
        )
        arrays = {name: _to_float_array(name, value) for name, value in values.items()}
        rows = {name: a.shape[0] for name, a in arrays.items()}
        if len(set(rows.values())) > 1:
            raise ValueError(
                "modalities have different numbers of rows: "
                + ", ".join(f"{name!r}: {n}" for name, n in rows.items())
                + ". Every modality needs one row per sample."
            )
        layout = ModalityLayout(
            names=tuple(arrays),
            shapes={name: tuple(a.shape[1:]) for name, a in arrays.items()},
            source="mapping",
        )
    else:
        if spec is not None and not isinstance(spec, Mapping):
            raise TypeError(f"modalities must be a dict or None, got {type(spec).__name__}.")
        arrays, positions = _split_table(X, spec, estimator, reset)
        if reset:
            where = "modalities=" if spec is not None else "the DataFrame's column prefixes"
            modality_names(list(arrays), where)
            if not all(isinstance(name, str) for name in arrays):
                raise TypeError(
                    f"modalities= keys must be strings (modality names), got "
                    f"{[name for name in arrays if not isinstance(name, str)]!r}."
                )
        layout = ModalityLayout(
            names=tuple(arrays),
            shapes={name: tuple(a.shape[1:]) for name, a in arrays.items()},
            source="table",
            columns=positions,
        )
    if not reset:
        arrays, seen = sequences.match_fitted_lengths(
            arrays,
            layout.shapes,
            estimator.layout_.shapes,
            sequences.any_length_modalities(estimator),
        )
        _check_layout(replace(layout, shapes=seen), estimator.layout_, type(estimator).__name__)
        layout = estimator.layout_
        arrays = {name: arrays[name] for name in layout.names}
    return arrays, layout


def _describe(X: Any) -> str:
    if isinstance(X, pd.DataFrame):
        return f"a DataFrame with {X.shape[1]} columns"
    shape = getattr(X, "shape", None)
    return f"{type(X).__name__} of shape {shape}" if shape is not None else type(X).__name__


def _check_same_form(X: Any, estimator: Any) -> None:
    """ValueError when ``X`` is a table but the model was fitted on a mapping of modalities
    (a table has no modality names to match)."""
    fitted = estimator.layout_
    if fitted.source == "mapping" and not _is_mapping(X):
        shapes = ", ".join(f"{name!r}: {shape}" for name, shape in fitted.shapes.items())
        raise ValueError(
            f"{type(estimator).__name__} was fitted on a mapping of modalities ({shapes} per "
            f"sample), but X is {_describe(X)}. Pass the same form as at fit: a dict or "
            f"Modalities with keys {list(fitted.names)}."
        )


def _check_layout(seen: ModalityLayout, fitted: ModalityLayout, estimator_name: str) -> None:
    unknown = [name for name in seen.names if name not in fitted.shapes]
    missing = [name for name in fitted.names if name not in seen.shapes]
    if unknown or missing:
        raise ValueError(
            f"X has modalities {list(seen.names)}, but {estimator_name} was fitted with "
            f"{list(fitted.names)}"
            + (f"; unknown: {unknown}" if unknown else "")
            + (f"; missing: {missing}" if missing else "")
            + ". Pass the same modalities as at fit; mark a modality absent with NaN rows."
        )
    for name in fitted.names:
        expected, got = fitted.shapes[name], seen.shapes[name]
        if expected != got:
            if len(expected) == 1 and len(got) == 1:
                what = (
                    f"X has {got[0]} features, but {estimator_name} is expecting {expected[0]} "
                    "features as input"
                )
            else:
                what = f"shape {got} per sample, but {estimator_name} was fitted with {expected}"
            raise ValueError(f"modality {name!r}: {what}. Pass the same columns/shape as at fit.")


def _padded_steps(name: str, array: np.ndarray, present: np.ndarray) -> np.ndarray | None:
    """``(n, T)`` valid-step mask of a sequence modality, or ``None`` when no step is padded.

    A time step whose features are all NaN in a present sample is padding (ragged sequences);
    NaN in part of a step is an error.
    """
    step_nan = np.isnan(array).sum(axis=2)  # (n, T)
    padded = (step_nan == array.shape[2]) & present[:, None]
    partial = (step_nan > 0) & (step_nan < array.shape[2]) & present[:, None]
    if partial.any():
        rows = np.unique(np.nonzero(partial)[0])
        raise ValueError(
            f"modality {name!r} has NaN in part of a time step in {len(rows)} rows (first: "
            f"{rows[:5].tolist()}). Padding steps must be all NaN; impute scattered NaN."
        )
    if not padded.any():
        return None
    if (padded.sum(axis=1) == array.shape[1])[present].any():
        raise ValueError(f"modality {name!r}: a present sample has every time step padded.")
    return ~padded


def _partial_nan_advice(names: list[str]) -> str:
    if names == [SINGLE_MODALITY]:  # everything in one modality: the NaN may be a missing one
        return (
            f"All of X is one modality {SINGLE_MODALITY!r} (no 'modality__column' prefixes and "
            "no modalities=), so a sample misses it only when its whole row is NaN. If the "
            "columns hold several modalities, declare them (prefix the columns "
            "'modality__column' or pass modalities={name: columns}): a modality whose columns "
            "are all NaN in a row is then absent for that sample. Impute only NaN that do not "
            "mark a missing modality."
        )
    return (
        "A modality is absent for a sample only when all its values are NaN; impute the "
        "scattered NaN (e.g. SimpleImputer) or set the whole row to NaN."
    )


def presence_mask(arrays: dict[str, np.ndarray]) -> PreparedInput:
    """Mask absent rows (all-NaN), reject partial NaN and inf, return float32 with zeros filled.

    For sequences ``(n, T, d)``, all-NaN time steps of a present sample are padding: they are
    zero-filled and reported in ``PreparedInput.steps[name]`` ``(n, T)`` (True = real step).
    """
    names = list(arrays)
    n = next(iter(arrays.values())).shape[0]
    mask = np.ones((n, len(names)), dtype=bool)
    prepared: dict[str, np.ndarray] = {}
    steps: dict[str, np.ndarray] = {}
    for position, name in enumerate(names):
        array = arrays[name]
        flat = array.reshape(n, -1)
        try:
            finite = np.isfinite(flat)
        except TypeError:  # strings or objects: no backbone of this modality reads them
            raise ValueError(
                f"modality {name!r}: expected numbers, got values of dtype {array.dtype} (text or "
                f"categories need a backbone that reads them, e.g. backbone={{{name!r}: "
                "'hashed_text'})"
            ) from None
        if finite.all():  # fast path: nothing absent, nothing padded
            prepared[name] = array.astype(np.float32, copy=False)
            continue
        if np.isinf(flat).any():
            rows = np.unique(np.nonzero(np.isinf(flat))[0])
            raise ValueError(
                f"modality {name!r} contains inf in {len(rows)} rows (first: {rows[:5].tolist()}). "
                "Replace them with finite values, or set the whole row to NaN to mark the "
                "modality absent."
            )
        nan_count = np.isnan(flat).sum(axis=1)
        absent = nan_count == flat.shape[1]
        partial = (nan_count > 0) & ~absent
        valid_steps = None
        if array.ndim == 3 and partial.any():  # sequences: all-NaN steps are padding
            valid_steps = _padded_steps(name, array, ~absent)
        elif partial.any():
            rows = np.nonzero(partial)[0]
            raise ValueError(
                f"modality {name!r} has NaN in part of {len(rows)} rows (first: "
                f"{rows[:5].tolist()}). " + _partial_nan_advice(names)
            )
        mask[:, position] = ~absent
        filled = np.where(np.isnan(array), 0.0, array)
        prepared[name] = filled.astype(np.float32, copy=False)
        if valid_steps is not None:
            steps[name] = valid_steps
    return PreparedInput(arrays=prepared, mask=mask, steps=steps)


def _stat_axes(ndim: int) -> tuple[int, ...]:
    """Axes statistics are pooled over: rows (vectors), rows+time (sequences), rows+H+W (images)."""
    return {2: (0,), 3: (0, 1), 4: (0, 2, 3)}[ndim]


def weighted_mean_std(
    values: np.ndarray, weights: np.ndarray, axes: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean and standard deviation of ``values`` over ``axes``; ``weights`` ``(n,)``."""
    values = values.astype(np.float64)
    w = np.broadcast_to(weights.reshape(-1, *([1] * (values.ndim - 1))), values.shape)
    total = w.sum(axis=axes, keepdims=True)
    mean = (w * values).sum(axis=axes, keepdims=True) / total
    variance = (w * (values - mean) ** 2).sum(axis=axes, keepdims=True) / total
    return mean, np.sqrt(variance)


@dataclass
class Standardizer:
    """Per-modality z-scoring fitted on present rows only (per feature, or per channel).

    With ``sample_weight`` ``(n,)`` the mean and standard deviation are weighted (rows count
    ``w_i`` times, as in ``StandardScaler.fit(sample_weight=)``), except for sequences with padded
    steps, whose statistics stay unweighted.
    """

    means: dict[str, np.ndarray] = field(default_factory=dict)
    scales: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def fit(
        cls,
        data: PreparedInput,
        sample_weight: np.ndarray | None = None,
        names: Collection[str] | None = None,
    ) -> Standardizer:
        """Statistics of the modalities ``names`` (default: all); the others pass unchanged."""
        standardizer = cls()
        for position, (name, array) in enumerate(data.arrays.items()):
            if names is not None and name not in names:
                continue
            rows = data.mask[:, position]
            axes = _stat_axes(array.ndim)
            present = array if rows.all() else array[rows]
            weights = None if sample_weight is None else sample_weight[rows]
            if weights is not None and not weights.sum() > 0:
                weights = None
            if len(present) == 0:
                shape = [1] * array.ndim
                for axis in range(1, array.ndim):
                    if axis not in axes:
                        shape[axis] = array.shape[axis]
                mean, scale = np.zeros(shape), np.ones(shape)
            elif name in data.steps:  # padded steps do not count
                present = present.astype(np.float64)
                present[~data.steps[name][rows]] = np.nan
                mean = np.nanmean(present, axis=axes, keepdims=True)
                scale = np.nanstd(present, axis=axes, keepdims=True)
            elif weights is not None:
                mean, scale = weighted_mean_std(present, weights, axes)
            else:
                mean = present.mean(axis=axes, keepdims=True, dtype=np.float64)
                scale = present.std(axis=axes, keepdims=True, dtype=np.float64)
            scale[scale < 1e-12 * np.maximum(1.0, np.abs(mean))] = 1.0
            standardizer.means[name] = mean.astype(np.float32)
            standardizer.scales[name] = scale.astype(np.float32)
        return standardizer

    def transform(self, data: PreparedInput) -> PreparedInput:
        arrays = {}
        for position, (name, array) in enumerate(data.arrays.items()):
            if name not in self.means:  # not standardised (token ids, codes, standardize=)
                arrays[name] = array
                continue
            scaled = array - self.means[name]  # float32, a new array
            scaled *= 1.0 / self.scales[name]
            if data.mask[:, position].all() and name not in data.steps:
                arrays[name] = scaled.astype(np.float32, copy=False)
                continue
            keep = data.mask[:, position].reshape(-1, *([1] * (array.ndim - 1)))
            if name in data.steps:
                keep = keep & data.steps[name][:, :, None]
            arrays[name] = np.where(keep, scaled, 0.0).astype(np.float32)
        return PreparedInput(arrays=arrays, mask=data.mask, steps=data.steps)

    def torch_transform(self, device: torch.device) -> Callable[[ModalityBatch], ModalityBatch]:
        """The same z-scoring as :meth:`transform`, as a function on a torch batch (prediction).

        Absent rows and padded steps stay zero, as after :meth:`transform`.
        """
        means = {m: torch.from_numpy(v).to(device)[0] for m, v in self.means.items()}
        inverse = {m: (1.0 / torch.from_numpy(v)).to(device)[0] for m, v in self.scales.items()}

        def standardize(batch: ModalityBatch) -> ModalityBatch:
            features = {}
            for position, (name, x) in enumerate(batch.features.items()):
                if name not in means:
                    features[name] = x
                    continue
                scaled = (x - means[name]).mul_(inverse[name])
                if not batch.complete:
                    scaled = scaled * expand_mask(batch.mask[:, position], scaled)
                if name in batch.steps:
                    scaled = scaled * batch.steps[name].unsqueeze(-1).to(scaled.dtype)
                features[name] = scaled
            return replace(batch, features=features)

        return standardize
