"""Data sets for a bench: a registered loader by name, or a CSV/Parquet file plus a modality spec.

Both become a :class:`BenchData`: ``X`` as :class:`~fusekit.Modalities` of float arrays (so the
robustness sweeps can corrupt one modality), or object arrays ``(n, k)`` for text and categorical
columns (read by the backbones that accept them), ``y``, the task and a checksum that keys resume.

Names may carry loader keyword arguments: ``"mfeat:views=fou,kar"`` calls
``load_mfeat(views=["fou", "kar"])`` (a comma makes a list; numbers are converted).
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils.multiclass import type_of_target

from fusekit.bench.parsing import parse_dataset_name
from fusekit.data import Modalities, group_columns, raw_values
from fusekit.datasets import checksum
from fusekit.engine.registry import get_registry

FILE_SUFFIXES = (".csv", ".parquet", ".pq", ".csv.gz", ".csv.xz")


@dataclass
class BenchData:
    """One data set ready to cross-validate."""

    name: str
    X: Modalities
    y: np.ndarray
    task: str  # "classification" or "regression"
    fingerprint: str
    source: dict[str, Any] = field(default_factory=dict)
    groups: np.ndarray | None = None  # group labels (subjects, sessions) of grouped splits

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {m: tuple(np.shape(v)[1:]) for m, v in self.X.items()}


def task_of(y: np.ndarray) -> str:
    """``"regression"`` for continuous targets, else ``"classification"``."""
    kind = type_of_target(y)
    return "regression" if kind in ("continuous", "continuous-multioutput") else "classification"


def from_arrays(name: str, X: Any, y: Any, source: dict[str, Any], groups: Any = None) -> BenchData:
    if not isinstance(X, Mapping):
        raise TypeError(
            f"dataset {name!r} gave X as {type(X).__name__}; the bench needs per-modality arrays "
            "(fusekit.Modalities). Featurise it first, or save it as a file with "
            "modality__column names and pass --data FILE."
        )
    X = Modalities({str(m): _values(v) for m, v in X.items()})
    y = np.asarray(y)
    fingerprint = checksum(X, y)[:16]
    if groups is not None:
        groups = np.asarray(groups)
        if groups.ndim != 1 or len(groups) != len(y):
            raise ValueError(
                f"dataset {name!r}: groups must be one label per sample, shape ({len(y)},); got "
                f"shape {groups.shape}."
            )
        # the groups decide the splits, so they key resume as the data do
        labels = np.asarray(groups).astype(str).astype("U").tobytes()
        fingerprint = hashlib.sha256(fingerprint.encode() + labels).hexdigest()[:16]
    return BenchData(name, X, y, task_of(y), fingerprint, source, groups)


def _values(value: Any) -> np.ndarray:
    """Float64, or an object array for strings (text, categories), which backbones encode."""
    raw = raw_values(value)
    return raw if raw is not None else np.asarray(value, dtype=np.float64)


def has_raw(bench_data: BenchData) -> bool:
    """Whether a modality holds strings (text or categories): no reference row reads those."""
    return any(np.asarray(v).dtype == object for v in bench_data.X.values())


def load_named(text: str) -> BenchData:
    """A registered data set (``fusekit datasets`` lists them), with optional loader kwargs."""
    name, kwargs = parse_dataset_name(text)
    loader = get_registry().get("dataset", name)
    _check_loader_arguments(text, loader, kwargs)
    X, y = loader(**kwargs)
    return from_arrays(text, X, y, {"dataset": name, "kwargs": kwargs})


def _check_loader_arguments(text: str, loader: Any, kwargs: Mapping[str, Any]) -> None:
    """Loader arguments the loader does not take fail before it loads anything."""
    try:
        parameters = inspect.signature(loader).parameters.values()
    except (TypeError, ValueError):  # no signature to read: the loader checks its own
        return
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return
    accepted = [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = [key for key in kwargs if key not in accepted]
    if unknown:
        raise ValueError(
            f"dataset {text!r}: its loader takes no argument {unknown}; it accepts {accepted} "
            "(name:key=value)."
        )


def read_table(path: str | Path) -> pd.DataFrame:
    """A CSV (optionally compressed) or Parquet file as a DataFrame."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file {str(path)!r} does not exist.")
    if path.suffix in (".parquet", ".pq"):
        try:
            return pd.read_parquet(path)
        except ImportError as error:
            raise ImportError(
                f"reading {path.name} needs a Parquet engine: pip install pyarrow."
            ) from error
    return pd.read_csv(path)


