"""An epoch's order over a streamed source: the chunks in a shuffled order, and their rows
gathered into windows of about ``buffer_rows`` (whole chunks) that are shuffled within.

Windows are cut at whole batches (the rows past the last whole batch are carried into the next
window), so every batch but the epoch's last is full, whatever the chunk sizes: without
shuffling an epoch's batches are exactly those of ``fit`` over the concatenated chunks.
Memory holds one window (``buffer_rows`` rows, plus at most one chunk and one batch).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from fusekit.data import PreparedInput


@dataclass
class Piece:
    """Prepared (validated, standardised) rows of one or more chunks, with their targets, their
    weights (or ``None``) and their positions in the source (``rows``)."""

    data: PreparedInput
    target: np.ndarray
    weights: np.ndarray | None
    rows: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)

    def take(self, selected: slice) -> Piece:
        data = self.data
        return Piece(
            PreparedInput(
                arrays={name: array[selected] for name, array in data.arrays.items()},
                mask=data.mask[selected],
                steps={name: steps[selected] for name, steps in data.steps.items()},
            ),
            self.target[selected],
            None if self.weights is None else self.weights[selected],
            self.rows[selected],
        )


def concatenate(pieces: list[Piece]) -> Piece:
    """One piece holding the rows of ``pieces`` in order (a modality padded in some pieces
    only gets all-real steps in the others)."""
    if len(pieces) == 1:
        return pieces[0]
    first = pieces[0].data
    steps = {}
    for name in dict.fromkeys(n for p in pieces for n in p.data.steps):
        steps[name] = np.concatenate(
            [
                p.data.steps.get(name, np.ones(p.data.arrays[name].shape[:2], dtype=bool))
                for p in pieces
            ]
        )
    data = PreparedInput(
        arrays={
            name: np.concatenate([p.data.arrays[name] for p in pieces]) for name in first.arrays
        },
        mask=np.concatenate([p.data.mask for p in pieces]),
        steps=steps,
    )
    weights = None
    if pieces[0].weights is not None:
        weights = np.concatenate([p.weights for p in pieces])
    return Piece(
        data,
        np.concatenate([p.target for p in pieces]),
        weights,
        np.concatenate([p.rows for p in pieces]),
    )


def chunk_order(
    n_chunks: int | None, shuffle: bool, generator: torch.Generator | None
) -> list[int] | None:
    """The epoch's chunk numbers: a permutation drawn from ``generator`` when shuffling a source
    that can be read in any order, else ``None`` (the source's own order)."""
    if not shuffle or n_chunks is None:
        return None
    return torch.randperm(n_chunks, generator=generator).tolist()


def windows(pieces: Iterable[Piece], buffer_rows: int, batch_size: int) -> Iterator[Piece]:
    """``pieces`` regrouped into windows of at least ``buffer_rows`` rows (and one batch), each
    cut at a whole number of ``batch_size`` batches; the epoch's last window takes the rest."""
    target_rows = max(buffer_rows, batch_size)
    held: list[Piece] = []
    count = 0
    for piece in pieces:
        held.append(piece)
        count += len(piece)
        if count < target_rows:
            continue
        merged = concatenate(held)
        cut = count - count % batch_size
        yield merged.take(slice(0, cut))
        rest = merged.take(slice(cut, None))
        held, count = ([rest], len(rest)) if len(rest) else ([], 0)
    if count:
        yield concatenate(held)
