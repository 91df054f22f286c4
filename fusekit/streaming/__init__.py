"""Training on data larger than memory: sources read chunk by chunk by ``fit``.

``FusionClassifier().fit(ParquetSource("big.parquet", target="label"))`` streams the file one row
group at a time: a first pass for the standardisation statistics and the classes, then one
shuffled pass per epoch. :class:`DaskSource` reads a Dask DataFrame partition by partition,
:class:`ChunkSource` any re-readable stream of ``(X, y)`` chunks.
"""

from fusekit.streaming.chunks import ChunkSource
from fusekit.streaming.dask_frames import DaskSource
from fusekit.streaming.parquet import ParquetSource
from fusekit.streaming.source import DEFAULT_BUFFER_ROWS, Chunk, StreamError, StreamSource

__all__ = [
    "DEFAULT_BUFFER_ROWS",
    "Chunk",
    "ChunkSource",
    "DaskSource",
    "ParquetSource",
    "StreamError",
    "StreamSource",
]
