"""The client's RFC 6455 state machine after the opening handshake.

``receive_data`` takes bytes from the network and returns events; replies the protocol owes
the peer (a pong for a ping, the echo of a Close, the Close that fails a connection) are
queued for :meth:`ClientConnection.data_to_send`. ``send_message``/``send_ping``/``send_close``
return frames as lists of buffers. No sockets, threads or clocks: the engine owns those.

What it enforces: reserved bits without a negotiated extension, fragment sequences, control
frames between fragments, close codes and bodies, UTF-8 of text messages (fail-fast: an
invalid sequence fails the connection as soon as its bytes arrive, even in the middle of a
frame), and ``max_message_size`` (after decompression).
"""

from __future__ import annotations

import codecs
import enum
from typing import Any, List, NamedTuple, Optional, Union

from ..errors import MessageTooBig, PayloadError, ProtocolError
from .frames import Frame, FrameParser, Opcode, client_frame, serialize_frame
from .mask import BytesLike

__all__ = [
    "State",
    "Message",
    "Ping",
    "Pong",
    "CloseReceived",
    "Failure",
    "ClientConnection",
    "is_valid_close_code",
    "parse_close_payload",
    "close_payload",
]


class State(enum.Enum):
    OPEN = "OPEN"
    CLOSING = "CLOSING"  #: we sent a Close and wait for the peer's
    CLOSED = "CLOSED"  #: a Close went both ways, or the connection failed


class Message(NamedTuple):
    data: Union[str, bytes]


class Ping(NamedTuple):
    payload: bytes


class Pong(NamedTuple):
    payload: bytes


class CloseReceived(NamedTuple):
    code: int  #: 1005 when the Close had no body
    reason: str


class Failure(NamedTuple):
    error: ProtocolError


Event = Union[Message, Ping, Pong, CloseReceived, Failure]

_EXTRA_VALID_CODES = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})


def is_valid_close_code(code: int) -> bool:
    """Codes a Close frame may carry on the wire (RFC 6455 7.4 and the IANA registry)."""
    return code in _EXTRA_VALID_CODES or 3000 <= code <= 4999


def parse_close_payload(payload: bytes) -> CloseReceived:
    """Code and reason of a Close body; raises ``ProtocolError``/``PayloadError`` when invalid."""
    if not payload:
        return CloseReceived(1005, "")
    if len(payload) == 1:
        raise ProtocolError("Close frame with a 1-byte body")
    code = int.from_bytes(payload[:2], "big")
    if not is_valid_close_code(code):
        raise ProtocolError(f"invalid close code {code}")
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadError("close reason is not valid UTF-8") from None
    return CloseReceived(code, reason)


def close_payload(code: Optional[int], reason: Union[str, bytes] = b"") -> bytes:
    """The body of a Close frame; no code means an empty body."""
    if code is None:
        return b""
    if isinstance(reason, str):
        reason = reason.encode("utf-8")
    return code.to_bytes(2, "big") + reason


_Utf8Decoder = codecs.getincrementaldecoder("utf-8")


class _TextAssembler:
    """Incremental fail-fast UTF-8 decoding of one text message."""

    __slots__ = ("_decoder", "_parts")

    def __init__(self) -> None:
        self._decoder = _Utf8Decoder()
        self._parts: List[str] = []

    def feed(self, data: BytesLike, final: bool) -> None:
        try:
            text = self._decoder.decode(data, final)
        except UnicodeDecodeError:
            raise PayloadError("invalid UTF-8 in a text message") from None
        if text:
            self._parts.append(text)
        if not final:
            pending = self._decoder.getstate()[0]
            # CPython waits for the third byte of ED A0..BF; those always encode a surrogate.
            if len(pending) >= 2 and pending[0] == 0xED and pending[1] >= 0xA0:
                raise PayloadError("invalid UTF-8 in a text message (surrogate)")

    def text(self) -> str:
        parts = self._parts
        return parts[0] if len(parts) == 1 else "".join(parts)


