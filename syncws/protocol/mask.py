"""Client-to-server masking (RFC 6455 section 5.3), with an optional C accelerator.

The pure-Python path XORs the payload as one big integer, which keeps the work inside
CPython's C code (no per-byte Python loop). ``syncws._speedups`` replaces it when it was
compiled at install time; setting ``SYNCWS_NO_EXTENSIONS=1`` forces the pure-Python path.
"""

from __future__ import annotations

import os
import sys
from typing import Callable, Union

BytesLike = Union[bytes, bytearray, memoryview]

_BYTEORDER = sys.byteorder


def apply_mask_python(data: BytesLike, key: bytes) -> bytes:
    """XOR ``data`` with the 4-byte ``key`` repeated; masking and unmasking are the same."""
    length = len(data)
    if length == 0:
        return b""
    if len(key) != 4:
        raise ValueError("mask key must be 4 bytes")
    repeated = key * (length >> 2) + key[: length & 3]
    value = int.from_bytes(data, _BYTEORDER) ^ int.from_bytes(repeated, _BYTEORDER)
    return value.to_bytes(length, _BYTEORDER)


def _load_accelerated() -> Callable[[BytesLike, bytes], bytes]:
    if os.environ.get("SYNCWS_NO_EXTENSIONS"):
        return apply_mask_python
    try:
        from syncws._speedups import apply_mask as accelerated  # type: ignore[import-not-found]
    except ImportError:
        return apply_mask_python
    return accelerated  # type: ignore[no-any-return]


apply_mask: Callable[[BytesLike, bytes], bytes] = _load_accelerated()

#: True when the compiled accelerator is in use.
ACCELERATED = apply_mask is not apply_mask_python
