"""``ChunkSource``: ``(X, y)`` chunks from Python, in any form ``fit`` accepts in memory.

``fit`` reads the chunks several times (a first pass for the statistics and the classes, then
once per epoch), so the source must be able to start again: a callable returning a fresh
iterable of chunks each time, or a re-iterable collection (a list: its chunks can also be
visited in a shuffled order). A one-shot iterator (a generator) can be read once only and is
refused by ``fit``; feed such a stream to ``partial_fit`` chunk by chunk instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from fusekit.streaming.source import (
    DEFAULT_BUFFER_ROWS,
    Chunk,
    SameColumns,
    StreamError,
    StreamSource,
    check_buffer_rows,
)


class ChunkSource(StreamSource):
    """``(X, y)`` chunks: ``chunks`` is a callable returning a fresh iterable of them for each
    pass, a sequence of them (then an epoch may shuffle the chunk order), or another re-iterable.
    """

    def __init__(
        self,
        chunks: Callable[[], Iterable[Any]] | Iterable[Any],
        *,
        buffer_rows: int = DEFAULT_BUFFER_ROWS,
    ) -> None:
        if not callable(chunks) and not isinstance(chunks, Iterable):
            raise TypeError(
                "ChunkSource needs a callable returning an iterable of (X, y) chunks, or a "
                f"list of them; got {type(chunks).__name__}."
            )
        self.chunks = chunks
        self.buffer_rows = check_buffer_rows("ChunkSource", buffer_rows)

    @property
    def one_shot(self) -> bool:
        """Whether ``chunks`` is an iterator, which a second pass would find exhausted."""
        return not callable(self.chunks) and iter(self.chunks) is self.chunks

    @property
    def n_chunks(self) -> int | None:
        return len(self.chunks) if isinstance(self.chunks, Sequence) else None

    def describe(self) -> str:
        n = self.n_chunks
        return f"{n} chunks" if n is not None else type(self.chunks).__name__

    def check_reads(self, passes: int) -> None:
        if passes > 1 and self.one_shot:
            raise StreamError(
                f"ChunkSource was given a one-shot iterator ({type(self.chunks).__name__}), "
                f"which can be read once, but this fit reads the chunks {passes} times (a first "
                "pass for the standardisation statistics and the classes, then one per epoch). "
                "Pass a callable returning a fresh iterator, e.g. ChunkSource(lambda: "
                "read_chunks(path)), or a list of chunks; or call partial_fit once per chunk."
            )

    def read(self, order: Sequence[int] | None = None) -> Iterator[Chunk]:
        if order is not None:
            numbered: Iterable[tuple[int, Any]] = ((i, self.chunks[i]) for i in order)
        else:
            stream = self.chunks() if callable(self.chunks) else self.chunks
            if not isinstance(stream, Iterable):
                raise StreamError(
                    f"ChunkSource's callable returned {type(stream).__name__}, not an iterable "
                    "of (X, y) chunks."
                )
            numbered = enumerate(stream)
        columns = SameColumns()
        for number, chunk in numbered:
            where = f"chunk {number}"
            if not (isinstance(chunk, (tuple, list)) and len(chunk) == 2):
                raise StreamError(
                    f"{where} is {type(chunk).__name__}"
                    f"{f' of length {len(chunk)}' if isinstance(chunk, (tuple, list)) else ''}; "
                    "every chunk must be a pair (X, y)."
                )
            X, y = chunk
            if y is None:
                raise StreamError(f"{where} has y=None; every chunk must be a pair (X, y).")
            if isinstance(X, pd.DataFrame):
                X = columns.check(X, where)
            yield Chunk(X, np.asarray(y), number, where)
