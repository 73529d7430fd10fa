"""``ReconnectingWebSocket``: the ``WebSocket`` API over a series of connections.

How it is built, from the public parts of syncws only:

- Each attempt is a plain :class:`~syncws.websocket.WebSocket` (the *inner* socket) whose
  listeners forward its events to the ``ReconnectingWebSocket``, which dispatches new events
  with itself as ``target``. The inner socket's ``executor`` is a small router that hands its
  delivery tasks to the reconnecting socket's own :class:`~syncws.dispatch.Dispatcher` (which
  runs them on the user's executor), so all events of all connections reach the user one at a
  time and in order, and handlers run where the user asked (a Tk or Qt main loop included).
- Events queue in the inner socket's dispatcher; the outer one only carries its drain tasks.
  So inbound flow control (``max_queue``) and keepalive's notion of a paused reader work per
  connection exactly as for a plain ``WebSocket``.
- The policy is asked when a connection's first ending event (``error``, else ``close``) is
  delivered, on the executor. Waiting then runs on a ``syncws-reconnect-N`` thread that exists
  only during the wait: it calls ``url``/``headers`` when they are callables (a token fetch
  never runs on a GUI thread) and starts the next attempt, then ends. While it exists, the
  previous connection's reader and writer threads have ended, so a reconnecting socket never
  runs more threads than a connected one. ``close()`` wakes it at once.
"""

from __future__ import annotations

import atexit
import collections
import itertools
import logging
import threading
import time
import weakref
from typing import (
    Any,
    Callable,
    ClassVar,
    Deque,
    Iterator,
    Mapping,
    Optional,
    Sequence,
    Set,
    Tuple,
    Union,
)

from .backoff import Backoff
from .blob import Blob
from .dispatch import Dispatcher
from .errors import BufferFull, ConnectionClosed, DOMSyntaxError, InvalidAccessError, InvalidStateError
from .events import CloseEvent, ErrorEvent, Event, EventHandlerAttribute, EventTarget, MessageEvent
from .executors import as_post
from .retry import ShouldRetry, default_should_retry, retry_after
from .text import usv_utf8
from .websocket import ReadyState, WebSocket, connect

__all__ = ["ReconnectingWebSocket", "ReconnectingCloseEvent", "reconnect"]

logger = logging.getLogger("syncws")

UrlSource = Union[str, Callable[[], str]]
Data = Union[str, bytes, bytearray, memoryview, Blob]

_EVENT_TYPES = ("open", "message", "error", "close")
_connector_ids = itertools.count(1)
_PROBE_URL = "ws://localhost/"  # validates the options when the URL is a callable
_OWN_OPTIONS = ("executor", "binary_type", "onopen", "onmessage", "onerror", "onclose")


class ReconnectingCloseEvent(CloseEvent):
    """The ``close`` event of a :class:`ReconnectingWebSocket` (a ``CloseEvent``).

    ``reconnecting`` is ``True`` when another attempt follows, and ``retry_delay`` is then the
    seconds until it (``None`` otherwise). ``ReconnectingCloseEvent(type, *, was_clean=False,
    code=0, reason="", reconnecting=False, retry_delay=None)`` creates one; ``type``,
    ``was_clean``, ``code`` and ``reason`` are those of :class:`~syncws.CloseEvent`.
    """

    __slots__ = {
        "reconnecting": "Whether another attempt follows this close (``False`` on the final one).",
        "retry_delay": "Seconds until the next attempt, or ``None`` when none follows.",
    }

    reconnecting: bool
    retry_delay: Optional[float]

    _repr_fields = ("code", "reason", "was_clean", "reconnecting", "retry_delay")  # type: ignore[assignment]

    def __init__(
        self,
        type: str,
        *,
        was_clean: bool = False,
        code: int = 0,
        reason: str = "",
        reconnecting: bool = False,
        retry_delay: Optional[float] = None,
    ) -> None:
        super().__init__(type, was_clean=was_clean, code=code, reason=reason)
        object.__setattr__(self, "reconnecting", bool(reconnecting))
        object.__setattr__(self, "retry_delay", None if retry_delay is None else float(retry_delay))


def _check_close_args(code: Optional[int], reason: Optional[str]) -> Tuple[Optional[int], str]:
    """``WebSocket.close``'s argument rules: the code to use and the reason as USV text."""
    if code is not None:
        if isinstance(code, bool) or not isinstance(code, int):
            raise TypeError("close code must be an int or None")
        if code != 1000 and not 3000 <= code <= 4999:
            raise InvalidAccessError(f"close code must be 1000 or in 3000-4999, not {code}")
    if reason is None:
        return code, ""
    if not isinstance(reason, str):
        raise TypeError("close reason must be a str or None")
    encoded = usv_utf8(reason)
    if len(encoded) > 123:
        raise DOMSyntaxError(f"close reason is {len(encoded)} bytes in UTF-8; at most 123 are allowed")
    return (1000 if code is None else code), encoded.decode("utf-8")


