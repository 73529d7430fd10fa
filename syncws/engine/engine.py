"""One connection's I/O: its threads, its lock, and the one place where it ends.

:class:`Engine` is what the API layer talks to. Its reader thread opens the connection
(:mod:`.opening`), then reads it (:mod:`.reader`) until it ends; writes go through
:mod:`.writer`, directly from the sending thread when cheap and safe, else through a writer
thread that runs only while something must wait. ``send()``/``close()`` on any thread only
queue (or write without blocking) and return.

Whatever ends a connection (end of stream, a reset, a protocol error, ``close_timeout``, a
keepalive timeout, :meth:`Engine.abort`) leads to :meth:`Engine._finish` on the reader thread:
it lets the writer send what the protocol still owes (a Close frame), shuts the stream, ends
the writer and reports the outcome exactly once. No engine thread outlives its connection.

The engine's lock guards its state and is held around every call into the protocol core,
whichever thread makes it; it is never held across I/O or a call to the layer above.
"""

from __future__ import annotations

import itertools
import logging
import socket
import threading
import time
from typing import Any, List, Optional, Set, Union

from ..blob import Blob
from ..errors import ConnectionFailed, WebSocketError
from ..protocol.connection import ClientConnection
from ..state import Ending, ReadyState, SocketState
from ..streams import Stream, TLSStream
from ..transport import ConnectTarget
from .opening import EngineOptions, HandshakeSpec, Opened, open_connection
from .reader import Outcome, ReadLoop
from .sink import EngineSink
from .writer import Writer

logger = logging.getLogger("syncws")

__all__ = ["Engine"]

_ids = itertools.count(1)  # next() on a count is atomic under the GIL