class ClientConnection:
    """RFC 6455 for the client side; ``extension`` is a negotiated permessage-deflate or None."""

    def __init__(
        self,
        *,
        max_message_size: Optional[int] = None,
        extension: Any = None,
    ) -> None:
        self.state = State.OPEN
        self.max_message_size = max_message_size
        self.extension = extension
        self._parser = FrameParser(expect_masked=False, max_payload=max_message_size)
        self._outgoing: List[bytes] = []
        # The Close that fails the connection, until handed out: see data_to_send().
        self._failure_close: Optional[List[bytes]] = None
        self.close_sent: Optional[CloseReceived] = None  # what we sent (code 1005 = no body)
        self.close_received: Optional[CloseReceived] = None
        # The message being received.
        self._opcode: Optional[Opcode] = None
        self._compressed = False
        self._size = 0
        self._parts: List[bytes] = []
        self._text: Optional[_TextAssembler] = None
        self._peeked = 0  # bytes of the pending frame already given to the UTF-8 decoder

    # -- inbound ------------------------------------------------------------------------

    def receive_data(self, data: BytesLike) -> List[Event]:
        """Feed bytes from the network; returns the events they complete."""
        if self.state is State.CLOSED or self.close_received is not None:
            return []  # everything after a Close is ignored
        events: List[Event] = []
        try:
            for frame in self._parser.feed(data):
                event = self._frame(frame)
                if event is not None:
                    events.append(event)
                    if isinstance(event, CloseReceived):
                        return events
            if self._parser.buffered:
                self._peek_text()
        except ProtocolError as error:
            events.append(self._fail(error))
        return events

    #: Frames with at least this much payload still to come are received in direct mode.
    DIRECT_MIN = 64 * 1024
    #: ... unless longer than this: direct mode allocates the whole payload when the header
    #: arrives, and a header alone (10 bytes declaring 2**62) must not make us allocate more.
    DIRECT_MAX = 64 * 1024 * 1024

    def direct_buffer(self) -> Optional[memoryview]:
        """Where to receive the rest of a large frame's payload, or ``None`` (use receive_data).

        Receiving into it and reporting with :meth:`receive_direct` saves a copy of every
        byte of large messages; the rules enforced are the same.
        """
        parser = self._parser
        if parser.buffered < 2 and not parser.in_direct_mode:
            return None  # the usual case between frames: nothing pending
        if self.close_received is not None or self.state is State.CLOSED:
            return None
        return parser.begin_direct(self.DIRECT_MIN, self.DIRECT_MAX)

    def receive_direct(self, count: int) -> List[Event]:
        """``count`` bytes were received into the view :meth:`direct_buffer` returned."""
        try:
            frame = self._parser.direct_received(count)
            if frame is None:
                self._peek_text()
                return []
            event = self._frame(frame)
        except ProtocolError as error:
            return [self._fail(error)]
        return [] if event is None else [event]

    def data_to_send(self, *, hold_failure_close: bool = False) -> List[bytes]:
        """Frames the protocol owes the peer (pongs, the Close echo, a failing Close), in order.

        With ``hold_failure_close`` the Close that fails the connection stays behind for a later
        call. Until it is handed out the application may still send: the engine uses this to
        let handlers answer the messages that came before the error (input stops at once).
        """
        out = self._outgoing
        failure_close = self._failure_close
        if failure_close is not None and not hold_failure_close:
            self._failure_close = None
            out = out + failure_close
        elif not out:
            return out  # the usual case: nothing owed, no new list
        self._outgoing = []
        return out

    def _fail(self, error: ProtocolError) -> Failure:
        if self.close_sent is None and self.state is not State.CLOSED:
            self._failure_close = self._close_frame(error.close_code, "")
        self.state = State.CLOSED
        self._parts = []
        self._text = None
        return Failure(error)

    def fail(self, error: ProtocolError) -> Failure:
        """Fail the connection for a reason found outside this class (e.g. a keepalive timeout)."""
        return self._fail(error)

    def _peek_text(self) -> None:
        """Validate the received part of an incomplete text frame (fail fast on bad UTF-8)."""
        if self._opcode is not None and (self._opcode != Opcode.TEXT or self._compressed):
            return  # continuing a binary or compressed message: nothing to check early
        pending = self._parser.pending_payload(self._peeked)
        if pending is None:
            return
        first_byte, new = pending
        opcode = first_byte & 0x0F
        if opcode == Opcode.TEXT and self._opcode is None and not first_byte & 0x70:
            if self._text is None:
                self._text = _TextAssembler()
        elif opcode != Opcode.CONT or self._opcode != Opcode.TEXT or self._compressed:
            return
        self._text.feed(new, False)  # type: ignore[union-attr]
        self._peeked += len(new)

    def _frame(self, frame: Frame) -> Optional[Event]:
        opcode = frame.opcode
        if (
            frame.fin
            and (opcode == Opcode.TEXT or opcode == Opcode.BINARY)
            and not (frame.rsv1 or frame.rsv2 or frame.rsv3)
            and self._opcode is None
            and not self._peeked
        ):
            # Fast path: a whole uncompressed message in one frame (the parser already held it
            # to max_message_size), decoded in one call.
            if opcode == Opcode.BINARY:
                payload = frame.payload
                return Message(payload if payload.__class__ is bytes else bytes(payload))
            try:
                return Message(frame.payload.decode("utf-8"))
            except UnicodeDecodeError:
                raise PayloadError("invalid UTF-8 in a text message") from None
        if frame.rsv2 or frame.rsv3:
            raise ProtocolError("reserved bits RSV2/RSV3 set without a negotiated extension")
        if opcode >= 8:
            if frame.rsv1:
                raise ProtocolError("RSV1 set on a control frame")
            return self._control(frame)
        if opcode == Opcode.CONT:
            if self._opcode is None:
                raise ProtocolError("continuation frame without a message to continue")
            if frame.rsv1:
                raise ProtocolError("RSV1 set on a continuation frame")
            first = False
        else:
            if self._opcode is not None:
                raise ProtocolError("new data frame before the previous message was finished")
            if frame.rsv1 and self.extension is None:
                raise ProtocolError("RSV1 set without a negotiated extension")
            self._opcode = opcode
            self._compressed = frame.rsv1
            self._size = 0
            if opcode == Opcode.TEXT:
                if not self._peeked:
                    self._text = _TextAssembler()
            else:
                self._text = None
            first = True
        payload = frame.payload
        if self._compressed:
            limit = None
            if self.max_message_size is not None:
                limit = self.max_message_size - self._size
            payload = self.extension.decode_frame(
                payload, first=first, fin=frame.fin, compressed=True, max_size=limit
            )
        self._size += len(payload)
        if self.max_message_size is not None:
            # Unreachable (hence not covered): the frame parser (max_payload) and the inflater
            # (max_size) stop a message before it passes the limit; this guard keeps a future
            # change to either from letting one grow without bound.
            if self._size > self.max_message_size:  # pragma: no cover
                raise MessageTooBig(
                    f"message exceeds max_message_size ({self.max_message_size} bytes)"
                )
            if not self._compressed:
                self._parser.max_payload = self.max_message_size - self._size
        if self._text is not None:
            self._text.feed(payload[self._peeked :] if self._peeked else payload, frame.fin)
            self._peeked = 0
        else:
            self._parts.append(payload if payload.__class__ is bytes else bytes(payload))
        if not frame.fin:
            return None
        return self._finish_message()

    def _finish_message(self) -> Message:
        if self._text is not None:
            data: Union[str, bytes] = self._text.text()
        else:
            parts = self._parts
            data = parts[0] if len(parts) == 1 else b"".join(parts)
        self._opcode = None
        self._text = None
        self._parts = []
        self._parser.max_payload = self.max_message_size
        return Message(data)

    def _control(self, frame: Frame) -> Optional[Event]:
        opcode = frame.opcode
        if opcode == Opcode.PING:
            if self.close_sent is None:
                self._outgoing.extend(serialize_frame(Opcode.PONG, frame.payload))
            return Ping(frame.payload)
        if opcode == Opcode.PONG:
            return Pong(frame.payload)
        close = parse_close_payload(frame.payload)
        self.close_received = close
        if self.close_sent is None:
            echo_code = None if close.code == 1005 else close.code
            self._outgoing.extend(self._close_frame(echo_code, ""))
        self.state = State.CLOSED
        return close

    # -- outbound -----------------------------------------------------------------------

    def send_message(self, payload: BytesLike, text: bool) -> List[bytes]:
        """Frames for one whole message (``payload`` already UTF-8 for text)."""
        if not self.accepting_messages:
            raise ProtocolError("cannot send a message after the closing handshake started")
        opcode = 1 if text else 2
        if self.extension is None:
            return client_frame(opcode, payload)
        payload, rsv1 = self.extension.encode(bytes(payload))
        return client_frame(opcode, payload, rsv1)

    @property
    def accepting_messages(self) -> bool:
        """Whether a message may still be sent: no Close went out (a held failing one aside)."""
        if self._failure_close is not None:
            return True
        return self.close_sent is None and self.state is not State.CLOSED

    def send_ping(self, payload: bytes = b"") -> List[bytes]:
        return serialize_frame(Opcode.PING, payload)

    def send_close(self, code: Optional[int] = None, reason: str = "") -> List[bytes]:
        """Start the closing handshake (no code → an empty Close body)."""
        if self.close_sent is not None or self.state is State.CLOSED:
            return []
        frames = self._close_frame(code, reason)
        self.state = State.CLOSING
        return frames

    def _close_frame(self, code: Optional[int], reason: str) -> List[bytes]:
        self.close_sent = CloseReceived(1005 if code is None else code, reason)
        return serialize_frame(Opcode.CLOSE, close_payload(code, reason))

    @property
    def closing_handshake_done(self) -> bool:
        return self.close_sent is not None and self.close_received is not None