def _message_size(data: Any) -> Tuple[Any, int]:
    """A private copy of ``data`` to send later and its size in bytes; TypeError for bad types."""
    if isinstance(data, str):
        return data, len(usv_utf8(data))
    if isinstance(data, (bytes, bytearray)):
        return bytes(data), len(data)
    if isinstance(data, memoryview):
        if not data.c_contiguous:
            raise TypeError("send() needs a C-contiguous memoryview")
        copy = data.tobytes()
        return copy, len(copy)
    if isinstance(data, Blob):
        return data, data.size
    raise TypeError(
        f"send() takes str, bytes, bytearray, memoryview or syncws.Blob, not {type(data).__name__}"
    )


def _resolve_policy(should_retry: Optional[ShouldRetry]) -> ShouldRetry:
    if should_retry is None:
        return default_should_retry
    if not callable(should_retry):
        raise TypeError("should_retry must be a callable (close_event, error) -> bool, or None")
    return should_retry


def _ask_policy(policy: ShouldRetry, close_event: CloseEvent, error: Optional[BaseException]) -> bool:
    """The policy's answer; an exception it raises is logged and counts as ``False``."""
    try:
        return bool(policy(close_event, error))
    except Exception:
        logger.exception("should_retry raised; not reconnecting")
        return False


class _Shared:
    """What the reconnect thread and the garbage-collection finalizer share with the socket.

    Holds no reference to the socket itself, so that neither keeps it alive.
    """

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.cond = threading.Condition(threading.Lock())
        self.cancelled = False  # close(), collection or interpreter exit: no more attempts
        self.dispatcher = dispatcher
        self.inner: Optional[WebSocket] = None
        # At most one syncws-reconnect thread: while one runs, the next attempt's start time
        # is handed to it (an attempt can fail before the thread that started it has ended).
        self.connector_running = False
        self.next_deadline: Optional[float] = None

    def cancel(self) -> None:
        with self.cond:
            self.cancelled = True
            self.cond.notify_all()

    def collected(self) -> None:
        """The socket was garbage collected: stop (its last inner socket then closes itself)."""
        self.cancelled = True  # no lock: the collector may run while this thread holds it
        inner, self.inner = self.inner, None
        # Nobody can hear from its connection any more: close it as a collected WebSocket
        # closes (a Close frame with no body). Its forwarding listeners would keep it alive
        # otherwise. Not here in the collector: on the executor, as the final task.
        self.dispatcher.put(lambda: inner.close() if inner is not None else None, final=True)

    def wait_until(self, deadline: float) -> bool:
        """Sleep until ``deadline`` (monotonic); False if cancelled first."""
        with self.cond:
            while not self.cancelled:
                left = deadline - time.monotonic()
                if left <= 0:
                    return True
                self.cond.wait(left)
            return False

    def claim_connector(self, deadline: float) -> bool:
        """True if the caller must start a connector thread for ``deadline``; False if the
        running one takes it on."""
        with self.cond:
            if self.connector_running:
                self.next_deadline = deadline
                return False
            self.connector_running = True
            return True

    def next_attempt(self) -> Optional[float]:
        """For the connector thread after an attempt: the next deadline handed to it, or
        None, and then it is no longer running."""
        with self.cond:
            deadline, self.next_deadline = self.next_deadline, None
            if deadline is None:
                self.connector_running = False
            return deadline

    def connector_ended(self) -> None:
        with self.cond:
            self.connector_running = False
            self.next_deadline = None


_all_shared: "weakref.WeakSet[_Shared]" = weakref.WeakSet()
_exiting = False


def _stop_all_at_exit() -> None:
    """At interpreter exit, sockets go away (their connections close with 1001): never retry.

    Registered after ``syncws.websocket``'s exit hook, so it runs before it.
    """
    global _exiting
    _exiting = True
    for shared in list(_all_shared):
        shared.cancel()


atexit.register(_stop_all_at_exit)


def _run_connector(shared: _Shared, socket_ref: "weakref.ref[ReconnectingWebSocket]", deadline: float) -> None:
    """The ``syncws-reconnect-N`` thread: wait for ``deadline`` then start the next attempt;
    again while attempts end and schedule the next before this thread is done."""
    next_deadline: Optional[float] = deadline
    try:
        while next_deadline is not None and shared.wait_until(next_deadline):
            rws = socket_ref()
            if rws is None:
                return
            rws._start_attempt()
            del rws  # held only for the attempt's start: the socket may be collected
            next_deadline = shared.next_attempt()
    finally:
        if next_deadline is not None:  # cancelled, or collected: not via next_attempt()
            shared.connector_ended()


