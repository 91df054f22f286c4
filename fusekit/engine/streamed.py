"""Training rows that are not all in memory: an epoch reads them window by window.

:class:`StreamedData` stands where :class:`~fusekit.plugin.TrainingData` does in skorch's
``fit``; its ``windows`` callable yields, for each epoch, the rows as a few ``TrainingData``
windows (each a whole number of batches, the last excepted), already in the epoch's order of
chunks. The batches of a window are sliced as in memory (:class:`BatchIterator`), shuffled
within the window when the epoch shuffles.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import torch
from torch import Tensor

from fusekit.engine.batching import BatchIterator
from fusekit.plugin.batch import ModalityBatch, TrainingData

Windows = Callable[[bool, "torch.Generator | None"], Iterable[TrainingData]]


class StreamedData:
    """``n_samples`` training rows, read anew each epoch by ``windows(shuffle, generator)``."""

    def __init__(self, windows: Windows, n_samples: int) -> None:
        self.windows = windows
        self.n_samples = n_samples

    def __len__(self) -> int:
        return self.n_samples

    def batches(
        self, batch_size: int, shuffle: bool, generator: torch.Generator | None
    ) -> StreamedBatches:
        return StreamedBatches(self, batch_size, shuffle, generator)


class StreamedBatches:
    """One epoch's ``(ModalityBatch, target)`` pairs over a :class:`StreamedData`."""

    def __init__(
        self,
        data: StreamedData,
        batch_size: int,
        shuffle: bool,
        generator: torch.Generator | None,
    ) -> None:
        self.data = data
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator

    def __len__(self) -> int:  # the windows are whole batches but the last: as in memory
        return -(-len(self.data) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[ModalityBatch, Tensor | None]]:
        for window in self.data.windows(self.shuffle, self.generator):
            yield from BatchIterator(window, self.batch_size, self.shuffle, self.generator)
