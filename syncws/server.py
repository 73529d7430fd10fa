"""A small threaded RFC 6455 server: the echo server of ``python -m syncws demo``/``serve``, and
the scriptable peer of syncws's own test suite.

It is a test tool, not a production server: plain blocking sockets, one thread per connection
(that thread both reads and writes), and every knob needed to misbehave on purpose (reserved
opcodes, masked frames, bad Close bodies, broken handshakes, byte-at-a-time writes, resets).

Typical use::

    with WebSocketServer() as server:              # echo server on a free loopback port
        ws = syncws.connect(server.url)

    def script(conn):                               # runs on the connection's thread
        conn.send_frame(Opcode.TEXT, b"hi", rsv1=True)
        assert conn.expect_close().code == 1002

    with WebSocketServer(script) as server: ...

    with WebSocketServer(hold) as server:           # drive the connection from the test itself
        ws = syncws.WebSocket(server.url)
        conn = server.accepted()
        conn.send("hello")

When a handler returns (or raises), the server closes TCP first (FIN, then waits up to
``close_timeout`` for the client's FIN), as RFC 6455 wants of a server. Exceptions a handler
raises other than disconnects and protocol errors (an ``AssertionError`` in a script, say) are
kept in ``server.errors``; the pytest fixtures in :mod:`syncws.testing` re-raise them.

Extensions: this module implements none. Its plug-in point is ``extensions=``, callables that
take the client's ``Sec-WebSocket-Extensions`` values and return ``(response header value,
codec)`` or ``None`` (see :data:`ServerExtension`, :class:`ExtensionCodec`): the signature of
:func:`syncws.protocol.deflate.server_negotiate`, so ``extensions=[server_negotiate]`` (or a
``functools.partial`` with ``DeflateOptions``) turns permessage-deflate on. The codec then
decodes every incoming data frame in :meth:`ServerConnection.recv` and encodes every message
sent with :meth:`ServerConnection.send`; ``send_frame`` and friends send bytes as given.

Protocol: this module implements none of RFC 6455 itself. What the server receives goes
through the same sans-I/O core as the client's (:class:`syncws.protocol.connection.Connection`
in the server role: frame rules, fragments, close codes, UTF-8, the extension), and the
opening handshake through :class:`syncws.protocol.handshake.ServerHandshake`; so the test
peer and the client cannot disagree about the protocol. What it sends is scripted: frames are
built by :func:`syncws.protocol.frames.serialize_frame` exactly as asked, valid or not.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import queue
import select
import socket
import ssl
import struct
import sys
import threading
import time
from collections import deque
from typing import (
    Any,
    Callable,
    Deque,
    Iterable,
    List,
    NamedTuple,
    NoReturn,
    Optional,
    Protocol,
    Sequence,
    Tuple,
    Union,
)


from .errors import ProtocolError, WebSocketError
from .protocol.connection import (
    CloseFrame,
    Connection,
    Failure,
    Message,
    Ping,
    Pong,
    Role,
    close_payload,
)
from .protocol.frames import Frame, Opcode, serialize_frame
from .protocol.handshake import (
    Request,
    RequestRejected,
    ServerHandshake,
    accept_headers,
    check_request,
    header_values,
    response_bytes,
)

__all__ = [
    "WebSocketServer",
    "ServerConnection",
    "Request",
    "HandshakeResponse",
    "CloseInfo",
    "ClientClosed",
    "ServerExtension",
    "ExtensionCodec",
    "echo",
    "hold",
    "serve_forever",
]

logger = logging.getLogger("syncws.server")
logger.addHandler(logging.NullHandler())

_RECV_SIZE = 256 * 1024
_LINGER_RESET = struct.pack("HH" if sys.platform == "win32" else "ii", 1, 0)


class CloseInfo(NamedTuple):
    """A Close frame's content: ``code`` is ``None`` for an empty body."""

    code: Optional[int]
    reason: str


class ClientClosed(Exception):
    """The client ended the connection.

    ``close`` is the client's :class:`CloseInfo` when it sent a Close frame (raised by
    :meth:`ServerConnection.recv` after answering it), ``None`` when TCP ended without one.
    """

    def __init__(self, close: Optional[CloseInfo]) -> None:
        if close is None:
            text = "the client closed TCP without a Close frame"
        else:
            text = f"the client sent Close {close.code}"
            if close.reason:
                text += f" ({close.reason!r})"
        super().__init__(text)
        self.close = close
        self.code: Optional[int] = close.code if close else None
        self.reason: str = close.reason if close else ""


