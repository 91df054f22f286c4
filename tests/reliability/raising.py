"""``raises_exactly``: ``pytest.raises`` that also pins the exception's exact type."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest


@contextlib.contextmanager
def raises_exactly(kind: type[BaseException], match: str | None) -> Iterator[pytest.ExceptionInfo]:
    """Expect ``kind`` itself (not a subclass) with a message matching ``match``."""
    with pytest.raises(kind, match=match) as info:
        yield info
    assert type(info.value) is kind, f"expected {kind.__name__}, got {type(info.value).__name__}"
