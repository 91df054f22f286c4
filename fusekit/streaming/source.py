"""What a streamed ``fit`` reads: a :class:`StreamSource` hands out :class:`Chunk` objects, each
in a form ``fit`` accepts in memory, as many times as training needs (a first pass for the
statistics, then one pass per epoch).

Explicit source objects (``ParquetSource``, ``DaskSource``, ``ChunkSource``) rather than a path
string guessed at: a string is ambiguous (a file to stream, a file to load, a column name), and a
source object says up front which rows form a chunk, which column is the target and how much is
buffered, and checks what it can before the first fit.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

#: Rows shuffled together in an epoch (the buffered window), unless a source is told otherwise.
DEFAULT_BUFFER_ROWS = 8192


class StreamError(ValueError):
    """A streamed source or one of its chunks cannot be trained on; the message names it."""


@dataclass(frozen=True)
class Chunk:
    """One chunk of a source: ``X`` (any form ``fit`` accepts in memory) and its target.

    ``number``: the chunk's place in the source's own order (0-based); ``where``: how error
    messages name it (``"row group 2 of part-1.parquet"``).
    """

    X: Any
    y: np.ndarray
    number: int
    where: str


class StreamSource(abc.ABC):
    """A data set read chunk by chunk; peak memory is one chunk plus the shuffle buffer.

    ``buffer_rows``: in an epoch with ``shuffle=True`` the chunks come in a new random order and
    the rows of about ``buffer_rows`` consecutive ones (whole chunks, at least one) are shuffled
    together; memory holds that window, not the data set.
    """

    buffer_rows: int = DEFAULT_BUFFER_ROWS

    @property
    @abc.abstractmethod
    def n_chunks(self) -> int | None:
        """The number of chunks when they can be read in any order, else ``None`` (the source's
        own order only: an epoch then shuffles rows within the window, not the chunk order)."""

    @abc.abstractmethod
    def read(self, order: Sequence[int] | None = None) -> Iterator[Chunk]:
        """The chunks in ``order`` (chunk numbers), or in the source's own order (``None``)."""

    def check_reads(self, passes: int) -> None:
        """Raise if the source cannot be read ``passes`` times (a one-shot iterator); the
        sources that re-read a file or a collection always can."""
        return

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()})"

    def describe(self) -> str:
        return ""


def check_buffer_rows(owner: str, buffer_rows: Any) -> int:
    if isinstance(buffer_rows, bool) or not isinstance(buffer_rows, (int, np.integer)):
        raise TypeError(f"{owner}: buffer_rows must be a positive integer, got {buffer_rows!r}.")
    if buffer_rows < 1:
        raise ValueError(f"{owner}: buffer_rows must be a positive integer, got {buffer_rows}.")
    return int(buffer_rows)


def split_target(frame: pd.DataFrame, target: str, where: str) -> tuple[pd.DataFrame, np.ndarray]:
    """``frame`` without the target column, and the target column as an array."""
    if target not in frame.columns:
        raise StreamError(
            f"{where}: target column {target!r} is not among its columns "
            f"{[str(c) for c in frame.columns[:10]]}{' ...' if frame.shape[1] > 10 else ''}."
        )
    return frame.drop(columns=[target]), frame[target].to_numpy()


class SameColumns:
    """Checks that every chunk's DataFrame has the first chunk's columns (another order is put
    back in the first chunk's)."""

    def __init__(self) -> None:
        self.first: list[Any] | None = None
        self.first_where = ""

    def check(self, frame: pd.DataFrame, where: str) -> pd.DataFrame:
        columns = list(frame.columns)
        if self.first is None:
            self.first, self.first_where = columns, where
            return frame
        if columns == self.first:
            return frame
        missing = [c for c in self.first if c not in columns]
        extra = [c for c in columns if c not in self.first]
        if not missing and not extra and frame.columns.is_unique:
            return frame.loc[:, self.first]
        detail = f"missing {missing[:5]}, extra {extra[:5]}" if missing or extra else "duplicates"
        raise StreamError(
            f"{where} has other columns than the first chunk ({self.first_where}): {detail}. "
            "Every chunk needs the same columns."
        )
