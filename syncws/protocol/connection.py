"""RFC 6455 after the opening handshake, for either end of a connection.

``receive_data`` takes bytes from the network and returns events; replies the protocol owes
the peer (a pong for a ping, the echo of a Close) are queued for
:meth:`Connection.data_to_send`. A protocol error is reported as a :class:`Failure` event, and
the caller sends the failing Close (:meth:`Connection.send_failure_close`) when its own policy
says: at once, or once the application has answered what came before the error.
``send_message``/``send_ping``/``send_close`` return frames as lists of buffers. No sockets,
threads or clocks: the caller owns those.

What it enforces, in both roles: reserved bits without a negotiated extension, fragment
sequences, control frames between fragments, close codes and bodies, UTF-8 of text messages
(fail-fast: an invalid sequence fails the connection as soon as its bytes arrive, even in the
middle of a frame), and ``max_message_size`` (after decompression).

What the role changes (RFC 6455 section 5.1): a client masks every frame it sends and fails
the connection on a masked frame from the server; a server sends unmasked frames and fails the
connection on an unmasked frame from the client. Everything else is the same rule book.
"""

from __future__ import annotations

import codecs
import enum
from typing import Any, Iterator, List, NamedTuple, Optional, Type, Union

from ..errors import MessageTooBig, PayloadError, ProtocolError
from .frames import Frame, FrameParser, Opcode, client_frame, serialize_frame
from .mask import BytesLike

__all__ = [
    "Role",
    "State",
    "Message",
    "Ping",
    "Pong",
    "CloseFrame",
    "CloseReceived",
    "Failure",
    "Event",
    "Connection",
    "ClientConnection",
    "is_valid_close_code",
    "parse_close_payload",
    "close_payload",
]


class Role(enum.Enum):
    """Which end of the connection this side is; decides the masking direction."""

    CLIENT = "client"
    SERVER = "server"


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


class CloseFrame(NamedTuple):
    """The content of a Close frame, sent or received: ``code`` is 1005 when it had no body."""

    code: int
    reason: str


#: The event for a Close from the peer (the name the engine has always used).
CloseReceived: "Type[CloseFrame]" = CloseFrame


class Failure(NamedTuple):
    error: ProtocolError


Event = Union[Message, Ping, Pong, CloseFrame, Failure]

_VALID_CODES = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})


def is_valid_close_code(code: int) -> bool:
    """Codes a Close frame may carry on the wire (RFC 6455 7.4 and the IANA registry)."""
    return code in _VALID_CODES or 3000 <= code <= 4999


def parse_close_payload(payload: bytes) -> CloseFrame:
    """Code and reason of a Close body; raises ``ProtocolError``/``PayloadError`` when invalid."""
    if not payload:
        return CloseFrame(1005, "")
    if len(payload) == 1:
        raise ProtocolError("Close frame with a 1-byte body")
    code = int.from_bytes(payload[:2], "big")
    if not is_valid_close_code(code):
        raise ProtocolError(f"invalid close code {code}")
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadError("close reason is not valid UTF-8") from None
    return CloseFrame(code, reason)


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


