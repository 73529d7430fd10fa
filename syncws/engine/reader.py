"""The reader thread's loop: bytes in, protocol events out, and every deadline.

The reader is the one thread a connection always has once open, so it also carries the
connection's clocks: the keepalive (ping due, pong overdue) and ``close_timeout``. It never
blocks longer than the nearest deadline; while a close may be requested it wakes at least every
``close_timeout`` seconds, which is enough to meet a deadline set meanwhile (no timer thread).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, List, NamedTuple, Optional, Union

from ..errors import ConnectionFailed, KeepaliveTimeout
from ..protocol.connection import (
    ClientConnection,
    CloseReceived,
    Event,
    Failure,
    Message,
    Ping,
    Pong,
)
from .keepalive import Keepalive

if TYPE_CHECKING:  # pragma: no cover
    from ..streams import Stream
    from .engine import Engine

logger = logging.getLogger("syncws")

__all__ = ["Outcome", "ReadLoop"]

# The receive buffer starts small (an idle connection costs little memory), doubles while
# reads fill it, up to the maximum, and goes back to the minimum once a read leaves most of it
# unused (the peer's burst is over); large frames bypass it (received in direct mode).
_RECV_BUFFER_MIN = 16 * 1024
_RECV_BUFFER_MAX = 256 * 1024
# On a protocol error, how long handlers may take to answer the messages before it (the
# engine's policy: input has stopped, the failing Close waits at most this long).
FAIL_DELIVERY_WAIT = 1.0
# The shortest period at which an idle reader looks for a close deadline.
_MIN_TICK = 0.05
_monotonic = time.monotonic


class Outcome(NamedTuple):
    """How a connection ended, as the close event reports it."""

    code: int
    reason: str
    was_clean: bool
    error: Optional[BaseException]


class ReadLoop:
    """Reads one open connection until it ends; see the module docstring."""

    def __init__(
        self, engine: "Engine", stream: "Stream", connection: ClientConnection, leftover: bytes
    ) -> None:
        self.engine = engine
        self.stream = stream
        self.connection = connection
        options = engine.options
        self.keepalive = Keepalive(options.ping_interval, options.ping_timeout, _monotonic())
        self._view = memoryview(bytearray(_RECV_BUFFER_MIN))
        self._leftover: Optional[bytes] = leftover or None  # bytes that came with the 101
        #: After the server's Close: when to stop waiting for it to end TCP.
        self._eof_deadline: Optional[float] = None

    def step(self) -> Optional[Outcome]:
        """One read (or one deadline) and its events; the outcome once the connection ends.

        Only one thread at a time may call it (the one holding the reading role).
        """
        leftover = self._leftover
        if leftover is not None:
            self._leftover = None
            return self._handle(self._feed(leftover))
        timeout = self._next_timeout()
        if timeout is not None and timeout <= 0:
            return self._on_deadline()
        events = self._read(timeout)
        if events is None:
            return self._ended()
        return self._handle(events)

    # -- reading --------------------------------------------------------------------------

    def _read(self, timeout: Optional[float]) -> Optional[List[Event]]:
        """One read into the core: its events ([] when the timeout passed), None at the end."""
        engine = self.engine
        connection = self.connection
        with engine.lock:
            # The rest of a large frame goes straight into its payload buffer (the parser's,
            # which only this thread touches until receive_direct()).
            direct = connection.direct_buffer()
        view = self._view
        try:
            n = self.stream.recv_into(view if direct is None else direct, timeout)
        except OSError as exc:
            if connection.close_received is not None or engine.error is not None:
                return None
            raise ConnectionFailed(f"connection to {engine.label} lost: {exc}") from exc
        if n is None:
            return []
        if n == 0:
            return None
        with engine.lock:
            if direct is None:
                events = connection.receive_data(view[:n])
            else:
                events = connection.receive_direct(n)
        if direct is None:
            self._fit_buffer(n)
        return events

    def _fit_buffer(self, received: int) -> None:
        """Size the receive buffer for the next read after one that got ``received`` bytes."""
        size = len(self._view)
        if received == size and size < _RECV_BUFFER_MAX:
            self._view = memoryview(bytearray(size * 2))
        elif size > _RECV_BUFFER_MIN and received < size // 2:
            self._view = memoryview(bytearray(_RECV_BUFFER_MIN))

    def _feed(self, data: bytes) -> List[Event]:
        with self.engine.lock:
            return self.connection.receive_data(data)

    # -- deadlines ------------------------------------------------------------------------

    def _next_timeout(self) -> Optional[float]:
        """How long the next read may block (None: until data comes)."""
        engine = self.engine
        deadline = self._eof_deadline if self._eof_deadline is not None else engine.close_deadline
        if deadline is not None:
            return deadline - _monotonic()
        if engine.close_requested:
            return None  # closing with no close_timeout: wait for the server
        if engine.sink.wait_for_room():
            self.keepalive.resumed(_monotonic())  # a paused reader could not see a pong
        timeout = self.keepalive.wait(_monotonic())
        close_timeout = engine.options.close_timeout
        if close_timeout is not None:
            # close() may set a deadline while we block: wake up in time to meet it.
            tick = max(close_timeout, _MIN_TICK)
            if timeout is None or tick < timeout:
                timeout = tick
        return timeout

    def _on_deadline(self) -> Optional[Outcome]:
        """A deadline passed: close_timeout ends the connection; keepalive pings or fails."""
        engine = self.engine
        now = _monotonic()
        if self._eof_deadline is not None or (
            engine.close_deadline is not None and now >= engine.close_deadline
        ):
            logger.debug("connection %s: close_timeout expired", engine.label)
            return self._ended()
        keepalive = self.keepalive
        if keepalive.expired(now):
            return self._keepalive_timeout()
        payload = keepalive.ping_due(now)
        if payload is not None:
            with engine.lock:
                if self.connection.close_sent is None:
                    engine.writer.send_control(self.connection.send_ping(payload))
        return None

    def _keepalive_timeout(self) -> Outcome:
        engine = self.engine
        timeout = self.keepalive.timeout
        logger.debug("connection %s: keepalive timeout", engine.label)
        engine.set_error(KeepaliveTimeout(f"no pong within {timeout} s of a keepalive ping"))
        with engine.lock:
            frames = self.connection.send_close(1011, "keepalive ping timeout")
            if frames:
                engine.writer.send_control(frames)
        return Outcome(1006, "", False, engine.error)

    # -- events ---------------------------------------------------------------------------

    def _handle(self, events: List[Event]) -> Optional[Outcome]:
        """Hand the events of one read on; the outcome if they end the connection."""
        engine = self.engine
        connection = self.connection
        with engine.lock:
            replies = connection.data_to_send()
            if replies:
                engine.writer.send_control(replies)
        messages: List[Union[str, bytes]] = []
        for event in events:
            if type(event) is Message:
                data = event.data
                if engine.debug:
                    engine.log_message("<", data)
                messages.append(data)
                continue
            if messages and isinstance(event, (CloseReceived, Failure)):
                engine.sink.on_messages(messages)  # the messages before a Close or an error first
                messages = []
            outcome = self._control(event)
            if outcome is not None:
                return outcome
        if messages:
            engine.sink.on_messages(messages)
        return None

    def _control(self, event: Event) -> Optional[Outcome]:
        """A ping, pong, Close or protocol error; the outcome if it ends the connection."""
        engine = self.engine
        if isinstance(event, Pong):
            self.keepalive.pong(event.payload, _monotonic())
        elif isinstance(event, Ping):
            logger.debug("connection %s: ping %r", engine.label, event.payload)
        elif isinstance(event, CloseReceived):
            logger.debug("connection %s: Close %s", engine.label, event)
            if self._eof_deadline is None:
                timeout = engine.options.close_timeout
                self._eof_deadline = _monotonic() + (timeout if timeout is not None else 1e9)
        elif isinstance(event, Failure):
            return self._protocol_error(event.error)
        return None

    def _protocol_error(self, error: BaseException) -> Outcome:
        engine = self.engine
        logger.debug("connection %s: protocol error %r", engine.label, error)
        # Let handlers answer what came before the error (an echo goes out before the failing
        # Close), for a moment at most: input has stopped already.
        engine.sink.wait_delivered(FAIL_DELIVERY_WAIT)
        with engine.lock:
            frames = self.connection.send_failure_close()
            if frames:
                engine.writer.send_control(frames)
        return Outcome(1006, "", False, error)

    def _ended(self) -> Outcome:
        """The stream ended (or we stopped waiting for it): the close event's outcome."""
        engine = self.engine
        received = self.connection.close_received
        if engine.error is not None and received is None:
            return Outcome(1006, "", False, engine.error)
        if received is not None:
            return Outcome(received.code, received.reason, True, None)
        if engine.close_requested:
            # Closed while CLOSING without the server's Close (or close_timeout): abnormal,
            # but not a failure the standard reports with an error event.
            return Outcome(1006, "", False, None)
        return Outcome(1006, "", False, ConnectionFailed(
            f"the connection to {engine.label} closed without a Close frame"
        ))
