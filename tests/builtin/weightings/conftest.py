"""Fixtures for the weighting tests (helpers live in ``weightings_helpers``)."""

import pytest
import torch
from weightings_helpers import make_data

torch.set_num_threads(1)


@pytest.fixture
def data2():
    return make_data(2)


@pytest.fixture
def data3():
    return make_data(3)