class Connection:
    """RFC 6455 for one end of a connection.

    :param role: :attr:`Role.CLIENT` or :attr:`Role.SERVER` (the masking direction).
    :param max_message_size: the largest message accepted, in bytes after decompression
        (``None``: no limit); a larger one fails the connection with 1009.
    :param extension: the negotiated permessage-deflate codec (``encode``/``decode_frame``,
        see :class:`syncws.protocol.deflate.PerMessageDeflate`), or ``None``.
    :param echo_reason: whether the echo of the peer's Close repeats its reason too (RFC 6455
        only asks for the code; the test server repeats both, so that an echo server's close
        shows what was sent).
    """

    def __init__(
        self,
        role: Role = Role.CLIENT,
        *,
        max_message_size: Optional[int] = None,
        extension: Any = None,
        echo_reason: bool = False,
    ) -> None:
        self.role = role
        self._echo_reason = echo_reason
        self.state = State.OPEN
        self.max_message_size = max_message_size
        self.extension = extension
        self._masks = role is Role.CLIENT
        self._parser = FrameParser(
            expect_masked=role is Role.SERVER, max_payload=max_message_size
        )
        self._outgoing: List[bytes] = []
        # The close code a Failure left owed, until send_failure_close() hands out its Close.
        self._failure_code: Optional[int] = None
        self.close_sent: Optional[CloseFrame] = None  #: the Close we sent (1005: no body)
        self.close_received: Optional[CloseFrame] = None  #: the peer's Close
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
                    if event.__class__ is CloseFrame:
                        return events
            if self._parser.buffered:
                self._peek_text()
        except ProtocolError as error:
            events.append(self._fail(error))
        return events

    def split_frames(self, data: BytesLike) -> Iterator[Frame]:
        """Parse ``data`` into frames without applying the connection's rules to them.

        For a peer that looks at frames one by one before (or instead of) handing them to
        :meth:`receive_frame` (the test server's ``recv_frame``). The frame-level checks (the
        role's masking, reserved opcodes, control frame sizes) still raise ``ProtocolError``.
        Use either this with :meth:`receive_frame` or :meth:`receive_data`, not both.
        """
        return self._parser.feed(data)

    def receive_frame(self, frame: Frame) -> Optional[Event]:
        """Apply the connection's rules to one frame from :meth:`split_frames`.

        Returns the event it completes (a :class:`Failure` when it breaks the protocol), or
        ``None``; frames after a Close or a failure are ignored.
        """
        if self.state is State.CLOSED or self.close_received is not None:
            return None
        try:
            return self._frame(frame)
        except ProtocolError as error:
            return self._fail(error)

    def receive_frame_error(self, error: ProtocolError) -> Optional[Failure]:
        """:meth:`split_frames` raised ``error``, and the frames before it were handled: fail the
        connection (``None`` if it had already ended)."""
        if self.state is State.CLOSED or self.close_received is not None:
            return None
        return self._fail(error)

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

    def data_to_send(self) -> List[bytes]:
        """Frames the protocol owes the peer (pongs, the Close echo), in order."""
        out = self._outgoing
        if not out:
            return out  # the usual case: nothing owed, no new list
        self._outgoing = []
        return out

    def send_failure_close(self) -> List[bytes]:
        """After a :class:`Failure`: the Close that fails the connection (the error's close
        code, no reason), once; ``[]`` when none is owed (a Close had gone out already).

        Input stops at the failure, but until this is called the connection still accepts
        messages, so the caller may first let the application answer what came before the
        error (an echo then goes out ahead of the failing Close)."""
        code = self._failure_code
        if code is None:
            return []
        self._failure_code = None
        return self._close_frame(code, "")

    def _fail(self, error: ProtocolError) -> Failure:
        if self.close_sent is None and self.state is not State.CLOSED:
            self._failure_code = error.close_code
        self.state = State.CLOSED
        self._parts = []
        self._text = None
        return Failure(error)

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
            payload = frame.payload
            if opcode == Opcode.BINARY:
                return Message(payload if payload.__class__ is bytes else bytes(payload))
            try:
                return Message(payload.decode("utf-8"))
            except UnicodeDecodeError:
                raise PayloadError("invalid UTF-8 in a text message") from None
        if frame.rsv2 or frame.rsv3:
            raise ProtocolError("reserved bits RSV2/RSV3 set without a negotiated extension")
        if opcode >= 8:
            if frame.rsv1:
                raise ProtocolError("RSV1 set on a control frame")
            return self._control(frame)
        first = self._begin_or_continue(frame)
        if self._compressed:
            self._add_payload(self._decompress(frame, first), frame.fin)
        else:
            self._add_payload(frame.payload, frame.fin)
        return self._finish_message() if frame.fin else None

    def _begin_or_continue(self, frame: Frame) -> bool:
        """Check a data frame's place in the message sequence; whether it starts a message."""
        if frame.opcode == Opcode.CONT:
            if self._opcode is None:
                raise ProtocolError("continuation frame without a message to continue")
            if frame.rsv1:
                raise ProtocolError("RSV1 set on a continuation frame")
            return False
        if self._opcode is not None:
            raise ProtocolError("new data frame before the previous message was finished")
        if frame.rsv1 and self.extension is None:
            raise ProtocolError("RSV1 set without a negotiated extension")
        self._opcode = frame.opcode
        self._compressed = frame.rsv1
        self._size = 0
        if frame.opcode == Opcode.TEXT:
            if not self._peeked:
                self._text = _TextAssembler()
        else:
            self._text = None
        return True

    def _decompress(self, frame: Frame, first: bool) -> BytesLike:
        limit = None
        if self.max_message_size is not None:
            limit = self.max_message_size - self._size
        return self.extension.decode_frame(  # type: ignore[no-any-return]
            frame.payload, first=first, fin=frame.fin, compressed=True, max_size=limit
        )

    def _add_payload(self, payload: BytesLike, fin: bool) -> None:
        """One frame's (decompressed) payload: size limit, UTF-8, then into the message."""
        self._size += len(payload)
        limit = self.max_message_size
        if limit is not None:
            # Unreachable (hence not covered): the frame parser (max_payload) and the inflater
            # (max_size) stop a message before it passes the limit; this guard keeps a future
            # change to either from letting one grow without bound.
            if self._size > limit:  # pragma: no cover
                raise MessageTooBig(f"message exceeds max_message_size ({limit} bytes)")
            if not self._compressed:
                self._parser.max_payload = limit - self._size
        if self._text is not None:
            self._text.feed(payload[self._peeked :] if self._peeked else payload, fin)
            self._peeked = 0
        else:
            self._parts.append(payload if payload.__class__ is bytes else bytes(payload))

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
                self._outgoing.extend(serialize_frame(Opcode.PONG, frame.payload, mask=self._masks))
            return Ping(frame.payload)
        if opcode == Opcode.PONG:
            return Pong(frame.payload)
        close = parse_close_payload(frame.payload)
        self.close_received = close
        if self.close_sent is None:
            echo_code = None if close.code == 1005 else close.code
            reason = close.reason if self._echo_reason else ""
            self._outgoing.extend(self._close_frame(echo_code, reason))
        self.state = State.CLOSED
        return close

    # -- outbound -----------------------------------------------------------------------

    def send_message(self, payload: BytesLike, text: bool) -> List[bytes]:
        """Frames for one whole message (``payload`` already UTF-8 for text)."""
        if not self.accepting_messages:
            raise ProtocolError("cannot send a message after the closing handshake started")
        return self.encode_message(payload, text)

    def encode_message(self, payload: BytesLike, text: bool) -> List[bytes]:
        """Frames for a message that was accepted while :attr:`accepting_messages` held.

        Framing may happen later than acceptance (the engine compresses and masks on its
        writer thread, in order), so this does not look at the state again. Messages must be
        encoded in the order they were accepted: they share one compression context.
        """
        opcode = 1 if text else 2
        rsv1 = False
        if self.extension is not None:
            payload, rsv1 = self.extension.encode(bytes(payload))
        if self._masks:
            return client_frame(opcode, payload, rsv1)
        return serialize_frame(opcode, payload, rsv1=rsv1, mask=False)

    @property
    def accepting_messages(self) -> bool:
        """Whether a message may still be sent: no Close went out, and none is due but a
        failing one the caller has not sent yet (see :meth:`send_failure_close`)."""
        if self._failure_code is not None:
            return True
        return self.close_sent is None and self.state is not State.CLOSED

    def send_ping(self, payload: bytes = b"") -> List[bytes]:
        """A Ping frame (``payload`` at most 125 bytes)."""
        return serialize_frame(Opcode.PING, payload, mask=self._masks)

    def send_close(self, code: Optional[int] = None, reason: str = "") -> List[bytes]:
        """Start the closing handshake (no code → an empty Close body)."""
        if self.close_sent is not None or self.state is State.CLOSED:
            return []
        frames = self._close_frame(code, reason)
        self.state = State.CLOSING
        return frames

    def close_sent_elsewhere(self, body: BytesLike) -> None:
        """A Close frame with ``body`` went out that this object did not build (a scripted one,
        valid or not).

        From now on the connection behaves as after :meth:`send_close`: no pong for a ping, no
        echo of the peer's Close, no failing Close. :attr:`close_sent` records the body as far
        as it can be read (code 1005 when it has none).
        """
        if self.close_sent is None:
            body = bytes(body)
            code = int.from_bytes(body[:2], "big") if len(body) >= 2 else 1005
            self.close_sent = CloseFrame(code, body[2:].decode("utf-8", "replace"))
            self._failure_code = None  # that Close ended a failed connection: none is owed
            if self.state is State.OPEN:
                self.state = State.CLOSING

    def _close_frame(self, code: Optional[int], reason: str) -> List[bytes]:
        self.close_sent = CloseFrame(1005 if code is None else code, reason)
        return serialize_frame(Opcode.CLOSE, close_payload(code, reason), mask=self._masks)


class ClientConnection(Connection):
    """:class:`Connection` in the client role (masks what it sends)."""

    def __init__(self, *, max_message_size: Optional[int] = None, extension: Any = None) -> None:
        super().__init__(Role.CLIENT, max_message_size=max_message_size, extension=extension)
