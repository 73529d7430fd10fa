"""The I/O engine: one reader thread and one writer thread around a connection's stream.

The reader opens the stream, performs the opening handshake, then reads, feeds the protocol
core and reports what happened through an :class:`EngineSink`. The writer owns every write
after the handshake: it drains the outbound queue (coalescing whatever is waiting into one
scatter-gather write), sends keepalive pings and lowers ``buffered_amount`` as bytes reach the
OS. ``send()``/``close()`` on any thread only enqueue and return.

Whatever ends a connection (end of stream, a reset, a protocol error, ``close_timeout``, a
keepalive timeout, ``abort()``) leads to :meth:`Engine._finish` on the reader thread: it lets
the writer send what the protocol still owes (a Close frame), shuts the stream, joins the
writer and reports the final outcome exactly once. No engine thread outlives its connection.
"""

from __future__ import annotations

import collections
import itertools
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, List, Optional, Sequence, Tuple, Union

from .errors import (
    ConnectionFailed,
    KeepaliveTimeout,
    WebSocketError,
)
from .protocol.connection import (
    ClientConnection,
    CloseReceived,
    Failure,
    Message,
    Ping,
    Pong,
)
from .protocol.handshake import (
    MAX_BODY,
    Response,
    ResponseParser,
    build_request,
    check_response,
    content_length,
    new_key,
)
from .redirects import is_redirect
from .streams import BytesLike, SocketStream, Stream, TLSStream, time_left
from .transport import ConnectTarget, open_stream

logger = logging.getLogger("syncws")

__all__ = ["EngineSink", "HandshakeSpec", "EngineOptions", "Engine"]

# The receive buffer starts small (an idle connection costs little memory) and doubles while
# reads fill it, up to the maximum; large frames bypass it (received in direct mode).
_RECV_BUFFER_MIN = 16 * 1024
_RECV_BUFFER_MAX = 256 * 1024
_MSG_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)
# Sends closer together than this count as a burst: they go through the writer, which writes
# everything waiting with one system call, instead of one direct write each.
_BURST = 15e-6
_monotonic = time.monotonic
# On a protocol error, how long handlers may take to answer the messages before it.
_FAIL_DELIVERY_WAIT = 1.0
_ids = itertools.count(1)  # next() on a count is atomic under the GIL


class EngineSink:
    """What the engine reports to the layer above; every call comes from the reader thread."""

    @property
    def paused(self) -> bool:
        """True while :meth:`wait_for_room` blocks the reader (keepalive then expects no pong)."""
        return False

    def on_open(self, protocol: str, extensions: str, response: Response) -> None:
        raise NotImplementedError

    def on_messages(self, messages: List[Union[str, bytes]]) -> None:
        """The messages of one read, in order (handed over together: one hand-off, not many)."""
        raise NotImplementedError

    def on_closed(
        self, code: int, reason: str, was_clean: bool, error: Optional[BaseException]
    ) -> None:
        """Called exactly once, last."""
        raise NotImplementedError

    def wait_for_room(self) -> None:
        """Inbound flow control: block while too many events wait for delivery.

        The engine calls it before every read until a Close is under way; the sink must return
        once ``close()``/``abort()`` was called, and say ``paused = True`` while it blocks so
        that keepalive does not mistake a paused reader for a dead peer.
        """

    def wait_delivered(self, timeout: float) -> None:
        """Block until the messages handed over so far were delivered (or ``timeout``)."""

    def wake(self) -> None:
        """``close()`` or ``abort()`` was called: stop blocking in :meth:`wait_for_room`."""


@dataclass
class HandshakeSpec:
    """What the opening handshake sends and how the response's extensions are judged."""

    host_header: str
    resource: str
    protocols: Sequence[str] = ()
    headers: Sequence[Tuple[str, str]] = ()
    extension_offer: Optional[str] = None
    #: Given every Sec-WebSocket-Extensions value: the negotiated extension object or None.
    accept_extensions: Callable[[List[str]], Any] = field(default=lambda values: None)
    #: With ``follow_redirects=True``: given a redirect, where and how to connect instead.
    follow_redirect: Optional[
        Callable[[Response], Tuple[ConnectTarget, "HandshakeSpec"]]
    ] = None


