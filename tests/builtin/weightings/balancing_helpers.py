"""Small data and hand-built networks for the PMR / AGM / MMPareto / MLA / OPM tests.

Named apart from ``conftest`` so that it cannot be shadowed by another test folder's conftest.
"""

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
    "training_context",
]

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
