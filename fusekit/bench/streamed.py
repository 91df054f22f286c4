"""Benching a Parquet file or folder without loading it: ``--data big.parquet --stream``.

The protocol is the in-memory one, streamed: the target column alone is read (one number per
row), the folds are the usual stratified (classification) or plain k-fold splits of it, and each
unit fits on a :class:`~fusekit.streaming.ParquetSource` restricted to its training rows and
scores the test rows as they stream, chunk by chunk (one row group at a time). Memory per unit:
one row group plus the shuffle buffer, plus the target and the fold's row positions.

Rows whose target is missing are left out, as in memory. What needs the features in memory is not
offered for streamed data: the scikit-learn reference rows are left out (the run info says so);
corruption sweeps, the removed-modality table and nested tuning are refused up front. The data
checksum covers the target column and every file's Parquet metadata (schema, row-group sizes and
column statistics), not every feature value: rewriting a file with other values but identical
metadata keeps the checksum.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.metrics import get_scorer

from fusekit.bench.data import BenchData, parse_modality_spec, task_of
from fusekit.data import group_columns
from fusekit.streaming import DEFAULT_BUFFER_ROWS, ParquetSource

#: What the run info says about the reference rows of a streamed data set.
REFERENCES_NOTE = "left out for streamed data sets (they need the features in memory)"


@dataclass(frozen=True)
class ColumnShape:
    """What the bench needs of one streamed modality without its values: ``shape``, ``ndim``."""

    shape: tuple[int, ...]

    @property
    def ndim(self) -> int:
        return len(self.shape)


@dataclass(eq=False)
class StreamedTable(Mapping):
    """A streamed Parquet data set where a bench holds ``X``: the modality names and shapes (as
    a mapping, for the planning code) and where to read the rows (``positions``: each kept row's
    position in the files, in ``y``'s order)."""

    path: str
    target: str
    modalities: dict[str, Any] | None
    positions: np.ndarray
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    buffer_rows: int = DEFAULT_BUFFER_ROWS

    def __getitem__(self, name: str) -> ColumnShape:
        return ColumnShape((len(self.positions), *self.shapes[name]))

    def __iter__(self) -> Iterator[str]:
        return iter(self.shapes)

    def __len__(self) -> int:
        return len(self.shapes)

    def source(self, rows: np.ndarray) -> ParquetSource:
        """The rows ``rows`` (positions in ``y``) as a streamed source."""
        return ParquetSource(
            self.path, self.target, rows=self.positions[rows], buffer_rows=self.buffer_rows
        )


def is_streamable(entry: str) -> bool:
    path = Path(entry)
    return path.is_dir() or path.suffix in (".parquet", ".pq")


def load_streamed(path: str, target: str, modalities: Any = None) -> BenchData:
    """A Parquet file or folder as a streamed :class:`BenchData` (only the target is read)."""
    if not is_streamable(path):
        raise ValueError(
            f"--stream reads Parquet files or folders of them, got {path!r}; convert a CSV with "
            "pandas.read_csv(...).to_parquet(...), or bench it without --stream."
        )
    source = ParquetSource(path, target)
    y = source.read_target()
    kept = ~pd.isna(y)
    positions = np.flatnonzero(kept)
    y = y[kept]
    first = next(source.read([0])).X
    spec = parse_modality_spec(modalities)
    grouped = group_columns(list(first.columns), spec)
    shapes = {str(name): (len(columns),) for name, columns in grouped.items()}
    table = StreamedTable(str(path), target, spec, positions, shapes)
    name = Path(path).name
    return BenchData(
        name,
        table,
        y,
        task_of(y),
        _fingerprint(source, y),
        {"file": str(path), "target": target, "modalities": spec, "streamed": True},
    )


def _fingerprint(source: ParquetSource, y: np.ndarray) -> str:
    import pyarrow.parquet as pq

    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(y.astype(str)).tobytes())
    for file in source.files:
        metadata = pq.ParquetFile(file).metadata
        digest.update(str(metadata.schema).encode())
        for group in range(metadata.num_row_groups):
            digest.update(repr(metadata.row_group(group).to_dict()).encode())
    return digest.hexdigest()[:16]


class _StreamedPredictions(BaseEstimator):
    """A fitted model that predicts on a streamed source, chunk by chunk, for sklearn's
    scorers (which call ``predict`` / ``predict_proba`` / ``decision_function`` on ``X``)."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def __sklearn_tags__(self):  # noqa: ANN204 - sklearn's Tags type
        return self.model.__sklearn_tags__()

    @property
    def classes_(self) -> np.ndarray:
        return self.model.classes_

    def _stream(self, method: str, source: ParquetSource) -> np.ndarray:
        return np.concatenate([getattr(self.model, method)(c.X) for c in source.read()])

    def predict(self, source: ParquetSource) -> np.ndarray:
        return self._stream("predict", source)

    def predict_proba(self, source: ParquetSource) -> np.ndarray:
        return self._stream("predict_proba", source)

    def decision_function(self, source: ParquetSource) -> np.ndarray:
        return self._stream("decision_function", source)


def fit_and_score(unit: Any, estimator: Any, table: StreamedTable, y: np.ndarray) -> dict:
    """Fit ``estimator`` on the unit's training rows streamed and score its test rows streamed:
    ``{"score", "fit_time", "predict_time"}``."""
    if table.modalities is not None:
        estimator.set_params(modalities=table.modalities)
    train, test = np.sort(unit.train), np.sort(unit.test)  # the files' order
    start = time.perf_counter()
    estimator.fit(table.source(train))
    fit_time = time.perf_counter() - start
    start = time.perf_counter()
    score = get_scorer(unit.metric)(_StreamedPredictions(estimator), table.source(test), y[test])
    return {
        "score": float(score),
        "fit_time": fit_time,
        "predict_time": time.perf_counter() - start,
    }