class ExtensionCodec(Protocol):
    """A negotiated per-message extension, as ``syncws.protocol.deflate.PerMessageDeflate``."""

    def encode(self, payload: bytes) -> Tuple[bytes, bool]:
        """One whole outgoing message: ``(wire payload, RSV1)``."""

    def decode_frame(
        self, payload: bytes, *, first: bool, fin: bool, compressed: bool, max_size: Optional[int]
    ) -> bytes:
        """Decode one incoming data frame's ``payload``.

        ``first``/``fin``: whether it is the message's first/last frame; ``compressed`` is
        RSV1 of the message's first frame; ``max_size`` bounds the decoded message (``None``:
        no bound).
        """


#: An extension negotiator: the client's ``Sec-WebSocket-Extensions`` header values in,
#: ``(response header value, codec)`` out to accept, ``None`` to decline.
ServerExtension = Callable[[List[str]], Optional[Tuple[str, ExtensionCodec]]]


@dataclasses.dataclass
class HandshakeResponse:
    """What the server answers to the opening handshake; every field can be scripted.

    - ``reason`` ``None`` means the standard phrase for ``status``.
    - ``body`` follows the head; a ``Content-Length`` is added for non-101 answers that lack one.
    - ``raw``: exact bytes to send instead of head and body.
    - ``extra``: bytes sent right after the head in the same ``sendall`` (e.g. a first frame).
    - ``delay``: seconds to wait before answering; ``chunk_size``: send in pieces of this size.
    - ``action``: ``"send"`` (answer), ``"drop"`` (close TCP without answering), ``"reset"``
      (reset TCP without answering) or ``"hang"`` (never answer; wait until the server stops).
    - ``codec``: the extension codec the connection uses after this answer.

    - ``status`` and ``headers`` (a list of ``(name, value)`` pairs, duplicates allowed)
      make the head.

    The connection counts as upgraded (the handler runs) when what was sent is a 101: ``status``
    for a normal answer, the status line of ``raw`` otherwise.
    """

    status: int = 101
    reason: Optional[str] = None
    headers: List[Tuple[str, str]] = dataclasses.field(default_factory=list)
    body: bytes = b""
    raw: Optional[bytes] = None
    delay: float = 0.0
    extra: bytes = b""
    chunk_size: Optional[int] = None
    action: str = "send"
    codec: Optional[ExtensionCodec] = dataclasses.field(default=None, repr=False)

    @classmethod
    def accept(
        cls,
        request: Request,
        *,
        protocol: Optional[str] = None,
        extensions: Optional[str] = None,
        headers: Iterable[Tuple[str, str]] = (),
        **fields: object,
    ) -> HandshakeResponse:
        """A valid 101 for ``request``, with the right ``Sec-WebSocket-Accept``.

        ``protocol``/``extensions`` add ``Sec-WebSocket-Protocol``/``-Extensions``, ``headers``
        more headers; ``fields`` set any other field (``extra=…``, ``delay=…``, ``codec=…``).
        """
        response = cls(
            headers=accept_headers(request, protocol=protocol, extensions=extensions),
            **fields,  # type: ignore[arg-type]
        )
        response.headers.extend(headers)
        return response

    @classmethod
    def drop(cls) -> HandshakeResponse:
        """Close TCP without answering."""
        return cls(action="drop")

    @classmethod
    def reset(cls) -> HandshakeResponse:
        """Reset TCP (RST) without answering."""
        return cls(action="reset")

    @classmethod
    def hang(cls) -> HandshakeResponse:
        """Never answer: keep the connection open until the server stops."""
        return cls(action="hang")

    def header(self, name: str) -> Optional[str]:
        """The first value of header ``name`` (case-insensitive), or ``None``."""
        values = header_values(self.headers, name)
        return values[0] if values else None

    def add_header(self, name: str, value: str) -> HandshakeResponse:
        """Append the header ``name: value`` (even a duplicate); returns ``self`` for chaining."""
        self.headers.append((name, value))
        return self

    def remove_header(self, name: str) -> HandshakeResponse:
        """Remove every header called ``name`` (case-insensitive); returns ``self``."""
        lname = name.lower()
        self.headers = [(k, v) for k, v in self.headers if k.lower() != lname]
        return self

    def set_header(self, name: str, value: str) -> HandshakeResponse:
        """Replace header ``name`` with one ``name: value`` (added if absent); returns ``self``."""
        lname = name.lower()
        for index, (key, _) in enumerate(self.headers):
            if key.lower() == lname:
                self.headers[index] = (name, value)
                self.headers[index + 1 :] = [
                    (k, v) for k, v in self.headers[index + 1 :] if k.lower() != lname
                ]
                return self
        return self.add_header(name, value)

    def pad_headers(self, size: int, line_length: int = 1000) -> HandshakeResponse:
        """Add ``X-Padding-N`` headers totalling about ``size`` bytes (a huge header block),
        each line about ``line_length`` bytes long; returns ``self``."""
        filler = "a" * max(1, line_length - 20)
        for index in range(max(1, size // (len(filler) + 20))):
            self.headers.append((f"X-Padding-{index}", filler))
        return self

    @property
    def upgrades(self) -> bool:
        """Whether sending this response upgrades the connection (a 101)."""
        if self.action != "send":
            return False
        if self.raw is None:
            return self.status == 101
        return self.raw.split(b"\r\n", 1)[0].split(b" ")[1:2] == [b"101"]

    def to_bytes(self) -> bytes:
        """The bytes this response sends: ``raw`` or head and body, then ``extra``."""
        if self.raw is not None:
            return self.raw + self.extra
        return response_bytes(self.status, self.reason, self.headers, self.body) + self.extra

    def copy(self) -> HandshakeResponse:
        """A copy whose header list can be changed independently."""
        return dataclasses.replace(self, headers=list(self.headers))


HandshakeHook = Union[
    HandshakeResponse, Callable[[Request, HandshakeResponse], Optional[HandshakeResponse]]
]
Handler = Callable[["ServerConnection"], None]


def _deadline(timeout: Optional[float]) -> Optional[float]:
    return None if timeout is None else time.monotonic() + timeout


def _remaining(deadline: Optional[float]) -> Optional[float]:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _wait_readable(sock: socket.socket, timeout: Optional[float]) -> bool:
    """Whether ``sock`` has something to read (data, EOF or an error) within ``timeout``."""
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(None if timeout is None else int(timeout * 1000) + 1))
        return bool(select.select([sock], [], [], timeout)[0])
    except ValueError as exc:  # the socket was closed by another thread
        raise OSError(errno.EBADF, "socket closed") from exc


def _as_bytes(data: Union[str, bytes, bytearray, memoryview]) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def _close_info(close: CloseFrame) -> CloseInfo:
    return CloseInfo(None if close.code == 1005 else close.code, close.reason)


class ServerConnection:
    """One client connection, handed to the handler after the opening handshake.

    Reading (``recv``, ``recv_frame``, ``expect_close``, ``wait_eof``) belongs to one thread at a
    time; sending methods are serialized by a lock, so a second thread may send (plain TCP only:
    do not read and write a TLS connection from two threads at once).

    The server creates it for each accepted TCP connection: ``server`` is the
    :class:`WebSocketServer`, ``sock`` the accepted socket (TLS-wrapped for ``wss``),
    ``address`` the client's address and ``name`` the name of the connection's thread.
    """

    def __init__(self, server: WebSocketServer, sock: socket.socket, address: Tuple[Any, ...], name: str):
        self.server = server
        self.sock = sock
        self.address = address
        self.name = name
        self.request: Optional[Request] = None  #: ``None`` if no valid request head arrived
        self.response: Optional[HandshakeResponse] = None  #: what the server answered
        self.handshake_error: Optional[BaseException] = None  #: why the handshake phase ended early
        self.upgraded = False  #: a 101 was sent and the handler runs
        self.protocol = ""  #: the ``Sec-WebSocket-Protocol`` the server sent
        self.pongs: List[bytes] = []  #: payloads of the pongs received by recv()/expect_close()
        self.closed_by_client: Optional[CloseInfo] = None  #: the client's Close, once received
        self.close_sent = False  #: whether the server has sent a Close frame
        self.eof = False  #: whether the client's side of TCP has ended
        # A duplicate descriptor of the same socket: shutdown/linger through it work whatever
        # wraps ``sock`` (TLS), and from any thread. Never change its blocking mode.
        self._ctl = sock.dup()
        # The protocol core in the server role: it splits the input into frames (recv_frame
        # hands them out as they are) and applies RFC 6455 to those that recv() handles.
        self._core = Connection(Role.SERVER, echo_reason=True)
        self._frames: Deque[Frame] = deque()
        self._error: Optional[ProtocolError] = None  # what the frame parser found, pending
        self._failure: Optional[ProtocolError] = None  # why recv() failed the connection
        self._send_lock = threading.Lock()
        self._released = threading.Event()
        self._done = threading.Event()
        self._published = False  # given to accepted()
        self._listed = False  # in server.connections
        self._aborted = False

    def __repr__(self) -> str:
        return f"<ServerConnection {self.name} from {self.address}>"

    @property
    def codec(self) -> Optional[ExtensionCodec]:
        """The negotiated extension, if any."""
        return self._core.extension  # type: ignore[no-any-return]

    @codec.setter
    def codec(self, codec: Optional[ExtensionCodec]) -> None:
        self._core.extension = codec

    # -- receiving -------------------------------------------------------------------------

    def recv(self, timeout: Optional[float] = None) -> Union[str, bytes]:
        """The next message: ``str`` for text, ``bytes`` for binary.

        Answers pings, records pongs in ``pongs``, reassembles fragments, validates UTF-8 and
        applies the negotiated codec. On the client's Close it answers with a Close carrying the
        same code and reason (an empty Close for an empty one) unless the server already sent one, then
        raises :class:`ClientClosed`; it raises it too when TCP ends. When the client breaks the
        protocol it sends a Close with the error's code (1002, 1007) and raises the
        ``ProtocolError``. ``TimeoutError`` after ``timeout`` seconds (partial messages are kept).
        """
        if self.closed_by_client is not None:
            raise ClientClosed(self.closed_by_client)
        if self._failure is not None:
            raise self._failure
        deadline = _deadline(timeout)
        while True:
            try:
                frame = self.recv_frame(_remaining(deadline))
            except ProtocolError as exc:
                self._fail(self._core.receive_frame_error(exc), exc)
            message = self._on_frame(frame)
            if message is not None:
                return message

    def recv_frame(self, timeout: Optional[float] = None) -> Frame:
        """The next frame exactly as received (unmasked), with no automatic handling.

        Raises the ``ProtocolError`` the frame parser found (an unmasked frame, say) once the
        frames before it have been returned, :class:`ClientClosed` when TCP has ended, and
        ``TimeoutError`` after ``timeout`` seconds.
        """
        deadline = _deadline(timeout)
        while not self._frames:
            if self._error is not None:
                raise self._error
            if self.eof:
                raise ClientClosed(None)
            self._fill(deadline)
        return self._frames.popleft()

    def expect_close(self, timeout: Optional[float] = 5.0, *, reply: bool = True) -> CloseInfo:
        """Wait for the client's Close frame and return its code and reason.

        Pings are answered and pongs recorded meanwhile; any data frame first raises
        ``AssertionError``. With ``reply`` the Close is echoed (as :meth:`recv` does) unless the
        server already sent one. Raises :class:`ClientClosed` if TCP ends without a Close, and
        fails the connection (as :meth:`recv` does) if the Close frame is invalid;
        ``TimeoutError`` after ``timeout`` seconds.
        """
        if self.closed_by_client is not None:
            return self.closed_by_client
        deadline = _deadline(timeout)
        while True:
            frame = self.recv_frame(_remaining(deadline))
            if frame.opcode == Opcode.CLOSE:
                return self._on_close(self._core.receive_frame(frame), reply)
            if frame.opcode in (Opcode.PING, Opcode.PONG):
                self._on_frame(frame)
                continue
            raise AssertionError(f"expected a Close frame from the client, got {_describe(frame)}")

    def wait_eof(self, timeout: Optional[float] = 5.0) -> str:
        """Discard input until the client ends TCP: ``"eof"`` (FIN) or ``"reset"`` (RST).

        ``TimeoutError`` if neither happens within ``timeout`` seconds.
        """
        deadline = _deadline(timeout)
        self._frames.clear()
        try:
            while not self.eof:
                self._fill(deadline)
        except ConnectionResetError:
            return "reset"
        return "eof"

    def _fill(self, deadline: Optional[float]) -> None:
        if not _wait_readable(self.sock, _remaining(deadline)):
            raise TimeoutError("no data from the client in time")
        data = self.sock.recv(_RECV_SIZE)
        if data:
            self._feed(data)
        else:
            self.eof = True

    def _feed(self, data: bytes) -> None:
        try:
            self._frames.extend(self._core.split_frames(data))
        except ProtocolError as exc:  # kept until the frames before it have been read
            self._error = exc

    def _on_frame(self, frame: Frame) -> Union[str, bytes, None]:
        """Hand one frame to the protocol core and act on its event; a message is returned."""
        event = self._core.receive_frame(frame)
        kind = event.__class__
        if kind is Message:
            return event.data  # type: ignore[union-attr]
        if kind is Ping:
            self._send_owed()
        elif kind is Pong:
            self.pongs.append(event.payload)  # type: ignore[union-attr]
        elif kind is Failure:
            self._fail(event, event.error)  # type: ignore[arg-type, union-attr]
        elif kind is CloseFrame:
            raise ClientClosed(self._on_close(event, reply=True))
        return None

    def _on_close(self, event: object, reply: bool) -> CloseInfo:
        """The core's answer to a Close frame: its content, or the failure it caused."""
        if isinstance(event, Failure):
            self._fail(event, event.error)
        assert isinstance(event, CloseFrame)
        self.closed_by_client = _close_info(event)
        if reply:
            self._send_owed()
        else:
            self._core.data_to_send()  # the echo the core prepared is not sent
        return self.closed_by_client

    def _send_owed(self) -> None:
        """Send what the core owes the client (a pong, the Close echo)."""
        frames = self._core.data_to_send()
        if frames:
            self.close_sent = self.close_sent or self._core.close_sent is not None
            self._send_quietly(b"".join(frames))

    def _fail(self, failure: Optional[Failure], error: ProtocolError) -> NoReturn:
        """The connection failed: send the core's Close with the error's code (if one is owed)
        and raise ``error``; later reads raise it again, whatever else the client sent."""
        self._failure = error
        self._frames.clear()
        if failure is not None:
            frames = self._core.data_to_send() + self._core.send_failure_close()
            if frames:
                self.close_sent = True
                self._send_quietly(b"".join(frames))
        raise error

    # -- sending ---------------------------------------------------------------------------

    def send(
        self,
        data: Union[str, bytes, bytearray, memoryview],
        *,
        fragment_size: Optional[int] = None,
        chunk_size: Optional[int] = None,
        delay: float = 0.0,
    ) -> None:
        """Send ``data`` as a message: ``str`` as text, bytes-like as binary, through the
        negotiated codec.

        ``fragment_size`` splits it into frames of that many payload bytes; ``chunk_size`` and
        ``delay`` are passed to :meth:`send_raw`.
        """
        opcode = Opcode.TEXT if isinstance(data, str) else Opcode.BINARY
        payload = _as_bytes(data)
        rsv1 = False
        if self.codec is not None:
            payload, rsv1 = self.codec.encode(payload)
        parts: List[Union[bytes, memoryview]] = [payload]
        if fragment_size:
            view = memoryview(payload)
            parts = [view[i : i + fragment_size] for i in range(0, len(view), fragment_size)]
        self.send_fragments(opcode, parts or [b""], rsv1=rsv1, chunk_size=chunk_size, delay=delay)

    def send_frame(
        self,
        opcode: int,
        payload: Union[str, bytes, bytearray, memoryview] = b"",
        *,
        fin: bool = True,
        rsv1: bool = False,
        rsv2: bool = False,
        rsv3: bool = False,
        mask: bool = False,
        chunk_size: Optional[int] = None,
        delay: float = 0.0,
    ) -> None:
        """Send one frame exactly as described: any opcode 0–15, any bits, any length, masked
        or not (a ``str`` payload is UTF-8 encoded). Nothing is checked.

        ``fin``, ``rsv1``, ``rsv2`` and ``rsv3`` set the header bits, ``mask`` masks the
        payload with a random key (servers must not); ``chunk_size`` and ``delay`` are passed
        to :meth:`send_raw`.
        """
        data = serialize_frame(
            opcode, _as_bytes(payload), fin=fin, rsv1=rsv1, rsv2=rsv2, rsv3=rsv3, mask=mask
        )
        self.send_raw(b"".join(data), chunk_size=chunk_size, delay=delay)

    def send_fragments(
        self,
        opcode: int,
        parts: Sequence[Union[str, bytes, bytearray, memoryview]],
        *,
        rsv1: bool = False,
        mask: bool = False,
        chunk_size: Optional[int] = None,
        delay: float = 0.0,
    ) -> None:
        """Send one message as ``len(parts)`` frames: ``opcode`` then continuations, FIN on the
        last; ``rsv1`` is set on the first frame only, ``mask`` masks every frame. All frames
        go out in one write (``chunk_size`` and ``delay`` as for :meth:`send_raw`)."""
        if not parts:
            raise ValueError("send_fragments needs at least one part")
        last = len(parts) - 1
        buffers: List[bytes] = []
        for index, part in enumerate(parts):
            buffers += serialize_frame(
                opcode if index == 0 else Opcode.CONT,
                _as_bytes(part),
                fin=index == last,
                rsv1=rsv1 and index == 0,
                mask=mask,
            )
        self.send_raw(b"".join(buffers), chunk_size=chunk_size, delay=delay)

    def send_raw(
        self,
        data: Union[bytes, bytearray, memoryview],
        *,
        chunk_size: Optional[int] = None,
        delay: float = 0.0,
    ) -> None:
        """Write ``data`` as is; with ``chunk_size``, in writes of that many bytes, waiting
        ``delay`` seconds after each (TCP_NODELAY is on, so each write is its own segment)."""
        with self._send_lock:
            if not chunk_size:
                self.sock.sendall(data)
                return
            view = memoryview(data)
            for start in range(0, len(view), chunk_size):
                self.sock.sendall(view[start : start + chunk_size])
                if delay:
                    self.sleep(delay)

    def ping(self, payload: Union[str, bytes] = b"") -> None:
        """Send a Ping frame carrying ``payload`` (at most 125 bytes for a valid frame)."""
        self.send_frame(Opcode.PING, payload)

    def pong(self, payload: Union[str, bytes] = b"") -> None:
        """Send an (unsolicited) Pong frame carrying ``payload``."""
        self.send_frame(Opcode.PONG, payload)

    def close(
        self, code: Optional[int] = None, reason: str = "", *, raw_body: Optional[bytes] = None
    ) -> None:
        """Send a Close frame (TCP stays open): no body without ``code``, else the code and the
        UTF-8 ``reason``; ``raw_body`` sends any body at all (1 byte, invalid UTF-8, …)."""
        if raw_body is not None:
            body = bytes(raw_body)
        elif code is None:
            if reason:
                raise ValueError("a close reason needs a code")
            body = b""
        else:
            body = close_payload(code, reason)
        self.close_sent = True
        self._core.close_sent_elsewhere(body)
        self.send_frame(Opcode.CLOSE, body)

    def _send_quietly(self, data: bytes) -> None:
        """Automatic answers (pong, Close): a client that already left is not an error."""
        try:
            self.send_raw(data)
        except OSError as exc:
            logger.debug("%s: could not send an automatic answer: %s", self.name, exc)

    # -- TCP -------------------------------------------------------------------------------

    def abort(self) -> None:
        """Reset the connection (RST): SO_LINGER 0, then close. Safe from any thread."""
        self._aborted = True
        self._released.set()
        try:
            self._ctl.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            self._ctl.shutdown(socket.SHUT_RD)  # wakes a thread blocked reading; sends nothing
        except OSError:
            pass
        self.sock.close()
        self._ctl.close()

    def shutdown_write(self) -> None:
        """Half-close: send TCP FIN (no TLS close_notify); reading still works."""
        self._ctl.shutdown(socket.SHUT_WR)

    def sleep(self, seconds: float) -> bool:
        """Sleep ``seconds``, but return early (``False``) when the server is stopping."""
        return not self.server._stopping.wait(seconds)

    def release(self) -> None:
        """End the :func:`hold` handler: the server then closes the connection."""
        self._released.set()

    def join(self, timeout: Optional[float] = 5.0) -> bool:
        """Wait until the server is done with this connection (handler returned, TCP closed);
        ``False`` if that takes longer than ``timeout`` seconds."""
        return self._done.wait(timeout)

    @property
    def finished(self) -> bool:
        """Whether the server is done with this connection."""
        return self._done.is_set()

    # -- the connection's thread -----------------------------------------------------------

    def _run(self) -> None:
        server = self.server
        try:
            try:
                if server.ssl_context is not None:
                    self.sock = server.ssl_context.wrap_socket(self.sock, server_side=True)
                response = self._read_handshake()
            except (OSError, ClientClosed) as exc:
                self.handshake_error = exc
                logger.debug("%s: no handshake: %s", self.name, exc)
                return
            self.response = response
            self.protocol = response.header("Sec-WebSocket-Protocol") or ""
            self.codec = response.codec
            self.upgraded = self._answer(response)
            self._publish()
            if self.upgraded:
                server.handler(self)
        except (ClientClosed, WebSocketError, OSError) as exc:
            logger.debug("%s: ended: %r", self.name, exc)
        except Exception as exc:
            server.errors.append(exc)
            logger.error("%s: handler failed", self.name, exc_info=True)
        finally:
            self._publish()
            self._finish()
            self._done.set()

    def _read_handshake(self) -> HandshakeResponse:
        handshake = ServerHandshake(self.server.max_request_size)
        outcome = None
        while outcome is None:
            data = self.sock.recv(_RECV_SIZE)
            if not data:
                self.eof = True
                raise ClientClosed(None)
            outcome = handshake.receive_data(data)
        if isinstance(outcome, RequestRejected):
            return HandshakeResponse(outcome.status, body=outcome.body)
        self.request = outcome
        self._feed(handshake.leftover)  # frames sent right behind the request are kept
        return self.server.respond(outcome)

    def _answer(self, response: HandshakeResponse) -> bool:
        """Carry out ``response``; whether the connection is now upgraded. It is listed in
        ``connections`` just before the answer goes out, so that a client that saw the answer
        finds it there (``accepted()`` gives it once the answer went out)."""
        if response.delay:
            self.sleep(response.delay)
        self._list()
        if response.action == "hang":
            self._publish()
            self.server._stopping.wait()
        elif response.action == "reset":
            self.abort()
        elif response.action == "send":
            self.send_raw(response.to_bytes(), chunk_size=response.chunk_size)
        elif response.action != "drop":
            raise ValueError(f"unknown handshake action {response.action!r}")
        return response.upgrades

    def _list(self) -> None:
        if not self._listed:
            self._listed = True
            self.server.connections.append(self)

    def _publish(self) -> None:
        self._list()
        if not self._published:
            self._published = True
            self.server._accepted.put(self)

    def _finish(self) -> None:
        """Close TCP, server first: close_notify (TLS), FIN, then wait for the client's FIN."""
        if not self._aborted:
            if isinstance(self.sock, ssl.SSLSocket):
                try:  # non-blocking: send close_notify without waiting for the client's
                    self.sock.setblocking(False)
                    self.sock.unwrap()
                except (OSError, ValueError):
                    pass
            deadline = _deadline(self.server.close_timeout)
            try:
                self._ctl.shutdown(socket.SHUT_WR)
                while _wait_readable(self._ctl, _remaining(deadline)):
                    try:
                        if not self._ctl.recv(_RECV_SIZE):
                            break
                    except BlockingIOError:
                        continue
            except OSError:
                pass
        self.sock.close()
        self._ctl.close()

    def _interrupt(self) -> None:
        """Wake this connection's thread wherever it blocks (the server is stopping)."""
        self._released.set()
        try:
            self._ctl.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _describe(frame: Frame) -> str:
    rsv = f"{frame.rsv1:d}{frame.rsv2:d}{frame.rsv3:d}"
    return (
        f"{Opcode(frame.opcode).name} frame (fin={frame.fin}, rsv={rsv}, "
        f"{len(frame.payload)} bytes: {frame.payload[:40]!r})"
    )


def echo(conn: ServerConnection) -> None:
    """The default handler: sends every message ``conn`` receives back with its own type,
    until the client closes."""
    while True:
        conn.send(conn.recv())


def hold(conn: ServerConnection) -> None:
    """A handler that does nothing until ``conn.release()``, ``conn.abort()`` or ``stop()``,
    so that the test itself drives the connection it gets from ``server.accepted()``."""
    conn._released.wait()


class WebSocketServer:
    """A threaded RFC 6455 server for demos and tests; see the module's documentation.

    ``handler(conn)`` runs on the connection's thread after a successful handshake (default:
    :func:`echo`). ``handshake`` replaces or alters the answer to the opening handshake: a
    :class:`HandshakeResponse` sent as is, or a callable ``(request, default_response)``
    returning the response to send, or ``None`` to send ``default_response`` (which it may
    have changed in place). ``subprotocols`` lists the server's subprotocols by preference;
    ``extensions`` the :data:`ServerExtension` negotiators tried in order (the first that
    accepts the client's offer wins).

    ``host`` and ``port`` are where it listens (port 0: a free one, see :attr:`port`);
    ``ssl_context`` (a server-side :class:`ssl.SSLContext`) makes it a ``wss://`` server;
    ``close_timeout`` bounds the wait for the client's FIN after the handler returns;
    ``max_request_size`` bounds the request head in bytes (a larger one is answered with 431).
    Used as a context manager, it is started on entry and stopped on exit.
    """

    def __init__(
        self,
        handler: Optional[Handler] = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: Optional[ssl.SSLContext] = None,
        handshake: Optional[HandshakeHook] = None,
        subprotocols: Sequence[str] = (),
        extensions: Sequence[ServerExtension] = (),
        close_timeout: float = 5.0,
        max_request_size: int = 65536,
    ) -> None:
        self.handler: Handler = handler if handler is not None else echo
        self.host = host
        self.ssl_context = ssl_context
        self.handshake = handshake
        self.subprotocols = list(subprotocols)
        self.extensions = list(extensions)
        self.close_timeout = close_timeout
        self.max_request_size = max_request_size
        #: every connection whose handshake was read, in order, listed before its answer went out
        self.connections: List[ServerConnection] = []
        #: unexpected exceptions raised by handlers and handshake hooks
        self.errors: List[BaseException] = []
        self._requested_port = port
        self._accepted: "queue.Queue[ServerConnection]" = queue.Queue()
        self._stopping = threading.Event()
        self._listener: Optional[socket.socket] = None
        self._wake_r: Optional[socket.socket] = None
        self._wake_w: Optional[socket.socket] = None
        self._threads: List[Tuple[threading.Thread, ServerConnection]] = []
        self._accept_thread: Optional[threading.Thread] = None
        self._count = 0
        self._port = 0

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> WebSocketServer:
        """Bind, listen and start accepting on a daemon thread; returns ``self``."""
        if self._listener is not None:
            raise RuntimeError("server already started")
        family, kind, proto, _, address = socket.getaddrinfo(
            self.host or None, self._requested_port, type=socket.SOCK_STREAM,
            flags=socket.AI_PASSIVE,
        )[0]
        listener = socket.socket(family, kind, proto)
        try:
            if os.name != "nt":
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(address)
            listener.listen(128)
            listener.setblocking(False)
        except OSError:
            listener.close()
            raise
        self._listener = listener
        self._port = int(listener.getsockname()[1])
        self._wake_r, self._wake_w = socket.socketpair()
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"syncws-server-accept-{self.port}", daemon=True
        )
        self._accept_thread.start()
        logger.info("listening on %s", self.url)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, interrupt every connection and join every thread (bounded by
        ``timeout`` overall). A handler stuck in ``time.sleep`` is left to its daemon thread;
        use ``conn.sleep`` in scripts so that stopping interrupts it."""
        if self._listener is None or self._stopping.is_set():
            return
        deadline = time.monotonic() + timeout
        self._stopping.set()
        assert self._wake_w is not None and self._accept_thread is not None
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        self._accept_thread.join(timeout)
        for _, conn in self._threads:
            conn._interrupt()
        for thread, _ in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                logger.warning("%s did not end within %s s", thread.name, timeout)
        for sock in (self._listener, self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()

    def __enter__(self) -> WebSocketServer:
        """Start the server (unless already started) and return it."""
        return self if self._listener is not None else self.start()

    def __exit__(self, *exc_info: object) -> None:
        """Stop the server (see :meth:`stop`)."""
        self.stop()

    # -- addresses -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port the server listens on (after ``start()``)."""
        if self._listener is None:
            raise RuntimeError("server not started")
        return self._port

    @property
    def url(self) -> str:
        """``ws://host:port/`` (``wss://`` with an ``ssl_context``; IPv6 hosts in brackets)."""
        host = self.host
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        scheme = "wss" if self.ssl_context is not None else "ws"
        return f"{scheme}://{host}:{self.port}/"

    def accepted(self, timeout: Optional[float] = 5.0) -> ServerConnection:
        """The next connection whose handshake phase has ended (answered, dropped, failed or
        hanging), in order; ``TimeoutError`` if none comes within ``timeout`` seconds."""
        try:
            return self._accepted.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no connection within {timeout} s") from None

    # -- handshake -------------------------------------------------------------------------

    def respond(self, request: Request) -> HandshakeResponse:
        """The answer to ``request``: the default one, passed through the ``handshake`` hook."""
        default = self.default_response(request)
        hook = self.handshake
        if hook is None:
            return default
        if isinstance(hook, HandshakeResponse):
            return hook.copy()
        result = hook(request, default)
        return default if result is None else result

    def default_response(self, request: Request) -> HandshakeResponse:
        """101 for a valid request (with subprotocol and extension), else 400 with the reason."""
        problem = check_request(request)
        if problem is not None:
            return HandshakeResponse(
                400,
                headers=[("Sec-WebSocket-Version", "13"), ("Content-Type", "text/plain")],
                body=problem.encode(),
            )
        extension, codec = self.negotiate_extension(request)
        return HandshakeResponse.accept(
            request, protocol=self.select_subprotocol(request), extensions=extension, codec=codec
        )

    def select_subprotocol(self, request: Request) -> Optional[str]:
        """The first of ``subprotocols`` that the client offered in ``request``
        (case-sensitive), or ``None``."""
        offered = request.tokens("Sec-WebSocket-Protocol")
        return next((p for p in self.subprotocols if p in offered), None)

    def negotiate_extension(
        self, request: Request
    ) -> Tuple[Optional[str], Optional[ExtensionCodec]]:
        """The extension plug-in point: ``(response header value, codec)`` or ``(None, None)``
        for ``request``.

        The client's ``Sec-WebSocket-Extensions`` values are offered to each of ``extensions``
        in turn; permessage-deflate plugs in here (see the module's documentation).
        """
        offer = request.header_list("Sec-WebSocket-Extensions")
        if offer:
            for extension in self.extensions:
                result = extension(offer)
                if result is not None:
                    return result
        return None, None

    # -- threads ---------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._listener is not None and self._wake_r is not None
        while not self._stopping.is_set():
            try:
                select.select([self._listener, self._wake_r], [], [])
                sock, address = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as exc:
                if not self._stopping.is_set():
                    logger.warning("accept failed: %s", exc)
                    self._stopping.wait(0.05)
                continue
            if self._stopping.is_set():
                sock.close()
                break
            sock.setblocking(True)
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            self._count += 1
            name = f"syncws-server-{self.port}-{self._count}"
            conn = ServerConnection(self, sock, address, name)
            thread = threading.Thread(target=conn._run, name=name, daemon=True)
            self._threads.append((thread, conn))
            thread.start()


def serve_forever(host: str = "127.0.0.1", port: int = 8765) -> None:
    """Run the echo server on ``host``:``port`` (with permessage-deflate), print its URL, and
    serve until Ctrl-C (``python -m syncws serve``)."""
    from .protocol.deflate import server_negotiate

    with WebSocketServer(host=host, port=port, extensions=[server_negotiate]) as server:
        print(f"syncws echo server listening on {server.url} (Ctrl-C to stop)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopping", flush=True)