@dataclass
class EngineOptions:
    open_timeout: Optional[float] = 10.0
    close_timeout: Optional[float] = 10.0
    ping_interval: Optional[float] = 20.0
    ping_timeout: Optional[float] = 20.0
    max_message_size: Optional[int] = None


class _Outbound:
    """A unit of the writer's queue: frames plus the application bytes they carry."""

    __slots__ = ("buffers", "app_bytes")

    def __init__(self, buffers: List[bytes], app_bytes: int) -> None:
        self.buffers = buffers
        self.app_bytes = app_bytes


class Engine:
    """One connection's threads and state. Built by the API layer, which owns the sink."""

    def __init__(
        self,
        target: ConnectTarget,
        handshake: HandshakeSpec,
        options: EngineOptions,
        sink: EngineSink,
        *,
        label: str = "",
    ) -> None:
        self.target = target
        self.handshake = handshake
        self.options = options
        self.sink = sink
        self.id = next(_ids)
        self.label = label or f"{target.host}:{target.port}"
        self.latency: Optional[float] = None

        # ``with self._lock`` on hot paths (a C-level lock is cheaper than Condition.__enter__);
        # holding it is holding the condition.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._queue: Deque[_Outbound] = collections.deque()
        self._connection: Optional[ClientConnection] = None
        self._stream: Optional[Stream] = None
        self._sockets: List[socket.socket] = []
        self._writer: Optional[threading.Thread] = None
        self._reader: Optional[threading.Thread] = None
        self._writer_stop = False
        self._abort_error: Optional[BaseException] = None
        self._close_requested = False
        self._close_timer: Optional[threading.Timer] = None
        self._finished = threading.Event()
        # buffered_amount = accepted + discarded - written (each counter has one writer).
        self._accepted = 0
        self._discarded = 0
        self._written = 0
        self._flush_waiters = 0
        # Held by whoever writes to the stream: the writer thread, or send() writing directly.
        self._write_lock = threading.Lock()
        self._last_send = 0.0
        #: Frame-level logging, decided once per connection so the hot path pays nothing.
        self._debug = logger.isEnabledFor(logging.DEBUG)
        self._direct_send: Optional[Callable[[List[bytes]], int]] = None
        self._ping_payload: Optional[bytes] = None
        self._ping_sent_at = 0.0
        self._next_ping = 0.0

    # -- API-facing calls (any thread) -----------------------------------------------------

    def start(self) -> None:
        self._reader = _start_thread(self._run_reader, f"syncws-reader-{self.id}")

    @property
    def buffered_amount(self) -> int:
        return self._accepted + self._discarded - self._written

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def send(self, payload: BytesLike, text: bool, app_bytes: int) -> None:
        """Queue one message; only valid once ``on_open`` was reported and before close."""
        with self._lock:
            connection = self._connection
            if connection is None or self._writer_stop or not connection.accepting_messages:
                self._discarded += app_bytes
                return
            buffers = connection.send_message(payload, text)
            self._accepted += app_bytes
            if self._debug:
                _log_message(">", self.label, payload, text, buffers)
            # The writer is idle and nothing waits: write on this thread, saving a hand-off.
            # Within a burst of sends, queue instead: the writer joins them into one write.
            now = _monotonic()
            direct = (
                not self._queue
                and self._direct_send is not None
                and now - self._last_send > _BURST
                and self._write_lock.acquire(False)
            )
            self._last_send = now
            if not direct:
                self._queue.append(_Outbound(buffers, app_bytes))
                self._notify_writer()
                return
        self._send_now(buffers, app_bytes)

    def _send_now(self, buffers: List[bytes], app_bytes: int) -> None:
        """Write what the socket takes without blocking; queue the rest first in line.

        Called with the write lock held (released here), so no other write can come between.
        """
        try:
            try:
                sent = self._direct_send(buffers)  # type: ignore[misc]
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self._write_failed(exc)
                return
            with self._lock:
                if sent >= (len(buffers[0]) if len(buffers) == 1 else sum(map(len, buffers))):
                    self._written += app_bytes
                    if self._flush_waiters:
                        self._cond.notify_all()
                else:
                    self._queue.appendleft(_Outbound(_drop_prefix(buffers, sent), app_bytes))
                    self._notify_writer()
        finally:
            self._write_lock.release()

    def _notify_writer(self) -> None:
        """Wake the writer (lock held). flush() waits on the same condition, so with waiters
        there, a single notify() could wake one of them instead: wake everyone then."""
        if self._flush_waiters:
            self._cond.notify_all()
        else:
            self._cond.notify()

    def discard(self, app_bytes: int) -> None:
        """Count bytes ``send()`` accepted while CLOSING/CLOSED (they grow buffered_amount)."""
        with self._cond:
            self._discarded += app_bytes

    def close(self, code: Optional[int], reason: str) -> None:
        """Start the closing handshake; the connection ends within ``close_timeout``."""
        with self._cond:
            if self._close_requested:
                return
            self._close_requested = True
            connection = self._connection
            if connection is None:
                # Not open yet: there is nothing to hand-shake with, so fail the attempt.
                self._abort_locked(ConnectionAbortedError("closed before the connection opened"))
            else:
                frames = connection.send_close(code, reason)
                if frames:
                    self._queue.append(_Outbound(frames, 0))
                    self._notify_writer()
        self.sink.wake()
        if connection is not None:
            self._arm_close_timer()

    def abort(self, error: BaseException) -> None:
        """Fail the connection now (no closing handshake); ``error`` is reported."""
        with self._cond:
            self._abort_locked(error)
        self.sink.wake()

    def _abort_locked(self, error: BaseException) -> None:
        if self._abort_error is None:
            self._abort_error = error
        self._writer_stop = True
        self._cond.notify_all()
        self._shutdown_sockets()

    def flush(self, timeout: Optional[float], *, control: bool = False) -> bool:
        """Wait until every accepted byte was written, or the connection ended.

        With ``control``, also until queued control frames (a Close) reached the OS.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._flush_waiters += 1
            try:
                while not self._finished.is_set() and (
                    self._accepted != self._written
                    or (control and (self._queue or self._write_lock.locked()))
                ):
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        return False
                    self._cond.wait(left if left is None else min(left, 0.5))
                return True
            finally:
                self._flush_waiters -= 1

    # -- reader thread ------------------------------------------------------------------

    def _cancelled(self) -> bool:
        return self._abort_error is not None

    def _on_socket(self, sock: socket.socket) -> None:
        with self._cond:
            self._sockets.append(sock)
            if self._abort_error is not None:
                _shutdown(sock)

    def _shutdown_sockets(self) -> None:
        stream = self._stream
        if stream is not None:
            stream.shutdown()
        for sock in self._sockets:
            _shutdown(sock)

    def _run_reader(self) -> None:
        outcome: Tuple[int, str, bool, Optional[BaseException]]
        try:
            opened = self._open()
            if opened is None:
                outcome = (1006, "", False, self._abort_error)
            else:
                outcome = self._read_loop(*opened)
        except BaseException as exc:  # noqa: BLE001 - every failure becomes a close event
            # Once aborted, whatever the reader hits next is a consequence, not the cause.
            error = self._abort_error if self._abort_error is not None else exc
            logger.debug("connection %s failed: %r", self.label, exc)
            outcome = (1006, "", False, error)
        self._finish(*outcome)

    def _open(self) -> Optional[Tuple[ClientConnection, bytes]]:
        opts = self.options
        deadline = None if opts.open_timeout is None else time.monotonic() + opts.open_timeout
        while True:  # once, plus once per redirect followed (within the same deadline)
            try:
                stream = open_stream(self.target, deadline, self._cancelled, self._on_socket)
            except socket.timeout as exc:
                raise TimeoutError(f"timed out opening the connection to {self.label}") from exc
            with self._cond:
                self._stream = stream
                if self._abort_error is not None:
                    return None
            try:
                response = self._handshake(stream, deadline)
            except socket.timeout as exc:
                raise TimeoutError(f"timed out during the opening handshake with {self.label}") from exc
            follow = self.handshake.follow_redirect
            if follow is None or not is_redirect(response):
                break
            stream.close()
            # The API layer decides (syncws.redirects); HandshakeError when not to follow.
            self.target, self.handshake = follow(response)
        spec = self.handshake
        protocol, extension = check_response(
            response,
            key=self._key,
            protocols=list(spec.protocols),
            accept_extensions=spec.accept_extensions,
        )
        connection = ClientConnection(
            max_message_size=opts.max_message_size, extension=extension
        )
        with self._cond:
            if self._abort_error is not None:
                return None
            self._connection = connection
            # Every TLS layer (two with an https:// proxy) hands its own output to the writer.
            layer: Optional[Stream] = stream
            while layer is not None:
                if isinstance(layer, TLSStream):
                    layer.output_waker = self._wake_writer
                layer = getattr(layer, "inner", None)
        self._next_ping = time.monotonic() + (opts.ping_interval or 0)
        if type(stream) is SocketStream and _MSG_DONTWAIT and hasattr(stream.sock, "sendmsg"):
            sendmsg = stream.sock.sendmsg
            self._direct_send = lambda buffers: sendmsg(buffers, (), _MSG_DONTWAIT)
        self._writer = _start_thread(self._run_writer, f"syncws-writer-{self.id}")
        extensions_text = getattr(extension, "response_text", "") if extension else ""
        logger.debug("connection %s open (protocol %r, extensions %r)", self.label, protocol, extensions_text)
        self.sink.on_open(protocol, extensions_text, response)
        return connection, response.leftover

    def _handshake(self, stream: Stream, deadline: Optional[float]) -> Response:
        spec = self.handshake
        self._key = new_key()
        request = build_request(
            host=spec.host_header,
            resource=spec.resource,
            key=self._key,
            protocols=spec.protocols,
            extensions=spec.extension_offer,
            headers=spec.headers,
        )
        logger.debug("> %s", request.split(b"\r\n", 1)[0].decode("latin-1"))
        stream.sendall(request)
        parser = ResponseParser()
        buffer = bytearray(16 * 1024)
        view = memoryview(buffer)
        while True:
            n = stream.recv_into(view, time_left(deadline))
            if n is None:
                raise socket.timeout()
            if n == 0:
                raise ConnectionFailed("the server closed the connection during the opening handshake")
            response = parser.feed(bytes(view[:n]))
            if response is not None:
                break
        logger.debug("< HTTP %d %s", response.status, response.reason)
        if response.status != 101:
            response = self._read_refusal_body(stream, response, view, deadline)
        return response

    def _read_refusal_body(
        self, stream: Stream, response: Response, view: memoryview, deadline: Optional[float]
    ) -> Response:
        """Read a refusal's body (bounded) so that ``HandshakeError.body`` carries it."""
        wanted = content_length(response)
        limit = MAX_BODY if wanted is None else min(wanted, MAX_BODY)
        body = bytearray(response.leftover)
        try:
            while len(body) < limit:
                n = stream.recv_into(view, time_left(deadline))
                if not n:
                    break
                body += view[:n]
        except OSError:
            pass
        return response._replace(leftover=bytes(body[:limit]))

    def _read_loop(
        self, connection: ClientConnection, leftover: bytes
    ) -> Tuple[int, str, bool, Optional[BaseException]]:
        stream = self._stream
        assert stream is not None
        sink = self.sink
        view = memoryview(bytearray(_RECV_BUFFER_MIN))
        pending: Optional[bytes] = leftover or None
        close_deadline: Optional[float] = None
        while True:
            if pending is not None:
                events = connection.receive_data(pending)
                pending = None
            else:
                if close_deadline is None and not self._close_requested:
                    sink.wait_for_room()
                timeout = None
                if close_deadline is not None:
                    timeout = close_deadline - time.monotonic()
                    if timeout <= 0:
                        break
                # The rest of a large frame goes straight into its payload buffer.
                direct = connection.direct_buffer()
                try:
                    n = stream.recv_into(view if direct is None else direct, timeout)
                except OSError as exc:
                    if connection.close_received is not None or self._abort_error is not None:
                        break
                    raise ConnectionFailed(f"connection to {self.label} lost: {exc}") from exc
                if n is None:
                    break  # close_timeout after the server's Close
                if n == 0:
                    break
                if direct is None:
                    events = connection.receive_data(view[:n])
                    if n == len(view) and n < _RECV_BUFFER_MAX:
                        view = memoryview(bytearray(n * 2))
                else:
                    events = connection.receive_direct(n)
            failed = bool(events) and type(events[-1]) is Failure
            replies = connection.data_to_send(hold_failure_close=failed)
            if replies:
                self._enqueue_control(replies)
            messages: List[Union[str, bytes]] = []
            for event in events:
                kind = type(event)
                if kind is Message:
                    if self._debug:
                        _log_message("<", self.label, event.data)  # type: ignore[union-attr]
                    messages.append(event.data)  # type: ignore[union-attr]
                    continue
                if messages and (kind is CloseReceived or kind is Failure):
                    sink.on_messages(messages)  # the messages before a Close or an error first
                    messages = []
                if kind is Ping:
                    logger.debug("connection %s: ping %r", self.label, event.payload)  # type: ignore[union-attr]
                elif kind is Pong:
                    self._pong(event.payload)  # type: ignore[union-attr]
                elif kind is CloseReceived:
                    logger.debug("connection %s: Close %s", self.label, event)
                    if close_deadline is None:
                        timeout = self.options.close_timeout
                        close_deadline = time.monotonic() + (timeout if timeout is not None else 1e9)
                elif kind is Failure:
                    error = event.error  # type: ignore[union-attr]
                    logger.debug("connection %s: protocol error %r", self.label, error)
                    # Let handlers answer what came before the error (an echo goes out before
                    # the failing Close), for a moment at most: input has stopped already.
                    sink.wait_delivered(_FAIL_DELIVERY_WAIT)
                    with self._lock:
                        self._queue.append(_Outbound(connection.data_to_send(), 0))
                        self._notify_writer()
                    return 1006, "", False, error
            if messages:
                sink.on_messages(messages)
        received = connection.close_received
        if self._abort_error is not None and received is None:
            return 1006, "", False, self._abort_error
        if received is not None:
            return received.code, received.reason, True, None
        if self._close_requested:
            # Closed while CLOSING without the server's Close (or close_timeout): abnormal,
            # but not a failure the standard reports with an error event.
            return 1006, "", False, None
        return 1006, "", False, ConnectionFailed(
            f"the connection to {self.label} closed without a Close frame"
        )

    def _enqueue_control(self, frames: List[bytes]) -> None:
        with self._cond:
            self._queue.append(_Outbound(frames, 0))
            self._notify_writer()

    def _pong(self, payload: bytes) -> None:
        if self._ping_payload is not None and payload == self._ping_payload:
            self.latency = time.monotonic() - self._ping_sent_at
            self._ping_payload = None

    def _arm_close_timer(self) -> None:
        timeout = self.options.close_timeout
        if timeout is None or self._finished.is_set():
            return
        timer = threading.Timer(timeout, self._on_close_timeout)
        timer.name = f"syncws-close-timer-{self.id}"
        timer.daemon = True
        with self._cond:
            # _writer_stop: the connection is already ending (_finish may have looked for a
            # timer to cancel before this one existed), so a timer would only outlive it.
            if self._close_timer is not None or self._writer_stop:
                return
            self._close_timer = timer
            timer.start()  # under the lock: _finish() may join any timer it finds here

    def _on_close_timeout(self) -> None:
        if self._finished.is_set():
            return
        logger.debug("connection %s: close_timeout expired", self.label)
        with self._cond:
            self._writer_stop = True
            self._cond.notify_all()
            self._shutdown_sockets()

    def _wake_writer(self) -> None:
        self._enqueue_control([])

    # -- writer thread ------------------------------------------------------------------

    def _run_writer(self) -> None:
        stream = self._stream
        assert stream is not None
        cond = self._cond
        queue = self._queue
        write_lock = self._write_lock
        interval = self.options.ping_interval
        try:
            while True:
                with cond:
                    while not queue and not self._writer_stop:
                        wait = self._keepalive_due(interval)
                        if wait is not None and wait <= 0:
                            break
                        cond.wait(wait)
                    if not queue and self._writer_stop:
                        return
                # Take the items only once holding the write lock: a direct send() may be
                # about to put its unsent remainder first in line.
                with write_lock:
                    with cond:
                        items = list(queue)
                        queue.clear()
                    if not items:
                        self._keepalive(stream)
                        continue
                    buffers = [b for item in items for b in item.buffers]
                    if buffers:
                        stream.send_buffers(buffers)
                    else:
                        stream.flush()
                written = sum(item.app_bytes for item in items)
                if written or self._flush_waiters:
                    with cond:
                        self._written += written
                        if self._flush_waiters:
                            cond.notify_all()
        except OSError as exc:
            self._write_failed(exc)

    def _write_failed(self, exc: OSError) -> None:
        with self._cond:
            if self._writer_stop:
                return
            logger.debug("connection %s: write failed: %r", self.label, exc)
            if self._abort_error is None:
                self._abort_error = ConnectionFailed(f"write to {self.label} failed: {exc}")
                self._abort_error.__cause__ = exc
            self._shutdown_sockets()

    def _keepalive_due(self, interval: Optional[float]) -> Optional[float]:
        """Seconds until the keepalive needs the writer (None: never)."""
        if interval is None or self._close_requested or self._connection is None:
            return None
        if self._connection.close_sent is not None:
            return None
        now = time.monotonic()
        if self._ping_payload is not None:
            timeout = self.options.ping_timeout
            if timeout is None:
                return None
            return self._ping_sent_at + timeout - now
        return self._next_ping - now

    def _keepalive(self, stream: Stream) -> None:
        wait = self._keepalive_due(self.options.ping_interval)
        if wait is None or wait > 0:
            return
        now = time.monotonic()
        connection = self._connection
        if connection is None or connection.close_sent is not None:
            return
        if self._ping_payload is not None:
            timeout = self.options.ping_timeout
            if timeout is not None and now - self._ping_sent_at >= timeout:
                if self.sink.paused:
                    # A paused reader cannot see the pong: not a dead connection.
                    self._ping_payload = None
                    self._next_ping = now + (self.options.ping_interval or 0)
                    return
                logger.debug("connection %s: keepalive timeout", self.label)
                with self._cond:
                    if self._abort_error is None:
                        self._abort_error = KeepaliveTimeout(
                            f"no pong within {timeout} s of a keepalive ping"
                        )
                    frames = connection.send_close(1011, "keepalive ping timeout")
                    self._writer_stop = True
                try:
                    if frames:
                        stream.send_buffers(frames)
                finally:
                    self._shutdown_sockets()
            return
        payload = os.urandom(4)
        with self._cond:
            frames = connection.send_ping(payload)
            self._ping_payload = payload
            self._ping_sent_at = now
            self._next_ping = now + (self.options.ping_interval or 0)
        stream.send_buffers(frames)

    # -- the end ------------------------------------------------------------------------

    def _finish(self, code: int, reason: str, was_clean: bool, error: Optional[BaseException]) -> None:
        with self._cond:
            self._writer_stop = True
            self._cond.notify_all()
        writer = self._writer
        if writer is not None:
            # Give the writer a moment to send what the protocol owes (a Close frame).
            writer.join(1.0 if error is None else 0.5)
            if writer.is_alive():
                self._shutdown_sockets()
                writer.join()
        with self._cond:
            timer = self._close_timer
        if timer is not None:
            timer.cancel()
            timer.join(1.0)  # a cancelled timer's thread ends at once; let it, before close
        stream = self._stream
        if stream is not None:
            stream.shutdown()
            stream.close()
        for sock in self._sockets:
            try:
                sock.close()
            except OSError:
                pass
        if error is not None and not isinstance(error, (WebSocketError, OSError)):
            logger.debug("connection %s: unexpected error", self.label, exc_info=error)
        logger.debug(
            "connection %s closed: code %d, clean %s, error %r", self.label, code, was_clean, error
        )
        self._finished.set()
        with self._cond:
            self._cond.notify_all()
        self.sink.on_closed(code, reason, was_clean, error)


def _log_message(
    direction: str, label: str, data: Any, text: Optional[bool] = None, frames: Any = None
) -> None:
    kind = "text" if (isinstance(data, str) if text is None else text) else "binary"
    size = len(data)
    head = bytes(data[:24]) if not isinstance(data, str) else data[:24].encode("utf-8", "replace")
    wire = f", {sum(len(b) for b in frames)} bytes framed" if frames else ""
    logger.debug("%s %s %s message, %d bytes%s: %r%s", label, direction, kind, size, wire,
                 head, "…" if size > 24 else "")


def _drop_prefix(buffers: List[bytes], count: int) -> List[bytes]:
    """``buffers`` without their first ``count`` bytes (what a partial write already sent)."""
    rest: List[bytes] = []
    for buf in buffers:
        if count >= len(buf):
            count -= len(buf)
            continue
        rest.append(memoryview(buf)[count:] if count else buf)  # type: ignore[arg-type]
        count = 0
    return rest


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _start_thread(target: Callable[[], None], name: str) -> threading.Thread:
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread
