"""A fast iterator over prepared tensors: no per-sample ``Dataset.__getitem__``, no collate.

Per-batch overhead is a handful of tensor indexing calls on a :class:`TrainingData`.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from fusekit.plugin.batch import ModalityBatch, TrainingData, rows_of


class BatchIterator:
    """Iterates ``(ModalityBatch, target)`` pairs by slicing prepared tensors.

    Shuffles with its own ``torch.Generator`` so that training is reproducible under a seed and
    independent of the global RNG state. Shuffled rows are gathered ``block_rows`` at a time
    (rounded to whole batches); batches are views into that block.
    """

    block_rows = 8192

    def __init__(
        self,
        data: TrainingData,
        batch_size: int,
        shuffle: bool,
        generator: torch.Generator | None = None,
        rows: Tensor | None = None,
        drop_last: bool = False,
    ) -> None:
        self.data = data
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator
        self.rows = rows
        self.drop_last = drop_last

    def __len__(self) -> int:
        n = len(self.data) if self.rows is None else len(self.rows)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[ModalityBatch, Tensor | None]]:
        n = len(self.data) if self.rows is None else len(self.rows)
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator)
            if self.rows is not None:
                order = self.rows[order]
        else:
            order = self.rows
        stop = n - n % self.batch_size if self.drop_last else n
        inputs, target = self.data.inputs, self.data.target
        if order is None:
            yield from _slices(inputs, target, stop, self.batch_size)
            return
        # Gather the rows of several batches with one indexing call per tensor, then hand out
        # zero-copy slices: per batch this replaces one gather per tensor with one view per tensor.
        block = max(1, self.block_rows // self.batch_size) * self.batch_size
        for start in range(0, stop, block):
            rows = order[start : min(start + block, stop)]
            block_target = None if target is None else rows_of(rows)(target)
            yield from _slices(inputs.take(rows), block_target, len(rows), self.batch_size)


def _slices(
    inputs: ModalityBatch, target: Tensor | None, stop: int, size: int
) -> Iterator[tuple[ModalityBatch, Tensor | None]]:
    """Consecutive ``size``-row views of the first ``stop`` rows."""
    for first in range(0, stop, size):
        rows = slice(first, min(first + size, stop))
        yield inputs.take(rows), None if target is None else target[rows]
