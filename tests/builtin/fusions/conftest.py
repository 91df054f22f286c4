"""Fixtures for the catalogue tests (helpers live in ``catalogue_helpers``)."""

import pytest
from catalogue_helpers import BUILTIN_FUSIONS


@pytest.fixture
def builtin_fusions():
    return BUILTIN_FUSIONS
