"""Small data and hand-built networks for the balancing weightings' tests.

Named apart from ``conftest`` so that it cannot be shadowed by another test folder's conftest.
"""

import numpy as np
import torch

from fusekit.plugin import ModalityBatch
from fusekit.testing.fixtures import (
    build_network,
    loss_context,
    make_batch,
    make_data,
    make_joint_split,
    training_context,
)

__all__ = [
    "build_network",
    "loss_context",
    "make_batch",
    "make_data",
    "make_joint_split",
    "padded_sequence_batch",
    "training_context",
]


def padded_sequence_batch() -> tuple[ModalityBatch, np.ndarray, dict[str, np.ndarray]]:
    """a: a (3, 2) sequence whose row 0 has 1 real step and row 1 has 2 (the padding holds 9s,
    which a pass that pools over every step would average in); b: a vector, absent in row 2;
    a absent in row 3 (shapes ``{"a": (3, 2), "b": (2,)}``). Returns the batch (index 0..3), its
    mask ``(4, 2)`` and the modality vectors with a replaced by its mean over the real steps."""
    a = np.array(
        [
            [[1.0, 2.0], [9.0, 9.0], [9.0, 9.0]],
            [[1.0, 0.0], [3.0, -2.0], [9.0, 9.0]],
            [[0.5, 1.0], [-1.0, 2.0], [1.5, 0.0]],
            [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]],
        ]
    )
    real = np.array([[1, 0, 0], [1, 1, 0], [1, 1, 1], [1, 1, 1]], dtype=bool)
    b = np.array([[0.5, -1.0], [2.0, 0.0], [0.0, 0.0], [-1.0, 1.5]])
    mask = np.array([[1, 1], [1, 1], [1, 0], [0, 1]], dtype=bool)
    pooled = (a * real[..., None]).sum(axis=1) / real.sum(axis=1, keepdims=True)
    batch = ModalityBatch(
        {"a": torch.tensor(a, dtype=torch.float32), "b": torch.tensor(b, dtype=torch.float32)},
        torch.tensor(mask),
        index=torch.arange(4),
        steps={"a": torch.tensor(real)},
    ).with_mask(torch.tensor(mask))
    return batch, mask, {"a": pooled, "b": b}


BALANCING = [
    "pmr",
    "agm",
    "mmpareto",
    "mla",
    "opm",
    "greedy",
    "cml",
    "umt",
    "amco",
    "mbsd",
    "lfm",
    "reconboost",
    "sample_valuation",
    "arl",
]
