"""Keyed signatures of saved files: HMAC-SHA-256 with a secret key the user holds.

A plain SHA-256 digest catches accidents (truncation, bit rot, careless edits) but anyone who edits
a file can recompute it. A signature made with a key can only be made by someone holding the key,
so a file whose signature matches was written by a key holder and not changed since.
"""

from __future__ import annotations

import hashlib
import hmac

#: A signing key: bytes, or a string (used as its UTF-8 bytes).
SigningKey = str | bytes


def key_bytes(key: SigningKey | None) -> bytes | None:
    """``key`` as bytes (``None`` stays ``None``); a clear error for an empty or odd key."""
    if key is None:
        return None
    if isinstance(key, str):
        key = key.encode()
    if not isinstance(key, (bytes, bytearray)):
        raise TypeError(f"key must be bytes or a string, got {type(key).__name__}.")
    if not key:
        raise ValueError("key must not be empty: an empty key signs nothing.")
    return bytes(key)


def signer(key: bytes) -> hmac.HMAC:
    """A fresh HMAC-SHA-256 to feed the signed bytes into."""
    return hmac.new(key, digestmod=hashlib.sha256)


def sign_bytes(key: bytes, data: bytes) -> str:
    """The hex HMAC-SHA-256 of ``data``."""
    return hmac.new(key, data, digestmod=hashlib.sha256).hexdigest()


def same(expected: str, actual: str) -> bool:
    """Whether two hex digests are equal, compared in constant time."""
    return hmac.compare_digest(expected.encode(), actual.encode())
