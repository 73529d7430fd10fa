"""The protocol's hot helpers, compiled (``syncws._speedups``) or in pure Python.

Each helper has a pure-Python twin here with exactly the same results (``tests/protocol/test_accel.py``
compares them on random and edge inputs). The compiled versions are used when the accelerator
was built at install time, unless ``SYNCWS_NO_EXTENSIONS`` is set in the environment, as for
masking (:mod:`syncws.protocol.mask`):

- :func:`parse_frame` takes the next frame off the front of the receive buffer (the header
  checks of :class:`~syncws.protocol.frames.FrameParser`, the payload copy and unmasking);
- :func:`client_frame` builds a whole masked frame (header, key, masked payload);
- :func:`payload_buffer` allocates the object a large payload is received into: with the
  accelerator the final ``bytes`` itself, so the payload is copied once (kernel to ``bytes``)
  instead of twice (kernel to ``bytearray``, ``bytearray`` to ``bytes``).

UTF-8 validation stays with CPython's own decoder: it is already C, and a compiled
validator measured slower than it on non-ASCII text (see bench/README.md).
"""

from __future__ import annotations

from typing import Callable, List, Tuple, Union

from . import compiled
from .mask import BytesLike, apply_mask_python

__all__ = [
    "ACCELERATED",
    "ParsedFrame",
    "ParseResult",
    "PARSE_RESERVED_OPCODE",
    "PARSE_FRAGMENTED_CONTROL",
    "PARSE_CONTROL_TOO_LONG",
    "PARSE_UNEXPECTED_MASK",
    "PARSE_MISSING_MASK",
    "PARSE_LENGTH_TOP_BIT",
    "PARSE_TOO_BIG",
    "parse_frame",
    "client_frame",
    "payload_buffer",
    "parse_frame_python",
    "client_frame_python",
    "payload_buffer_python",
]

# Why parse_frame refused a frame (its negative results); the same values as in _speedups.c.
PARSE_RESERVED_OPCODE = -1
PARSE_FRAGMENTED_CONTROL = -2
PARSE_CONTROL_TOO_LONG = -3
PARSE_UNEXPECTED_MASK = -4  # a masked frame where frames must not be masked (a client)
PARSE_MISSING_MASK = -5  # an unmasked frame where frames must be masked (a server)
PARSE_LENGTH_TOP_BIT = -6
PARSE_TOO_BIG = -7

#: A parsed frame: its first header byte (FIN, RSV1-3, opcode) and its unmasked payload.
ParsedFrame = Tuple[int, bytes]
ParseResult = Union[None, int, ParsedFrame]

_RESERVED_OPCODES = frozenset(range(3, 8)) | frozenset(range(11, 16))

# Frames whose whole encoding is at most this long go out as one buffer: small frames are
# cheaper joined than handed to sendmsg() as two.
_JOIN_LIMIT = 1024


def parse_frame_python(buf: bytearray, expect_masked: bool, max_payload: int, /) -> ParseResult:
    """Take the next frame off the front of ``buf``.

    Returns ``None`` while the frame is incomplete, a negative ``PARSE_*`` code when it breaks
    a rule (``buf`` is left untouched in both cases), or ``(first_byte, payload)`` after
    deleting the frame from ``buf``; the payload is new ``bytes``, unmasked.

    :param buf: the receive buffer, starting at a frame boundary.
    :param expect_masked: ``True`` where every frame must be masked (a server), ``False``
        where none may be (a client).
    :param max_payload: the largest payload length accepted, or ``-1`` for no limit; checked
        on the declared length of a data frame, before any payload is waited for.
    """
    available = len(buf)
    if available < 2:
        return None
    first = buf[0]
    second = buf[1]
    opcode = first & 0x0F
    masked = second & 0x80 != 0
    length = second & 0x7F
    offset = 2
    if opcode in _RESERVED_OPCODES:
        return PARSE_RESERVED_OPCODE
    if opcode >= 8:
        if not first & 0x80:
            return PARSE_FRAGMENTED_CONTROL
        if length > 125:
            return PARSE_CONTROL_TOO_LONG
    if masked != expect_masked:
        return PARSE_UNEXPECTED_MASK if masked else PARSE_MISSING_MASK
    if length == 126:
        if available < 4:
            return None
        length = int.from_bytes(buf[2:4], "big")
        offset = 4
    elif length == 127:
        if available < 10:
            return None
        length = int.from_bytes(buf[2:10], "big")
        offset = 10
        if length >> 63:
            return PARSE_LENGTH_TOP_BIT
    if max_payload >= 0 and length > max_payload and opcode < 8:
        return PARSE_TOO_BIG  # data frames only: control frames are held to 125 bytes above
    key = None
    if masked:
        if available < offset + 4:
            return None
        key = bytes(buf[offset : offset + 4])
        offset += 4
    end = offset + length
    if available < end:
        return None
    with memoryview(buf) as view:
        payload = view[offset:end].tobytes()
    del buf[:end]
    if key is not None:
        payload = apply_mask_python(payload, key)
    return first, payload


def client_frame_python(first_byte: int, payload: BytesLike, key: bytes, /) -> List[bytes]:
    """A masked frame as buffers for ``sendmsg``: one buffer up to 1024 bytes, else two.

    :param first_byte: FIN, RSV1-3 and the opcode, as the first header byte.
    :param payload: the unmasked payload (any bytes-like object).
    :param key: the 4-byte mask key (fresh from a strong random source, RFC 6455 5.3).
    """
    if not 0 <= first_byte <= 255:
        raise ValueError("first_byte must be in range(256)")
    masked = apply_mask_python(payload, key)
    length = len(masked)
    if length < 126:
        head = bytes((first_byte, 0x80 | length)) + key
    elif length < 65536:
        head = bytes((first_byte, 0xFE)) + length.to_bytes(2, "big") + key
    else:
        head = bytes((first_byte, 0xFF)) + length.to_bytes(8, "big") + key
    if not length or len(head) + length <= _JOIN_LIMIT:
        return [head + masked]
    return [head, masked]


def payload_buffer_python(size: int, /) -> Tuple[bytearray, memoryview]:
    """A ``bytearray`` of ``size`` bytes and a writable view of it (the caller converts the
    filled ``bytearray`` to ``bytes``: the copy the accelerated version avoids)."""
    if size < 2:
        raise ValueError("payload_buffer() needs a size of at least 2")
    data = bytearray(size)
    return data, memoryview(data)


def _load() -> Tuple[
    Callable[[bytearray, bool, int], ParseResult],
    Callable[[int, BytesLike, bytes], List[bytes]],
    Callable[[int], Tuple[Union[bytes, bytearray], memoryview]],
]:
    speedups = compiled.load()
    if speedups is None:
        return parse_frame_python, client_frame_python, payload_buffer_python
    return speedups.parse_frame, speedups.client_frame, speedups.payload_buffer


parse_frame, client_frame, payload_buffer = _load()

#: True when the compiled helpers are in use.
ACCELERATED = parse_frame is not parse_frame_python