class _Route:
    """An inner socket's executor: the owner's ordered queue, or inline once detached.

    Kept apart from :class:`_Attempt`: the inner socket's engine holds its executor, and
    nothing it holds may lead back to the inner socket, or that could never be collected.
    """

    __slots__ = ("dispatcher", "attached")

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self.attached = True  # False once close() cancelled the attempt

    def __call__(self, task: Callable[[], object]) -> None:
        if self.attached:
            self.dispatcher.put(task)
        else:
            task()  # a cancelled attempt: let it finish quietly where it is


class _Attempt:
    """One inner ``WebSocket``: forwards its events to the reconnecting socket (held weakly)."""

    def __init__(self, owner: "ReconnectingWebSocket") -> None:
        self.owner = weakref.ref(owner)
        self.route = _Route(owner._dispatcher)
        self.inner: Optional[WebSocket] = None
        self.opened_at: Optional[float] = None
        self.ending = False  # its error or close is being delivered
        self.decision: Optional[Tuple[bool, Optional[float]]] = None  # (retry, delay)
        self.retry_at = 0.0
        self.close_delivered = False

    def forward(self, event: Event) -> None:
        owner = self.owner()
        try:
            if owner is not None and self.route.attached:
                owner._on_inner_event(self, event)
        finally:
            if event.type == "close":
                # The inner socket's last event: let it go now, not at the next cyclic
                # collection (its listeners, this bound method, refer back to this attempt).
                self.inner = None


