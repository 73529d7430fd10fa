"""The protocol's hot helpers, compiled (``syncws._speedups``) or in pure Python.

Each helper has a pure-Python twin here with exactly the same results (``tests/test_accel.py``
compares them on random and edge inputs). The compiled versions are used when the accelerator
was built at install time, unless ``SYNCWS_NO_EXTENSIONS`` is set in the environment, as for
masking (:mod:`syncws.protocol.mask`):

- :func:`parse_frame` takes the next frame off the front of the receive buffer (the header
  checks of :class:`~syncws.protocol.frames.FrameParser`, the payload copy and unmasking);
- :func:`client_frame` builds a whole masked frame (header, key, masked payload);
- :func:`payload_buffer` allocates the object a large payload is received into: with the
  accelerator the final ``bytes`` itself, so the payload is copied once (kernel to ``bytes``)
  instead of twice (kernel to ``bytearray``, ``bytearray`` to ``bytes``);
- :func:`utf8_check` validates UTF-8 incrementally without decoding.
"""

from __future__ import annotations

import os
from typing import Callable, List, Tuple, Union

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
    "UTF8_INVALID",
    "parse_frame",
    "client_frame",
    "payload_buffer",
    "utf8_check",
    "parse_frame_python",
    "client_frame_python",
    "payload_buffer_python",
    "utf8_check_python",
]

# Why parse_frame refused a frame (its negative results); the same values as in _speedups.c.
PARSE_RESERVED_OPCODE = -1
PARSE_FRAGMENTED_CONTROL = -2
PARSE_CONTROL_TOO_LONG = -3
PARSE_UNEXPECTED_MASK = -4  # a masked frame where frames must not be masked (a client)
PARSE_MISSING_MASK = -5  # an unmasked frame where frames must be masked (a server)
PARSE_LENGTH_TOP_BIT = -6
PARSE_TOO_BIG = -7

#: What :func:`utf8_check` returns once the bytes cannot be UTF-8 whatever follows.
UTF8_INVALID = -1

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
        on the declared length, before any payload is waited for.
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
    if max_payload >= 0 and length > max_payload:
        return PARSE_TOO_BIG
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


# utf8_check's state: continuation bytes still needed (low 2 bits) and the range the next
# byte must fall in (from bit 2): 0 = 80-BF, 1 = A0-BF (after E0: no overlong forms),
# 2 = 80-9F (after ED: no surrogates), 3 = 90-BF (after F0), 4 = 80-8F (after F4: <= U+10FFFF).
_NEXT_RANGES = ((0x80, 0xBF), (0xA0, 0xBF), (0x80, 0x9F), (0x90, 0xBF), (0x80, 0x8F))
_MAX_STATE = (4 << 2) | 3


def _utf8_lead_state(lead: int) -> int:
    """The state after a non-ASCII lead byte, or UTF8_INVALID."""
    if 0xC2 <= lead <= 0xDF:
        return 1
    if 0xE0 <= lead <= 0xEF:
        return 2 | ((1 if lead == 0xE0 else 2 if lead == 0xED else 0) << 2)
    if 0xF0 <= lead <= 0xF4:
        return 3 | ((3 if lead == 0xF0 else 4 if lead == 0xF4 else 0) << 2)
    return UTF8_INVALID


def _utf8_step(data: bytes, state: int) -> int:
    """Byte-at-a-time state machine: for the few bytes around a cut character."""
    for byte in data:
        if state == 0:
            if byte >= 0x80:
                state = _utf8_lead_state(byte)
                if state == UTF8_INVALID:
                    return UTF8_INVALID
            continue
        low, high = _NEXT_RANGES[state >> 2]
        if not low <= byte <= high:
            return UTF8_INVALID
        state = (state & 3) - 1
    return state


def utf8_check_python(data: BytesLike, state: int, /) -> int:
    """Validate the next piece of a UTF-8 stream without keeping the decoded text.

    :param data: the next bytes of the stream.
    :param state: ``0`` at the start of the stream, then the value the previous call returned.
    :returns: the new state: ``0`` when the bytes so far end on a character boundary (so the
        stream is valid if it ends here), another non-negative value in the middle of a
        character, :data:`UTF8_INVALID` as soon as no continuation can make it valid.
    """
    if not 0 <= state <= _MAX_STATE:
        raise ValueError("invalid utf8_check state")
    data = memoryview(data).tobytes() if not isinstance(data, bytes) else data
    if state:
        # Finish the character cut at the previous piece (at most 3 bytes), byte by byte.
        cut = _utf8_step(data[: state & 3], state)
        if cut != 0 or len(data) <= state & 3:
            return cut
        data = data[state & 3 :]
    try:
        data.decode("utf-8")  # CPython's decoder: the same rules, at C speed
    except UnicodeDecodeError as error:
        if error.reason != "unexpected end of data" or error.end != len(data):
            return UTF8_INVALID
        return _utf8_step(data[error.start :], 0)  # a valid prefix cut inside a character
    return 0


def _load() -> Tuple[
    Callable[[bytearray, bool, int], ParseResult],
    Callable[[int, BytesLike, bytes], List[bytes]],
    Callable[[int], Tuple[Union[bytes, bytearray], memoryview]],
    Callable[[BytesLike, int], int],
]:
    python = (parse_frame_python, client_frame_python, payload_buffer_python, utf8_check_python)
    if os.environ.get("SYNCWS_NO_EXTENSIONS"):
        return python
    try:
        from syncws import _speedups  # type: ignore[attr-defined]
    except ImportError:
        return python
    return (
        _speedups.parse_frame,
        _speedups.client_frame,
        _speedups.payload_buffer,
        _speedups.utf8_check,
    )


parse_frame, client_frame, payload_buffer, utf8_check = _load()

#: True when the compiled helpers are in use.
ACCELERATED = parse_frame is not parse_frame_python