def parse_modality_spec(spec: str | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A modality spec from a mapping, a JSON string or a JSON file.

    ``{"audio": ["a1", "a2"], "video": "^v_"}``: a list of columns or a regular expression per
    modality. ``None``: group the columns by their ``modality__`` prefix.
    """
    if spec is None or isinstance(spec, Mapping):
        return None if spec is None else dict(spec)
    text = Path(spec).read_text() if Path(spec).is_file() else spec
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"modalities must be JSON ({{name: [columns] | regex}}) or a JSON file, got "
            f"{spec!r}: {error}."
        ) from error
    if not isinstance(parsed, dict):
        raise ValueError(f"modalities must be a JSON object, got {type(parsed).__name__}.")
    return parsed


def load_file(
    path: str | Path,
    target: str,
    modalities: str | Mapping[str, Any] | None = None,
    groups: str | None = None,
) -> BenchData:
    """A CSV/Parquet file: ``target`` column is ``y``, ``groups`` (optional) the group labels of
    grouped splits, the rest split into modalities.

    Columns no modality selects are ignored (with an explicit spec). Rows whose target is missing
    are dropped; NaN in features follows fusekit's rule (an all-NaN modality row is absent).
    """
    frame = read_table(path).reset_index(drop=True)  # positions: the file's rows
    if target not in frame.columns:
        raise ValueError(
            f"target column {target!r} is not in {Path(path).name}; columns: "
            f"{list(frame.columns)[:10]}{' ...' if frame.shape[1] > 10 else ''}."
        )
    frame = frame[frame[target].notna()]
    if groups is not None:
        if groups not in frame.columns or groups == target:
            raise ValueError(
                f"groups column {groups!r} is not a feature column of {Path(path).name} "
                f"(target {target!r}); columns: {list(frame.columns)[:10]}"
                f"{' ...' if frame.shape[1] > 10 else ''}."
            )
        if frame[groups].isna().any():
            rows = np.flatnonzero(frame[groups].isna().to_numpy())[:5].tolist()
            raise ValueError(
                f"groups column {groups!r} of {Path(path).name} has missing values (rows {rows}); "
                "every row needs a group."
            )
    features = frame.drop(columns=[target] + ([groups] if groups is not None else []))
    spec = parse_modality_spec(modalities)
    positions = group_columns(list(features.columns), spec)
    # text / categorical columns stay strings: the estimator refuses them, naming the backbones
    # that accept them, where the configured backbone does not
    X = Modalities({m: _values(features.iloc[:, cols]) for m, cols in positions.items()})
    _check_partial_nan(X, frame.index.to_numpy(), Path(path).name, is_csv=not _is_parquet(path))
    source = {"file": str(path), "target": target, "modalities": spec}
    if groups is not None:
        source["groups"] = groups
    labels = None if groups is None else frame[groups].to_numpy()
    return from_arrays(Path(path).name, X, frame[target].to_numpy(), source, labels)


def _is_parquet(path: str | Path) -> bool:
    return Path(path).suffix in (".parquet", ".pq")


def _check_partial_nan(X: Modalities, rows: np.ndarray, file: str, is_csv: bool) -> None:
    """A modality with NaN in part of a row is an error naming the file's rows (CSV: line
    numbers, the header being line 1; Parquet: 0-based row positions), not a fold's."""
    for name, values in X.items():
        if values.dtype == object:  # text / categories: raw_inputs decides what is missing
            continue
        nan = np.isnan(values)
        partial = nan.any(axis=1) & ~nan.all(axis=1)
        if partial.any():
            where = rows[partial][:5] + (2 if is_csv else 0)
            unit = "lines" if is_csv else "rows"
            raise ValueError(
                f"{file}: modality {name!r} has NaN in part of {int(partial.sum())} rows "
                f"({unit} {where.tolist()}{' ...' if partial.sum() > 5 else ''}). A modality is "
                "absent for a sample only when all its values are NaN: fill the gaps or blank "
                "the whole modality in those rows."
            )


def is_file_name(text: str) -> bool:
    return text.endswith(FILE_SUFFIXES) or Path(text).is_file()