class ReconnectingWebSocket(EventTarget):
    """A ``WebSocket`` that survives the loss of its connection, over a series of connections.

    It has the whole ``WebSocket`` API (attributes, ``send``, ``close``, ``wait``, ``flush``,
    listeners, ``on...`` handlers, aliases, context manager). Every connection established
    dispatches ``open``; every attempt that fails and every connection that ends dispatches
    ``error`` (if it failed) then ``close`` (a :class:`ReconnectingCloseEvent`, whose
    ``reconnecting`` says whether another attempt follows). Between connections
    ``ready_state`` is ``CONNECTING``; it becomes ``CLOSED`` only with the final ``close``.

    Parameters:
        url: the server's URL, or a callable returning it, called before every attempt.
        protocols: subprotocols to offer, as for ``WebSocket``.
        backoff: the delays between attempts (:class:`~syncws.Backoff`).
        should_retry: ``callable(close_event, error) -> bool`` replacing the default policy
            (:func:`syncws.retry.default_should_retry`); it runs on the executor, and an
            exception it raises is logged and counts as ``False``.
        max_pending: bytes ``send()`` may queue while not ``OPEN`` (sent in order right after
            the next ``open`` event's handlers returned); ``0`` makes ``send()`` raise
            ``InvalidStateError`` instead.
        options: every ``WebSocket`` option (``executor``, the ``on...`` handlers,
            ``headers`` — which may also be a callable called before every attempt —,
            ``ssl``, ``proxy``, ``max_queue``, ``ping_interval``, ``connect=False``, ...).
    """

    CONNECTING = ReadyState.CONNECTING
    OPEN = ReadyState.OPEN
    CLOSING = ReadyState.CLOSING
    CLOSED = ReadyState.CLOSED

    onopen = EventHandlerAttribute("open")
    onmessage = EventHandlerAttribute("message")
    onerror = EventHandlerAttribute("error")
    onclose = EventHandlerAttribute("close")

    def __init__(
        self,
        url: UrlSource,
        protocols: Union[None, str, Sequence[str]] = None,
        *,
        backoff: Optional[Backoff] = None,
        should_retry: Optional[ShouldRetry] = None,
        max_pending: int = 0,
        **options: Any,
    ) -> None:
        super().__init__()
        if backoff is None:
            backoff = Backoff()
        if not isinstance(backoff, Backoff):
            raise TypeError("backoff must be a syncws.Backoff")
        if isinstance(max_pending, bool) or not isinstance(max_pending, int):
            raise TypeError("max_pending must be an int")
        if max_pending < 0:
            raise ValueError("max_pending must not be negative")
        if "sock" in options:
            raise TypeError("a ReconnectingWebSocket opens its own connections: sock= is not supported")
        self._backoff = backoff
        self._policy = _resolve_policy(should_retry)
        self._max_pending = max_pending
        start = options.pop("connect", True)
        if not isinstance(start, bool):
            raise TypeError("connect must be a bool")
        own = {name: options.pop(name, None) for name in _OWN_OPTIONS}
        self._binary_type = "blob"
        self.binary_type = own["binary_type"] if own["binary_type"] is not None else "blob"
        self._url_source: UrlSource = url
        self._headers_source: Any = options.pop("headers", None)
        self._protocols = protocols
        self._options = options
        # Validate everything now, as WebSocket's constructor does (a callable's result later).
        probe = WebSocket(
            _PROBE_URL if callable(url) else url,
            protocols,
            connect=False,
            headers=None if callable(self._headers_source) else self._headers_source,
            **options,
        )
        self._url = "" if callable(url) else probe.url
        post = as_post(own["executor"])
        # Its events come from a series of connections: a thread of its own delivers them
        # with the default executor (a connection's threads end with the connection).
        self._dispatcher = Dispatcher(post, name=f"syncws-dispatch-{id(self):x}", own_thread=True)
        self._shared = _Shared(self._dispatcher)
        _all_shared.add(self._shared)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # state, pending queue, final close
        self._state = ReadyState.CONNECTING
        self._protocol = ""
        self._extensions = ""
        self._attempt: Optional[_Attempt] = None
        self._last_inner: Optional[WebSocket] = None
        self._started = False
        self._close_request: Optional[Tuple[Optional[int], str]] = None
        self._final_queued = False
        self._failures = 0  # retry_count: failed attempts since the last reset
        self._retries = 0  # consecutive retries since the last reset (the backoff's n)
        self._pending: Deque[Tuple[Any, int]] = collections.deque()
        self._pending_bytes = 0
        self._discarded = 0
        self._warned = False
        self._open_thread: Optional[int] = None  # the thread running open handlers
        self._closed_event = threading.Event()
        for name in ("onopen", "onmessage", "onerror", "onclose"):
            if own[name] is not None:
                setattr(self, name, own[name])
        finalizer = weakref.finalize(self, self._shared.collected)
        finalizer.atexit = False
        if start:
            self.connect()

    # -- lifetime: kept alive while it has listeners and is not closed ----------------------

    _alive: ClassVar[Set["ReconnectingWebSocket"]] = set()
    _alive_lock: ClassVar[threading.Lock] = threading.Lock()

    def _update_keepalive(self) -> None:
        """Hold this socket strongly while it can still deliver an event to a listener or has
        messages queued for the next connection (the standard's garbage-collection rules)."""
        keep = self._state is not ReadyState.CLOSED and (
            bool(self._pending) or any(self._has_listeners(t) for t in _EVENT_TYPES)
        )
        with ReconnectingWebSocket._alive_lock:
            if keep:
                ReconnectingWebSocket._alive.add(self)
            else:
                ReconnectingWebSocket._alive.discard(self)

    def add_event_listener(self, type: str, listener: Any, *, once: bool = False) -> None:
        """Register ``listener`` for events of ``type``, as ``WebSocket.add_event_listener``
        (``once`` likewise); a socket with listeners is kept alive."""
        super().add_event_listener(type, listener, once=once)
        self._update_keepalive()

    def remove_event_listener(self, type: str, listener: Any) -> None:
        """Unregister ``listener`` for events of ``type``, as ``WebSocket.remove_event_listener``."""
        super().remove_event_listener(type, listener)
        self._update_keepalive()

    def _set_event_handler(self, type: str, value: Any) -> None:
        super()._set_event_handler(type, value)
        self._update_keepalive()

    # -- attributes ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The serialized URL of the current (or last) attempt; ``""`` before a callable's first."""
        return self._url

    @property
    def ready_state(self) -> ReadyState:
        """``CONNECTING`` during attempts and waits, ``OPEN``, ``CLOSING`` after ``close()``,
        ``CLOSED`` only with the final ``close`` event."""
        return self._state

    readyState = ready_state

    @property
    def buffered_amount(self) -> int:
        """Bytes queued while offline, plus the current connection's unsent bytes, plus what
        ``send()`` accepted after ``close()`` (or dropped at the final close)."""
        inner = self._last_inner
        return self._discarded + self._pending_bytes + (inner.buffered_amount if inner else 0)

    bufferedAmount = buffered_amount

    @property
    def protocol(self) -> str:
        """The subprotocol of the current connection (``""`` between connections)."""
        return self._protocol

    @property
    def extensions(self) -> str:
        """The extensions of the current connection (``""`` between connections)."""
        return self._extensions

    @property
    def binary_type(self) -> str:
        """``"blob"`` or ``"arraybuffer"``, as ``WebSocket.binary_type``, for every connection
        (``binaryType`` is an alias)."""
        return self._binary_type

    @binary_type.setter
    def binary_type(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("binary_type must be 'blob' or 'arraybuffer'")
        if value not in ("blob", "arraybuffer"):
            raise DOMSyntaxError(f"binary_type must be 'blob' or 'arraybuffer', not {value!r}")
        self._binary_type = value

    binaryType = binary_type

    @property
    def latency(self) -> Optional[float]:
        """The current connection's last keepalive round trip in seconds, or ``None``."""
        inner = self._last_inner
        return inner.latency if inner is not None and self._state is ReadyState.OPEN else None

    @property
    def retry_count(self) -> int:
        """Failed attempts since the last connection that stayed open ``backoff.reset_after``
        seconds (0 while connected after such a reset)."""
        with self._lock:
            attempt = self._attempt
            if (
                self._state is ReadyState.OPEN
                and attempt is not None
                and attempt.opened_at is not None
                and time.monotonic() - attempt.opened_at >= self._backoff.reset_after
            ):
                return 0
            return self._failures

    def __repr__(self) -> str:
        return f"<syncws.ReconnectingWebSocket {self._url or '(url pending)'} {self._state.name}>"

    # -- methods ------------------------------------------------------------------------

    def connect(self) -> None:
        """Start the first attempt (only for sockets built with ``connect=False``)."""
        with self._lock:
            if self._started or self._close_request is not None:
                raise InvalidStateError("connect() was already called or the socket is closed")
            self._started = True
        if callable(self._url_source) or callable(self._headers_source):
            self._start_connector(time.monotonic())  # user callables run on a syncws thread
        else:
            self._start_attempt()

    def send(self, data: Data) -> None:
        """Send ``data`` (as ``WebSocket.send`` takes it) on the open connection.

        While not ``OPEN`` it is queued, up to ``max_pending`` bytes in all (beyond that
        :class:`~syncws.BufferFull`), and sent right after the next ``open`` event's handlers
        returned; with ``max_pending=0`` it raises :class:`~syncws.InvalidStateError` instead.
        """
        payload, size = _message_size(data)
        warn = False
        with self._lock:
            state = self._state
            direct = state is ReadyState.OPEN and (
                not self._pending or self._open_thread == threading.get_ident()
            )
            inner = self._last_inner if direct else None
            if not direct and state in (ReadyState.CONNECTING, ReadyState.OPEN):
                self._queue_locked(payload, size)
                return
            if state in (ReadyState.CLOSING, ReadyState.CLOSED):
                self._discarded += size
                warn, self._warned = not self._warned, True
        if inner is not None:
            inner.send(data)
        elif warn:
            logger.warning("WebSocket is already in CLOSING or CLOSED state")

    def _queue_locked(self, payload: Any, size: int) -> None:
        if self._max_pending == 0:
            raise InvalidStateError(
                "send() while the ReconnectingWebSocket is not OPEN (max_pending=0)"
            )
        if self._pending_bytes + size > self._max_pending:
            raise BufferFull(
                f"{self._pending_bytes} bytes already wait for the next connection; "
                f"{size} more would exceed max_pending ({self._max_pending})"
            )
        self._pending.append((payload, size))
        self._pending_bytes += size
        if len(self._pending) == 1:
            self._update_keepalive()

    def close(self, code: Optional[int] = None, reason: Optional[str] = None) -> None:
        """Stop reconnecting and close: the open connection's ``close`` event is the final one;
        an attempt or a wait in progress is cancelled and the final ``close`` event has
        ``code`` (1000 by default), ``reason`` and ``was_clean=True``. Never blocks."""
        code, reason_text = _check_close_args(code, reason)
        with self._lock:
            state = self._state
            if state in (ReadyState.CLOSING, ReadyState.CLOSED) or self._close_request is not None:
                return
            self._close_request = (code, reason_text)
            if self._final_queued:
                return  # the final close is already on its way
            self._state = ReadyState.CLOSING
            attempt = self._attempt
            if attempt is not None and (attempt.ending and not attempt.close_delivered):
                return  # its close event, on its way, becomes the final one
            live = attempt is not None and not attempt.ending
            inner = attempt.inner if live else None  # type: ignore[union-attr]
            if not (live and state is ReadyState.OPEN):
                if live:  # an attempt in progress: cancel it, its events are ignored
                    attempt.route.attached = False  # type: ignore[union-attr]
                    self._attempt = None
                self._final_queued = True
        if live and state is ReadyState.OPEN:
            if inner is not None:
                inner.close(code, reason_text if reason is not None else None)
            return
        self._shared.cancel()
        if inner is not None:
            inner.close()
        final = 1000 if code is None else code
        self._dispatcher.put(lambda: self._deliver_cancelled(final, reason_text), final=True)

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until the final ``close`` event was delivered and its handlers returned.

        ``True`` if so, ``False`` if ``timeout`` seconds passed first (``None``: no limit).
        From a handler of this socket it raises ``InvalidStateError`` (it would wait for itself).
        """
        self._check_not_in_handler("wait")
        return self._closed_event.wait(timeout)

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Block until what ``send()`` accepted reached the OS: the offline queue went out and
        the current connection drained (or the socket closed); ``True`` if so, ``False`` if
        ``timeout`` seconds passed first."""
        self._check_not_in_handler("flush")
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                while self._state is not ReadyState.CLOSED and (
                    self._pending or self._state is not ReadyState.OPEN
                ):
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        return False
                    self._changed.wait(left)
                if self._state is ReadyState.CLOSED:
                    return True
                inner = self._last_inner
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if inner is None or inner.flush(left):
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False

    def recv(self, timeout: Optional[float] = None) -> Union[str, bytes]:
        """Raises ``InvalidStateError`` (whatever ``timeout``), as ``WebSocket.recv`` does on
        sockets that ``syncws.connect()`` did not make: scripts use ``syncws.reconnect()``."""
        raise InvalidStateError("recv() works on sockets made by syncws.connect() or syncws.reconnect()")

    def _check_not_in_handler(self, name: str) -> None:
        if self._dispatcher.running_thread == threading.get_ident():
            raise InvalidStateError(
                f"{name}() from a handler of the same ReconnectingWebSocket would wait for itself"
            )

    def __enter__(self) -> "ReconnectingWebSocket":
        """Return the socket itself; leaving the block closes it (see :meth:`__exit__`)."""
        return self

    def __exit__(self, *exc_info: Any) -> None:
        """Stop reconnecting, close with 1000 and wait up to ``close_timeout`` for the final
        ``close`` event."""
        self.close(1000)
        timeout = self._options.get("close_timeout", 10.0)
        if self._dispatcher.running_thread != threading.get_ident():
            self._closed_event.wait(None if timeout is None else timeout + 1.0)

    # -- attempts (the constructor's thread or a syncws-reconnect thread) ------------------

    def _start_connector(self, deadline: float) -> None:
        if not self._shared.claim_connector(deadline):
            return
        thread = threading.Thread(
            target=_run_connector,
            args=(self._shared, weakref.ref(self), deadline),
            name=f"syncws-reconnect-{next(_connector_ids)}",
            daemon=True,
        )
        try:
            thread.start()
        except BaseException:
            self._shared.connector_ended()
            raise

    def _start_attempt(self) -> None:
        """Make the next inner socket (calling ``url``/``headers`` if callables) and connect it."""
        attempt = _Attempt(self)
        try:
            url = self._url_source() if callable(self._url_source) else self._url_source
            headers = self._headers_source() if callable(self._headers_source) else self._headers_source
            inner = WebSocket(
                url,
                self._protocols,
                executor=attempt.route,
                binary_type="arraybuffer",
                headers=headers,
                connect=False,
                **self._options,
            )
        except Exception as exc:  # a bad URL or header from a callable ends the socket
            logger.warning("reconnecting socket: cannot start an attempt: %r", exc)
            self._end_with_error(exc)
            return
        for type in _EVENT_TYPES:
            inner.add_event_listener(type, attempt.forward)
        attempt.inner = inner
        with self._lock:
            if self._close_request is not None or self._final_queued:
                return  # close() came first
            self._attempt = attempt
            self._last_inner = inner
            self._shared.inner = inner
            self._url = inner.url
        try:
            inner.connect()
        except InvalidStateError:
            pass  # close() cancelled this attempt in the meantime

    def _end_with_error(self, error: BaseException) -> None:
        with self._lock:
            if self._final_queued or self._close_request is not None:
                return
            self._final_queued = True
        self._dispatcher.put(lambda: self._deliver_failed(error), final=True)

    # -- delivery (on the executor, one task at a time) -----------------------------------

    def _on_inner_event(self, attempt: _Attempt, event: Event) -> None:
        if attempt is not self._attempt:
            return
        kind = event.type
        if kind == "message":
            self._forward_message(event)  # type: ignore[arg-type]
        elif kind == "open":
            self._forward_open(attempt)
        elif kind == "error":
            self._forward_error(attempt, event)  # type: ignore[arg-type]
        elif kind == "close":
            self._forward_close(attempt, event)  # type: ignore[arg-type]

    def _forward_open(self, attempt: _Attempt) -> None:
        inner = attempt.inner
        assert inner is not None
        with self._lock:
            if self._state is not ReadyState.CONNECTING or attempt is not self._attempt:
                return
            self._state = ReadyState.OPEN
            self._protocol = inner.protocol
            self._extensions = inner.extensions
            attempt.opened_at = time.monotonic()
            self._open_thread = threading.get_ident()
        try:
            self.dispatch_event(Event("open"))
        finally:
            with self._lock:
                self._open_thread = None
                if self._state is ReadyState.OPEN:
                    # Under the lock: a send() from another thread waits, then goes after these.
                    while self._pending:
                        payload, size = self._pending.popleft()
                        self._pending_bytes -= size
                        inner.send(payload)
                self._changed.notify_all()
            self._update_keepalive()

    def _forward_message(self, event: MessageEvent) -> None:
        if self._state is not ReadyState.OPEN:
            return  # close() was called: undelivered messages are dropped
        data = event.data
        if data.__class__ is bytes and self._binary_type == "blob":
            data = Blob([data])
        self.dispatch_event(MessageEvent("message", data=data, origin=event.origin))

    def _forward_error(self, attempt: _Attempt, event: ErrorEvent) -> None:
        # A failed connection always ends with close 1006 (API.md): decide now, so that
        # ready_state inside onerror already says whether another attempt follows.
        if self._decide(attempt, CloseEvent("close", was_clean=False, code=1006), event.error):
            self.dispatch_event(ErrorEvent("error", error=event.error, message=event.message))

    def _forward_close(self, attempt: _Attempt, event: CloseEvent) -> None:
        if attempt.decision is None and not self._decide(attempt, event, None):
            return
        with self._lock:
            if attempt is not self._attempt:
                return  # close() cancelled it meanwhile: its final close is on its way
            retry, delay = attempt.decision or (False, None)
            if self._close_request is not None or self._final_queued:
                retry, delay = False, None
            attempt.close_delivered = True
            self._state = ReadyState.CONNECTING if retry else ReadyState.CLOSED
            self._protocol = self._extensions = ""
            if not retry:
                self._final_queued = True
        closing = ReconnectingCloseEvent(
            "close", was_clean=event.was_clean, code=event.code, reason=event.reason,
            reconnecting=retry, retry_delay=delay,
        )
        try:
            self.dispatch_event(closing)
        finally:
            if retry:
                self._schedule_retry(attempt)
            else:
                self._finish()
                self._dispatcher.put(lambda: None, final=True)  # ends the dispatcher

    def _decide(self, attempt: _Attempt, close_event: CloseEvent, error: Optional[BaseException]) -> bool:
        """Ask the policy (outside the lock: it is user code), then count and pick the delay.

        False when ``close()`` cancelled the attempt first: its events are not dispatched.
        """
        with self._lock:
            if attempt is not self._attempt:
                return False
            attempt.ending = True
            stopping = self._close_request is not None or _exiting
        retry = False if stopping else _ask_policy(self._policy, close_event, error)
        now = time.monotonic()
        backoff = self._backoff
        with self._lock:
            lasted = attempt.opened_at is not None and now - attempt.opened_at >= backoff.reset_after
            if lasted:
                self._failures = self._retries = 0
            else:
                self._failures += 1
            limit = backoff.max_attempts
            if retry and limit is not None and self._failures >= limit:
                logger.warning("giving up after %d failed attempts", self._failures)
                retry = False
            delay: Optional[float] = None
            if retry and self._close_request is None:
                self._retries += 1
                delay = backoff.delay(self._retries, retry_after(error))
                attempt.retry_at = now + delay
                logger.info(
                    "reconnecting to %s in %.2f s (attempt %d)", self._url, delay, self._retries + 1
                )
            else:
                retry = False
            attempt.decision = (retry, delay)
            self._state = ReadyState.CONNECTING if retry else ReadyState.CLOSED
        return True

    def _schedule_retry(self, attempt: _Attempt) -> None:
        with self._lock:
            if self._close_request is not None or self._final_queued:
                return  # close() from a close handler: it queued the final close
        self._start_connector(attempt.retry_at)

    def _deliver_cancelled(self, code: int, reason: str) -> None:
        with self._lock:
            self._state = ReadyState.CLOSED
            self._protocol = self._extensions = ""
        try:
            self.dispatch_event(
                ReconnectingCloseEvent("close", was_clean=True, code=code, reason=reason)
            )
        finally:
            self._finish()

    def _deliver_failed(self, error: BaseException) -> None:
        with self._lock:
            self._state = ReadyState.CLOSED
        try:
            message = str(error) or type(error).__name__
            self.dispatch_event(ErrorEvent("error", error=error, message=message))
            self.dispatch_event(ReconnectingCloseEvent("close", code=1006))
        finally:
            self._finish()

    def _finish(self) -> None:
        """After the final close event's handlers: drop the offline queue, release waiters."""
        self._shared.cancel()
        with self._lock:
            self._state = ReadyState.CLOSED
            self._discarded += self._pending_bytes  # never sent: still counted, as WebSocket does
            self._pending.clear()
            self._pending_bytes = 0
            self._shared.inner = None
            self._changed.notify_all()
        self._closed_event.set()
        self._update_keepalive()


def _options_probe(url: UrlSource, protocols: Any, options: Mapping[str, Any]) -> None:
    """Validate ``reconnect()``'s options now, as ``WebSocket``'s constructor would."""
    headers = options.get("headers")
    probe_options = dict(options)
    probe_options["headers"] = None if callable(headers) else headers
    WebSocket(_PROBE_URL if callable(url) else url, protocols, connect=False, **probe_options)


def _ended(ws: WebSocket) -> Optional[Tuple[CloseEvent, Optional[BaseException]]]:
    """How ``ws`` ended (close event, error), or ``None`` while it is still open.

    Messages the loop body left unread are dropped: the socket is being replaced.
    """
    while True:
        try:
            ws.recv(timeout=0)
        except TimeoutError:
            return None
        except ConnectionClosed as closed:
            event = CloseEvent("close", was_clean=closed.was_clean, code=closed.code, reason=closed.reason)
            return event, closed.__cause__


class _Reconnector(Iterator[WebSocket]):
    """The iterator ``reconnect()`` returns (see its documentation)."""

    def __init__(
        self,
        url: UrlSource,
        protocols: Any,
        timeout: Optional[float],
        backoff: Backoff,
        policy: ShouldRetry,
        options: Mapping[str, Any],
    ) -> None:
        self._url = url
        self._protocols = protocols
        self._timeout = timeout
        self._backoff = backoff
        self._policy = policy
        self._options = dict(options)
        self._previous: Optional[WebSocket] = None
        self._opened_at = 0.0
        self._failures = 0  # consecutive failed attempts (max_attempts)
        self._retries = 0  # consecutive retries (the backoff's n)

    def __iter__(self) -> "_Reconnector":
        return self

    def __next__(self) -> WebSocket:
        ended = self._settle_previous()
        while True:
            if ended is not None:
                self._back_off(*ended)
            try:
                ws = self._attempt()
            except Exception as exc:
                self._failures += 1
                ended = (CloseEvent("close", code=1006), exc)
                continue
            self._previous = ws
            self._opened_at = time.monotonic()
            return ws

    def _attempt(self) -> WebSocket:
        url = self._url() if callable(self._url) else self._url
        options = dict(self._options)
        if callable(options.get("headers")):
            options["headers"] = options["headers"]()
        return connect(url, self._protocols, timeout=self._timeout, **options)

    def _settle_previous(self) -> Optional[Tuple[CloseEvent, Optional[BaseException]]]:
        """Close the previous socket if the body left it open, wait for its end, and say how
        it ended: ``None`` when it was still open (or closing) when the body handed it back,
        so the next attempt is due at once; else its close for the policy and the backoff."""
        ws = self._previous
        if ws is None:
            return None
        self._previous = None
        ended = None if ws.ready_state is ReadyState.CLOSING else _ended(ws)
        ws.close(1000)
        close_timeout = self._options.get("close_timeout", 10.0)
        ws.wait(None if close_timeout is None else close_timeout + 1.0)
        if time.monotonic() - self._opened_at >= self._backoff.reset_after:
            self._failures = self._retries = 0
        elif ended is not None:
            self._failures += 1  # a short connection counts as a failed attempt
        return ended

    def _back_off(self, close_event: CloseEvent, error: Optional[BaseException]) -> None:
        """Sleep before the next attempt, or raise if the policy or max_attempts says stop."""
        retry = _ask_policy(self._policy, close_event, error)
        limit = self._backoff.max_attempts
        if retry and limit is not None and self._failures >= limit:
            retry = False
        if not retry:
            if error is not None:
                raise error
            raise ConnectionClosed(close_event.code, close_event.reason, close_event.was_clean)
        self._retries += 1
        delay = self._backoff.delay(self._retries, retry_after(error))
        logger.info("reconnecting in %.2f s (attempt %d)", delay, self._retries + 1)
        time.sleep(delay)


def reconnect(
    url: UrlSource,
    protocols: Union[None, str, Sequence[str]] = None,
    *,
    timeout: Optional[float] = 10.0,
    backoff: Optional[Backoff] = None,
    should_retry: Optional[ShouldRetry] = None,
    **options: Any,
) -> Iterator[WebSocket]:
    """Connected sockets, one per successful connection, for scripts.

    Each is what ``syncws.connect(url, protocols, timeout=timeout, **options)`` returns
    (``url`` and ``headers=`` may be callables called before every attempt). A failed attempt
    that the policy retries is retried after the backoff delay; one it does not retry raises
    what ``connect()`` raised; when ``backoff.max_attempts`` is exhausted, the last error is
    raised. Before the next connection, the previous socket is closed with 1000 if the loop
    body left it open, and its end is waited for; a connection the server ended counts as a
    failure for the policy and the backoff (one that lasted ``backoff.reset_after`` seconds
    resets the count). The waits run on the caller's thread: this form is for scripts.
    ``should_retry(close_event, error) -> bool`` replaces the default retry policy, as for
    :class:`ReconnectingWebSocket`.
    """
    if backoff is None:
        backoff = Backoff()
    if not isinstance(backoff, Backoff):
        raise TypeError("backoff must be a syncws.Backoff")
    if "connect" in options or "sock" in options:
        raise TypeError("reconnect() does not take a 'connect' or 'sock' option")
    policy = _resolve_policy(should_retry)
    _options_probe(url, protocols, options)
    return _Reconnector(url, protocols, timeout, backoff, policy, options)

