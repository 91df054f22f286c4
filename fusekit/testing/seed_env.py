"""The seed of a test run, from ``FUSEKIT_TEST_SEED`` (no pytest needed: contract checks use it)."""

from __future__ import annotations

import os

SEED_VARIABLE = "FUSEKIT_TEST_SEED"


def current_seed() -> int:
    """``FUSEKIT_TEST_SEED`` as an integer, 0 when unset."""
    raw = os.environ.get(SEED_VARIABLE, "0").strip() or "0"
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{SEED_VARIABLE} must be an integer, got {raw!r}") from None
