"""Client-to-server masking (RFC 6455 section 5.3), with an optional C accelerator.

The pure-Python path XORs the payload as big integers, 16 KiB at a time, which keeps the
work inside CPython's C code (no per-byte Python loop). ``syncws._speedups`` replaces it
when it was compiled at install time; setting ``SYNCWS_NO_EXTENSIONS=1`` forces the
pure-Python path.
"""

from __future__ import annotations

import sys
from typing import Callable, Union

from . import compiled

BytesLike = Union[bytes, bytearray, memoryview]

_BYTEORDER = sys.byteorder


# Payloads longer than this are masked in chunks of this size: the int conversions then
# work on data that stays in the CPU cache, which roughly doubles throughput on large
# payloads compared with converting the whole payload to one huge integer.
_CHUNK = 16 * 1024


def apply_mask_python(data: BytesLike, key: bytes, /) -> bytes:
    """XOR ``data`` with the 4-byte ``key`` repeated; masking and unmasking are the same."""
    if not isinstance(key, bytes):
        key = memoryview(key).tobytes()  # TypeError for objects that are not bytes-like
    if len(key) != 4:
        raise ValueError(f"mask key must be 4 bytes, not {len(key)}")
    if not isinstance(data, bytes):
        view = memoryview(data)  # TypeError for objects that are not bytes-like
        if not (view.c_contiguous and view.ndim == 1 and view.itemsize == 1):
            view = memoryview(view.tobytes())  # flatten strided or multi-byte-item views
        data = view
    length = len(data)
    if length == 0:
        return b""
    if length <= _CHUNK:
        repeated = key * (length >> 2) + key[: length & 3]
        value = int.from_bytes(data, _BYTEORDER) ^ int.from_bytes(repeated, _BYTEORDER)
        return value.to_bytes(length, _BYTEORDER)
    from_bytes = int.from_bytes
    chunk_key = from_bytes(key * (_CHUNK >> 2), _BYTEORDER)
    view = memoryview(data)
    whole = length - length % _CHUNK
    parts = [
        (from_bytes(view[start : start + _CHUNK], _BYTEORDER) ^ chunk_key).to_bytes(
            _CHUNK, _BYTEORDER
        )
        for start in range(0, whole, _CHUNK)
    ]
    if whole < length:
        # _CHUNK is a multiple of 4, so the key phase restarts at 0 here.
        parts.append(apply_mask_python(view[whole:], key))
    return b"".join(parts)


def _load_accelerated() -> Callable[[BytesLike, bytes], bytes]:
    speedups = compiled.load()
    return apply_mask_python if speedups is None else speedups.apply_mask


apply_mask: Callable[[BytesLike, bytes], bytes] = _load_accelerated()

#: True when the compiled accelerator is in use.
ACCELERATED = apply_mask is not apply_mask_python
