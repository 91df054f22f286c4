"""``DaskSource``: a Dask DataFrame read one partition at a time (``partitions[i].compute()``).

A chunk is one partition: memory holds one partition plus the shuffle buffer (repartition with
``ddf.repartition(partition_size="50MB")`` if they are large). The feature columns are split into
modalities by their ``modality__column`` prefixes (or the estimator's ``modalities=``), exactly
as a pandas DataFrame is in memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from fusekit.streaming.source import (
    DEFAULT_BUFFER_ROWS,
    Chunk,
    SameColumns,
    StreamError,
    StreamSource,
    check_buffer_rows,
    split_target,
)


class DaskSource(StreamSource):
    """The rows of a Dask DataFrame ``frame``; ``target``: the column that is ``y``."""

    def __init__(self, frame: Any, target: str, *, buffer_rows: int = DEFAULT_BUFFER_ROWS) -> None:
        if not (hasattr(frame, "npartitions") and hasattr(frame, "partitions")):
            raise TypeError(
                f"DaskSource needs a dask.dataframe.DataFrame, got {type(frame).__name__}."
            )
        if target not in frame.columns:
            raise StreamError(
                f"the Dask DataFrame has no target column {target!r}; its columns are "
                f"{[str(c) for c in frame.columns[:10]]}."
            )
        self.frame = frame
        self.target = target
        self.buffer_rows = check_buffer_rows("DaskSource", buffer_rows)

    @property
    def n_chunks(self) -> int:
        return int(self.frame.npartitions)

    def describe(self) -> str:
        return f"{self.n_chunks} partitions, target={self.target!r}"

    def read(self, order: Sequence[int] | None = None) -> Iterator[Chunk]:
        columns = SameColumns()
        for number in range(self.n_chunks) if order is None else order:
            where = f"partition {number} of the Dask DataFrame"
            frame = self.frame.partitions[number].compute()
            if len(frame) == 0:
                continue
            features, y = split_target(frame.reset_index(drop=True), self.target, where)
            yield Chunk(columns.check(features, where), y, number, where)
