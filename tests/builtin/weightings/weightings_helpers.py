"""Shared helpers of the weighting tests (a module of its own, not ``conftest``: test folders
have no ``__init__``, so ``from conftest import`` could pick up another folder's conftest)."""

from fusekit.testing.fixtures import (
    build_network,
    loss_context,
    make_batch,
    make_data,
    make_joint_split,
)

__all__ = [
    "NEW_WEIGHTINGS",
    "build_network",
    "loss_context",
    "make_batch",
    "make_data",
    "make_joint_split",
]

NEW_WEIGHTINGS = [
    "static",
    "unimodal_aux",
    "gradient_blending",
    "ogm_ge",
    "qmf",
    "tmc",
    "energy",
    "prob_embedding",
]