class Engine:
    """One connection's threads and I/O state. Built by the API layer, which owns the sink."""

    def __init__(
        self,
        target: ConnectTarget,
        handshake: HandshakeSpec,
        options: EngineOptions,
        sink: EngineSink,
        state: SocketState,
        *,
        label: str = "",
    ) -> None:
        self.target = target
        self.handshake = handshake
        self.options = options
        self.sink = sink
        #: The socket's state, which the engine reads and reports to (it keeps no copy).
        self.state = state
        self.id = next(_ids)
        self.label = label or f"{target.host}:{target.port}"
        #: Frame-level logging, decided once per connection so the hot path pays nothing.
        self.debug = logger.isEnabledFor(logging.DEBUG)
        self.lock = threading.Lock()
        self._cond = threading.Condition(self.lock)
        self.writer: Writer = _NotOpen()
        self._loop: Optional[ReadLoop] = None
        self._connection: Optional[ClientConnection] = None
        self._stream: Optional[Stream] = None
        self._sockets: List[socket.socket] = []
        #: When close_timeout ends a requested close (None: no close, or no timeout).
        self.close_deadline: Optional[float] = None
        self._discarded = 0
        # The reading role, when two threads take turns (see "the connection's threads").
        self._turn = threading.Condition(threading.Lock())
        self._turn_holder: Optional[int] = None
        #: The connection's own threads (reader, second thread, writer) by thread id.
        self._own_threads: Set[int] = set()
        # Set by the garbage collector on one of those threads: an empty Close is due.
        self._close_when_safe = False

    # -- API-facing calls (any thread) -----------------------------------------------------

    def start(self) -> None:
        thread = threading.Thread(target=self._run, name=f"syncws-reader-{self.id}", daemon=True)
        thread.start()

    @property
    def buffered_amount(self) -> int:
        return self.writer.unwritten + self._discarded

    @property
    def unwritten(self) -> int:
        """Application bytes accepted by :meth:`send` and not yet handed to the OS."""
        return self.writer.unwritten

    @property
    def finished(self) -> bool:
        """Whether the connection has ended (its ending is recorded)."""
        return self.state.ending is not None

    @property
    def error(self) -> Optional[BaseException]:
        """The first error that ended (or is ending) the connection."""
        return self.state.error

    @property
    def close_requested(self) -> bool:
        return self.state.close_requested

    @property
    def latency(self) -> Optional[float]:
        loop = self._loop
        return loop.keepalive.latency if loop is not None else None

    def watch_drain(self) -> None:
        """Have ``sink.drained()`` called once every accepted byte was written."""
        self.writer.watch_drain = True

    def send(self, payload: Union[bytes, Blob], text: bool, app_bytes: int) -> None:
        """Queue one message; only valid once ``on_open`` was reported and before close."""
        with self.lock:
            connection = self._connection
            if connection is None or self._finishing or not connection.accepting_messages:
                self._discarded += app_bytes
                return
            self.writer.send_message(payload, text, app_bytes)

    def discard(self, app_bytes: int) -> None:
        """Count bytes ``send()`` accepted while CLOSING/CLOSED (they grow buffered_amount)."""
        with self.lock:
            self._discarded += app_bytes

    def close(self, code: Optional[int], reason: str) -> None:
        """Start the closing handshake; the connection ends within ``close_timeout``.

        Called once, after the socket's state moved to CLOSING."""
        with self.lock:
            connection = self._connection
            if connection is None:
                # Not open yet: there is nothing to hand-shake with, so fail the attempt.
                self._abort_locked(ConnectionAbortedError("closed before the connection opened"))
            else:
                timeout = self.options.close_timeout
                if timeout is not None:
                    self.close_deadline = time.monotonic() + timeout
                frames = connection.send_close(code, reason)
                if frames:
                    self.writer.send_control(frames)
        self.sink.wake()

    def close_if_open(self, code: Optional[int]) -> bool:
        """Close with ``code`` (None: an empty Close) for a socket that goes away without its
        WebSocket object (collected, or at interpreter exit); False if already closing."""
        if self.state.request_close() not in (ReadyState.CONNECTING, ReadyState.OPEN):
            return False
        self.close(code, "")
        return True

    def close_collected(self) -> None:
        """The socket was garbage collected: send an empty Close, as the standard says.

        The collector starts at any allocation on any thread, also on one of this connection's
        own threads while it holds one of its locks (a user's thread calling the socket keeps
        it alive, so it holds none of them). Waiting for a lock there would wait forever, so
        on those threads the Close is left to the thread's next point without a lock held.
        """
        if threading.get_ident() in self._own_threads:
            self._close_when_safe = True
        else:
            self.close_if_open(None)

    def abort(self, error: BaseException) -> None:
        """Fail the connection now (no closing handshake); ``error`` is reported."""
        with self.lock:
            self._abort_locked(error)
        self.sink.wake()

    def set_error(self, error: BaseException) -> None:
        """Record what ended the connection; the first error wins."""
        self.state.record_error(error)

    def flush(self, timeout: Optional[float], *, control: bool = False) -> bool:
        """Wait until every accepted byte was written, or the connection ended.

        With ``control``, also until queued control frames (a Close) reached the OS.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        return self.writer.flush(deadline, lambda: self.finished, control=control)

    def log_message(self, direction: str, data: Any, text: Optional[bool] = None,
                    frames: Any = None) -> None:
        """Frame-level DEBUG line for one message (only called when ``debug``)."""
        kind = "text" if (isinstance(data, str) if text is None else text) else "binary"
        size = len(data)
        head = bytes(data[:24]) if not isinstance(data, str) else data[:24].encode("utf-8", "replace")
        wire = f", {sum(len(b) for b in frames)} bytes framed" if frames else ""
        logger.debug("%s %s %s message, %d bytes%s: %r%s", self.label, direction, kind, size,
                     wire, head, "…" if size > 24 else "")

    # -- internals ------------------------------------------------------------------------

    @property
    def _finishing(self) -> bool:
        return self.error is not None or self.finished

    def _abort_locked(self, error: BaseException) -> None:
        self.state.record_error(error)
        self._shutdown_sockets()

    def _shutdown_sockets(self) -> None:
        stream = self._stream
        if stream is not None:
            stream.shutdown()
        for sock in self._sockets:
            _shutdown(sock)

    def _on_socket(self, sock: socket.socket) -> None:
        with self.lock:
            self._sockets.append(sock)
            if self.error is not None:
                _shutdown(sock)

    def _on_stream(self, stream: Stream) -> None:
        with self.lock:
            self._stream = stream
            if self.error is not None:
                stream.shutdown()

    def _write_failed(self, exc: OSError) -> None:
        with self.lock:
            if self.error is None and not self.finished:
                logger.debug("connection %s: write failed: %r", self.label, exc)
                error = ConnectionFailed(f"write to {self.label} failed: {exc}")
                error.__cause__ = exc
                self.state.record_error(error)
            self._shutdown_sockets()

    # -- the connection's threads ------------------------------------------------------------
    #
    # The reader thread opens the connection, then reads it. With the default executor the
    # sink defers deliveries to the connection's own threads, and a second thread joins: the
    # two take turns. The thread that read events hands the reading role to the other, then
    # delivers them at once (no thread wake-up on a message's way to its handler), and waits
    # for the role to come back. With any other executor the reader alone reads.

    def _run(self) -> None:
        self._own_threads.add(threading.get_ident())
        try:
            outcome = self._open()
        except BaseException as exc:  # noqa: BLE001 - every failure becomes a close event
            outcome = self._failed(exc)
        if outcome is not None:
            self._finish(outcome)
            self._deliver_deferred(0)
            return
        if self.sink.deferring:
            with self._turn:
                self._turn_holder = 0
            threading.Thread(
                target=self._serve, args=(1,), name=f"syncws-dispatch-{self.id}", daemon=True
            ).start()
        self._deliver_deferred(0)  # the open event
        self._serve(0)

    def _open(self) -> Optional[Outcome]:
        """Open the connection; None once open, else the outcome (aborted meanwhile)."""
        opened = open_connection(
            self.target,
            self.handshake,
            self.options,
            label=self.label,
            cancelled=lambda: self.error is not None,
            on_socket=self._on_socket,
            on_stream=self._on_stream,
        )
        if not self._install(opened):
            return Outcome(1006, "", False, self.error)
        logger.debug("connection %s open (protocol %r, extensions %r)",
                     self.label, opened.protocol, opened.extensions)
        self.sink.on_open(opened.protocol, opened.extensions, opened.response)
        return None

    def _failed(self, exc: BaseException) -> Outcome:
        # Once aborted, whatever the reader hits next is a consequence, not the cause.
        error = self.error if self.error is not None else exc
        logger.debug("connection %s failed: %r", self.label, exc)
        return Outcome(1006, "", False, error)

    def _serve(self, me: int) -> None:
        """Read (holding the reading role) and deliver, until the connection ends."""
        self._own_threads.add(threading.get_ident())
        loop = self._loop
        assert loop is not None
        while True:
            self._at_safe_point()
            if not self._wait_turn(me):
                return
            try:
                outcome = loop.step()
            except BaseException as exc:  # noqa: BLE001 - every failure becomes a close event
                outcome = self._failed(exc)
            if outcome is not None:
                self._finish(outcome)
            self._deliver_deferred(me)
            if outcome is not None:
                return

    def _at_safe_point(self) -> None:
        """Where the connection's own threads hold no lock: send a Close the collector left."""
        if self._close_when_safe:
            self._close_when_safe = False
            self.close_if_open(None)

    def _wait_turn(self, me: int) -> bool:
        """Wait for the reading role (only with two threads); False once the connection ended."""
        if self._turn_holder is None:
            return not self.finished
        with self._turn:
            while self._turn_holder != me and not self.finished:
                self._turn.wait()
        return not self.finished

    def _deliver_deferred(self, me: int) -> None:
        """Run what this thread's reports scheduled, handing the reading role over first."""
        take = self.sink.take_deferred
        drain = take()
        if self._turn_holder is not None and (drain is not None or self.finished):
            with self._turn:
                self._turn_holder = 1 - me
                self._turn.notify()
        while drain is not None:
            drain()
            drain = take()

    def _install(self, opened: Opened) -> bool:
        """Make the opened connection the engine's; False if it was aborted meanwhile."""
        stream = opened.stream
        writer = Writer(
            stream,
            opened.connection,
            self._cond,
            name=f"syncws-writer-{self.id}",
            on_failed=self._write_failed,
            on_drained=self.sink.drained,
            own_threads=self._own_threads,
            at_safe_point=self._at_safe_point,
            log_message=(lambda data, text, frames: self.log_message(">", data, text, frames))
            if self.debug else None,
        )
        with self.lock:
            if self.error is not None:
                return False
            self.writer = writer
            self._connection = opened.connection
            self._loop = ReadLoop(self, stream, opened.connection, opened.leftover)
            # Every TLS layer (two with an https:// proxy) hands its own output to the writer.
            layer: Optional[Stream] = stream
            while layer is not None:
                if isinstance(layer, TLSStream):
                    layer.output_waker = writer.wake
                layer = getattr(layer, "inner", None)
        return True

    def _finish(self, outcome: Outcome) -> None:
        code, reason, was_clean, error = outcome
        ending = Ending(code, reason, was_clean, error)
        # Recorded first: from now on nothing is accepted, and a write failing because of
        # the shutdown below is a consequence, not an error to report.
        self.state.record_ending(ending)
        writer = self.writer
        # Give the writer a moment to send what the protocol owes (a Close frame).
        writer.stop(1.0 if error is None else 0.5)
        with self.lock:
            self._shutdown_sockets()
        writer.join()
        stream = self._stream
        if stream is not None:
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
        with self._cond:
            self._cond.notify_all()  # flush() waiters: the connection has ended
        self.sink.on_closed(ending)
        with self._turn:
            self._turn.notify_all()  # a thread waiting for the reading role: it is over


class _NotOpen(Writer):
    """The writer of a connection that is not open (yet): nothing accepted, nothing written."""

    def __init__(self) -> None:  # noqa: D107 - no stream: every method below is a no-op
        self.accepted = self.written = 0
        self.watch_drain = False

    def flush(self, deadline: Optional[float], finished: Any, *, control: bool) -> bool:
        return True

    def stop(self, timeout: float) -> None:
        pass

    def join(self) -> None:
        pass


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
