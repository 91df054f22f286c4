"""A seed fixture for tests that train a model and compare a score with a threshold.

Float32 kernels differ between CPUs and a few epochs amplify the difference, so a threshold that
holds for one seed on one machine may fail on another. Such tests take their seed from the
``train_seed`` fixture instead of a literal; ``FUSEKIT_TEST_SEED`` (default 0) sets it, and every
test that uses the fixture (directly or through another fixture) is marked ``seeded``, so

    FUSEKIT_TEST_SEED=3 pytest -m seeded

reruns exactly those tests under another seed (``make test-seeds`` runs seeds 1-5). A seed change
stands in for the float differences between machines: a test that passes for every seed has
margin. Load it from a ``conftest.py`` with ``pytest_plugins = ("fusekit.testing.seeds",)``.
"""

from __future__ import annotations

import pytest

from fusekit.testing.seed_env import SEED_VARIABLE, current_seed

__all__ = ["MARKER", "SEED_VARIABLE", "current_seed", "train_seed"]

MARKER = "seeded"


@pytest.fixture(scope="session")
def train_seed() -> int:
    """Seed for data generation and ``random_state`` in tests that threshold a trained score."""
    return current_seed()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}: trains a model and thresholds a score; reads its seed from {SEED_VARIABLE}",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "train_seed" in getattr(item, "fixturenames", ()):
            item.add_marker(MARKER)


def pytest_report_header() -> str:
    return f"{SEED_VARIABLE}={current_seed()}"
