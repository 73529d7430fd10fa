"""RFC 6455 frames: an incremental parser and a serializer, for either end of a connection.

The parser takes bytes as they arrive (in chunks of any size, down to one byte) and yields
whole frames. It enforces what a single frame can break: reserved opcodes, control frames that
are fragmented or longer than 125 bytes, a masked frame where the role forbids one (or an
unmasked one where it requires one), a 64-bit length with its top bit set, and a payload
length above ``max_payload``. Rules that need more context (RSV bits vs. negotiated
extensions, fragment sequences, UTF-8) live in :mod:`syncws.protocol.connection`.
"""

from __future__ import annotations

import enum
import os
import struct
import threading
from typing import Iterator, List, NamedTuple, NoReturn, Optional, Tuple, Union

from ..errors import MessageTooBig, ProtocolError
from . import _accel
from .mask import BytesLike, apply_mask

__all__ = [
    "Opcode",
    "Frame",
    "FrameParser",
    "frame_header",
    "serialize_frame",
    "client_frame",
    "CONTROL_OPCODES",
    "DATA_OPCODES",
]


class Opcode(enum.IntEnum):
    """The frame opcodes of RFC 6455 (section 5.2): continuation, text, binary, and the
    control frames close, ping and pong. Other values (3-7, 11-15) are reserved."""

    CONT = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


DATA_OPCODES = frozenset({Opcode.CONT, Opcode.TEXT, Opcode.BINARY})
CONTROL_OPCODES = frozenset({Opcode.CLOSE, Opcode.PING, Opcode.PONG})
_KNOWN = {int(op): op for op in Opcode}

_PACK_16 = struct.Struct("!BBH").pack
_PACK_64 = struct.Struct("!BBQ").pack
_UNPACK_16 = struct.Struct("!H").unpack_from
_UNPACK_64 = struct.Struct("!Q").unpack_from


class Frame(NamedTuple):
    """One frame as it was on the wire, payload unmasked.

    ``opcode`` (an :class:`Opcode`, or the raw int of a reserved one), ``payload``, and the
    header bits ``fin``, ``rsv1``, ``rsv2``, ``rsv3``.
    """

    opcode: Opcode
    payload: bytes
    fin: bool = True
    rsv1: bool = False
    rsv2: bool = False
    rsv3: bool = False


def frame_header(
    opcode: int,
    length: int,
    *,
    fin: bool = True,
    rsv1: bool = False,
    rsv2: bool = False,
    rsv3: bool = False,
    mask_key: Optional[bytes] = None,
) -> bytes:
    """The header bytes of a frame (including the mask key when ``mask_key`` is given)."""
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | (0x20 if rsv2 else 0)
    first |= (0x10 if rsv3 else 0) | (opcode & 0x0F)
    mask_bit = 0x80 if mask_key is not None else 0
    if length < 126:
        head = bytes((first, mask_bit | length))
    elif length < 65536:
        head = _PACK_16(first, mask_bit | 126, length)
    else:
        head = _PACK_64(first, mask_bit | 127, length)
    return head + mask_key if mask_key is not None else head


def serialize_frame(
    opcode: int,
    payload: BytesLike = b"",
    *,
    fin: bool = True,
    rsv1: bool = False,
    rsv2: bool = False,
    rsv3: bool = False,
    mask: bool = True,
    mask_key: Optional[bytes] = None,
) -> List[bytes]:
    """A frame as a list of buffers (header, payload) ready for ``sendmsg``/``b"".join``.

    Clients mask every frame with a fresh key from ``os.urandom`` (RFC 6455 section 5.3);
    ``mask_key`` exists for tests that need a known key.
    """
    length = len(payload)
    if mask:
        key = mask_key if mask_key is not None else _new_mask_key()
        header = frame_header(
            opcode, length, fin=fin, rsv1=rsv1, rsv2=rsv2, rsv3=rsv3, mask_key=key
        )
        if not length:
            return [header]
        return [header, apply_mask(payload, key)]
    header = frame_header(opcode, length, fin=fin, rsv1=rsv1, rsv2=rsv2, rsv3=rsv3)
    if not length:
        return [header]
    return [header, payload if isinstance(payload, bytes) else bytes(payload)]


def _extended_length(buf: bytearray, available: int) -> Optional[Tuple[int, int]]:
    """``(payload length, header size before any mask key)``, or None until it has arrived."""
    length = buf[1] & 0x7F
    if length < 126:
        return length, 2
    if length == 126:
        return (_UNPACK_16(buf, 2)[0], 4) if available >= 4 else None
    return (_UNPACK_64(buf, 2)[0], 10) if available >= 10 else None


