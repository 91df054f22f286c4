"""``ParquetSource``: a Parquet file or a folder of them, read one row group at a time (pyarrow).

A chunk is one row group, so memory holds one row group plus the shuffle buffer: write big files
with a bounded ``row_group_size`` (``pyarrow.parquet.write_table(table, path,
row_group_size=50_000)``; Spark and Dask write one row group per block). The schemas are read
(metadata only) when the source is made: a missing target column, another set of columns in one
of the files or a column that is not numbers is refused then, naming the file and column.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fusekit.streaming.source import (
    DEFAULT_BUFFER_ROWS,
    Chunk,
    SameColumns,
    StreamError,
    StreamSource,
    check_buffer_rows,
    split_target,
)

PARQUET_SUFFIXES = (".parquet", ".pq")


def _pyarrow() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError as error:  # an optional dependency: the "streaming" extra
        raise ImportError(
            "ParquetSource reads Parquet with pyarrow: pip install pyarrow "
            '(or pip install "fusekit-learn[streaming]").'
        ) from error
    return pq


def parquet_files(path: str | Path) -> list[Path]:
    """``path`` itself, or every ``*.parquet`` / ``*.pq`` file under the folder, sorted."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"Parquet source {str(path)!r} is neither a file nor a folder.")
    files = sorted(p for p in path.rglob("*") if p.suffix in PARQUET_SUFFIXES and p.is_file())
    if not files:
        raise FileNotFoundError(f"Parquet folder {str(path)!r} holds no *.parquet or *.pq file.")
    return files


def _is_number(field: Any) -> bool:
    import pyarrow as pa

    kind = field.type
    if pa.types.is_dictionary(kind):
        return False
    return (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_null(kind)
    )


class ParquetSource(StreamSource):
    """Rows of a Parquet file or folder; ``target``: the column that is ``y``.

    The other columns are the features, split into modalities as a DataFrame is in memory (their
    ``modality__column`` prefixes, or the estimator's ``modalities=``). ``rows``: the positions
    (0-based, over the files in sorted order) of the rows to read, e.g. a cross-validation fold;
    default all. ``buffer_rows``: see :class:`~fusekit.streaming.source.StreamSource`.
    """

    def __init__(
        self,
        path: str | Path,
        target: str,
        *,
        rows: np.ndarray | None = None,
        buffer_rows: int = DEFAULT_BUFFER_ROWS,
    ) -> None:
        pq = _pyarrow()
        self.path = Path(path)
        self.target = target
        self.buffer_rows = check_buffer_rows("ParquetSource", buffer_rows)
        self.files = parquet_files(self.path)
        self.groups: list[tuple[Path, int, int, int]] = []  # file, row group, first row, rows
        first_names: list[str] | None = None
        start = 0
        for file in self.files:
            metadata = pq.ParquetFile(file)
            schema = metadata.schema_arrow
            index = (schema.pandas_metadata or {}).get("index_columns", [])  # pandas' index
            names = [n for n in schema.names if n not in index and not n.startswith("__index")]
            if target not in names:
                raise StreamError(
                    f"{file.name}: target column {target!r} is not among its columns "
                    f"{names[:10]}{' ...' if len(names) > 10 else ''}."
                )
            text = [n for n in names if n != target and not _is_number(schema.field(n))]
            if text:
                kinds = [str(schema.field(n).type) for n in text[:5]]
                raise StreamError(
                    f"{file.name}: columns {text[:5]} have types {kinds}, not numbers; fusekit "
                    "trains on numbers: encode them first (or write them to another file)."
                )
            if first_names is None:
                first_names = names
            elif sorted(names) != sorted(first_names):
                missing = [n for n in first_names if n not in names]
                extra = [n for n in names if n not in first_names]
                raise StreamError(
                    f"{file.name} has other columns than {self.files[0].name}: missing "
                    f"{missing[:5]}, extra {extra[:5]}. Every file needs the same columns."
                )
            for group in range(metadata.num_row_groups):
                n = metadata.metadata.row_group(group).num_rows
                if n:
                    self.groups.append((file, group, start, n))
                    start += n
        self.n_rows = start
        self.rows = None if rows is None else np.sort(np.asarray(rows, dtype=np.int64))
        if (
            self.rows is not None
            and len(self.rows)
            and not (self.rows[0] >= 0 and self.rows[-1] < self.n_rows)
        ):
            raise StreamError(
                f"rows must be positions in [0, {self.n_rows}) of {self.path}, got "
                f"[{self.rows[0]}, {self.rows[-1]}]."
            )

    @property
    def n_chunks(self) -> int:
        return len(self.groups)

    def describe(self) -> str:
        return f"{str(self.path)!r}, target={self.target!r}, {self.n_chunks} row groups"

    def read_target(self) -> np.ndarray:
        """The target column of every row (one column read: the bench's folds need ``y``)."""
        pq = _pyarrow()
        parts = [pq.read_table(file, columns=[self.target]) for file in self.files]
        return np.concatenate([p.column(0).to_numpy(zero_copy_only=False) for p in parts])

    def read(self, order: Sequence[int] | None = None) -> Iterator[Chunk]:
        pq = _pyarrow()
        columns = SameColumns()
        opened: dict[Path, Any] = {}
        for number in range(self.n_chunks) if order is None else order:
            file, group, start, n = self.groups[number]
            keep = None
            if self.rows is not None:
                lo, hi = np.searchsorted(self.rows, [start, start + n])
                if lo == hi:
                    continue  # no selected row in this row group
                keep = self.rows[lo:hi] - start
            where = f"row group {group} of {file.name}"
            if file not in opened:
                opened.clear()  # one file open at a time
                opened[file] = pq.ParquetFile(file)
            frame = opened[file].read_row_group(group).to_pandas()
            frame = frame.reset_index(drop=True)
            if keep is not None:
                frame = frame.iloc[keep]
            features, y = split_target(frame, self.target, where)
            yield Chunk(columns.check(features, where), y, number, where)