_key_lock = threading.Lock()
_key_pool = b""
_key_offset = 0


def _new_mask_key() -> bytes:
    """Four bytes from ``os.urandom``, drawn from a pool refilled 4 KiB at a time.

    Every key is still fresh output of the OS's cryptographically strong generator and used
    once; the pool only saves a system call per frame.
    """
    global _key_pool, _key_offset
    with _key_lock:
        offset = _key_offset
        if offset >= len(_key_pool):
            _key_pool = os.urandom(4096)
            offset = 0
        _key_offset = offset + 4
        return _key_pool[offset : offset + 4]


def client_frame(opcode: int, payload: BytesLike, rsv1: bool = False) -> List[bytes]:
    """A final, masked client frame: ``serialize_frame`` specialised for ``send()``'s hot path
    (one buffer up to 1024 bytes: small frames are cheaper joined than scattered)."""
    return _accel.client_frame((0xC0 if rsv1 else 0x80) | opcode, payload, _new_mask_key())


class FrameParser:
    """Turns a byte stream into :class:`Frame` objects.

    ``expect_masked`` is ``False`` for a client (server frames must not be masked) and
    ``True`` for a server. ``max_payload`` (``None`` = unlimited) is checked against each
    data frame's declared length before any of its payload is buffered, so an enormous length
    fails at once with :class:`MessageTooBig`; the connection lowers it as a message grows.
    Control frames are not messages: they are held to 125 bytes whatever ``max_payload`` is.
    """

    __slots__ = (
        "expect_masked", "max_payload", "_buffer", "_failed", "_direct", "_direct_filled",
        "_direct_first", "_direct_view", "_direct_slice",
    )

    def __init__(self, *, expect_masked: bool = False, max_payload: Optional[int] = None) -> None:
        self.expect_masked = expect_masked
        self.max_payload = max_payload
        self._buffer = bytearray()
        self._failed = False
        # Direct mode: a large frame's payload is received straight into its own buffer.
        # The payload object: the final bytes with the accelerator (see _accel.payload_buffer).
        self._direct: Optional[Union[bytes, bytearray]] = None
        self._direct_view: Optional[memoryview] = None  # writable view of _direct
        self._direct_slice: Optional[memoryview] = None  # the part of it last handed out
        self._direct_filled = 0
        self._direct_first = 0

    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned as part of a frame."""
        return len(self._buffer)

    def feed(self, data: BytesLike) -> Iterator[Frame]:
        """Add ``data`` and yield every frame it completes (raises ``ProtocolError`` on a bad one).

        The generator must be consumed; frames after an error are never produced.
        """
        if self._failed:
            return
        buf = self._buffer
        buf += data
        while True:
            frame = self._next(buf)
            if frame is None:
                return
            yield frame

    def _next(self, buf: bytearray) -> Optional[Frame]:
        max_payload = self.max_payload
        parsed = _accel.parse_frame(buf, self.expect_masked, -1 if max_payload is None else max_payload)
        if parsed is None:
            return None
        if isinstance(parsed, int):
            self._fail(self._parse_error(parsed, buf))
        first, payload = parsed
        return Frame(
            _KNOWN[first & 0x0F],
            payload,
            bool(first & 0x80),
            bool(first & 0x40),
            bool(first & 0x20),
            bool(first & 0x10),
        )

    def _parse_error(self, code: int, buf: bytearray) -> ProtocolError:
        """The exception for a ``_accel.PARSE_*`` code about the frame at the front of ``buf``."""
        if code == _accel.PARSE_RESERVED_OPCODE:
            return ProtocolError(f"reserved opcode {buf[0] & 0x0F:#x}")
        if code == _accel.PARSE_FRAGMENTED_CONTROL:
            return ProtocolError("fragmented control frame")
        if code == _accel.PARSE_CONTROL_TOO_LONG:
            return ProtocolError("control frame payload longer than 125 bytes")
        if code == _accel.PARSE_UNEXPECTED_MASK:
            return ProtocolError("the server sent a masked frame")
        if code == _accel.PARSE_MISSING_MASK:
            return ProtocolError("the client sent an unmasked frame")
        if code == _accel.PARSE_LENGTH_TOP_BIT:
            return ProtocolError("64-bit payload length has its top bit set")
        length = _extended_length(buf, len(buf))[0]  # type: ignore[index]
        return MessageTooBig(f"frame of {length} bytes exceeds the message size limit")

    # -- direct mode ------------------------------------------------------------------------

    def begin_direct(self, min_remaining: int, max_length: int) -> Optional[memoryview]:
        """Switch to direct mode if an unmasked frame's header is complete, at least
        ``min_remaining`` payload bytes are still to come and the payload is at most
        ``max_length`` bytes.

        Returns a writable view of where the rest of the payload goes: the caller receives into
        it (``recv_into``) and reports with :meth:`direct_received`. This saves copying every
        byte of a large message through the parser's buffer. The payload's buffer is allocated
        whole before its bytes arrive, so ``max_length`` bounds what a header alone can make
        us allocate (longer frames are buffered as they arrive). Call only right after ``feed``
        (which validated the header).
        """
        if self._direct_view is not None:
            return self._hand_out(self._direct_view[self._direct_filled :])
        buf = self._buffer
        available = len(buf)
        if available < 2 or self.expect_masked or buf[1] & 0x80:
            return None
        parsed = _extended_length(buf, available)
        if parsed is None:
            return None
        length, offset = parsed
        have = available - offset
        if length - have < min_remaining or length > max_length:
            return None
        payload, view = _accel.payload_buffer(length)
        view[:have] = memoryview(buf)[offset:available]
        self._direct_first = buf[0]
        self._direct = payload
        self._direct_view = view
        self._direct_filled = have
        buf.clear()
        return self._hand_out(view[have:])

    def _hand_out(self, view: memoryview) -> memoryview:
        """Remember the view given to the caller, so that it can be released (made unusable)
        once the payload is complete: with the accelerator the payload is an immutable
        ``bytes`` handed to the user, and a view of it must not outlive that moment."""
        if self._direct_slice is not None:
            self._direct_slice.release()
        self._direct_slice = view
        return view

    @property
    def in_direct_mode(self) -> bool:
        """Whether a large frame's payload is being received straight into its own buffer."""
        return self._direct is not None

    def direct_received(self, count: int) -> Optional[Frame]:
        """``count`` more payload bytes arrived in the direct view; the frame once complete.

        The completed frame's payload is ``bytes`` (with the accelerator) or a ``bytearray``
        nobody else references; the views handed out for it are released.
        """
        payload = self._direct
        handed_out = self._direct_slice  # set whenever in direct mode: see _hand_out()
        assert payload is not None and self._direct_view is not None and handed_out is not None
        self._direct_filled += count
        if self._direct_filled < len(payload):
            return None
        # Nothing can write into the payload any more.
        self._direct_view.release()
        handed_out.release()
        self._direct = self._direct_view = self._direct_slice = None
        first = self._direct_first
        return Frame(
            _KNOWN[first & 0x0F],
            payload,  # type: ignore[arg-type]
            bool(first & 0x80),
            bool(first & 0x40),
            bool(first & 0x20),
            bool(first & 0x10),
        )

    def pending_payload(self, skip: int = 0, *, text_only: bool = True) -> Optional[Tuple[int, bytes]]:
        """Received bytes of an incomplete unmasked data frame's payload, after the first ``skip``.

        For fail-fast UTF-8 checks of a large text frame while it arrives. ``None`` when no
        data frame header is complete, and (with ``text_only``) for frames that cannot be part
        of a text message (binary, control), before anything is copied. The first item is the
        frame's first header byte (FIN, RSV bits, opcode).
        """
        direct = self._direct
        if direct is not None:
            first = self._direct_first
            if text_only and first & 0x0F == Opcode.BINARY or self._direct_filled <= skip:
                return None
            with memoryview(direct) as view:
                return first, view[skip : self._direct_filled].tobytes()
        buf = self._buffer
        available = len(buf)
        if available < 2 or self.expect_masked:
            return None
        first = buf[0]
        opcode = first & 0x0F
        if opcode >= 8 or (text_only and opcode == Opcode.BINARY):
            return None
        length = buf[1] & 0x7F
        offset = 2 if length < 126 else (4 if length == 126 else 10)
        start = offset + skip
        if available <= start:
            return None
        with memoryview(buf) as view:
            return first, view[start:available].tobytes()

    def _fail(self, error: ProtocolError) -> NoReturn:
        self._failed = True
        self._buffer.clear()
        raise error
