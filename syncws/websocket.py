"""The ``WebSocket`` class of the WHATWG standard, rendered in Python, and ``connect()``.

This layer is thin on purpose: it validates arguments, keeps the state the user sees
(``ready_state`` changes as each event is delivered, as the standard's queued tasks do) and
talks to the engine. Events travel: engine (reader thread) -> :class:`_Sink` -> the socket's
:class:`~syncws.dispatch.Dispatcher` -> the user's executor -> listeners.
"""

from __future__ import annotations

import atexit
import base64
import http.cookiejar
import logging
import socket
import ssl as _ssl
import threading
import time
import weakref
from dataclasses import replace
from typing import (
    Any,
    Callable,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from ._version import __version__
from .blob import Blob
from .dispatch import Dispatcher
from .engine import Engine, EngineOptions, EngineSink, HandshakeSpec
from .errors import (
    BufferFull,
    ConnectionClosed,
    DOMSyntaxError,
    HandshakeError,
    InvalidAccessError,
    InvalidStateError,
)
from .events import CloseEvent, ErrorEvent, Event, EventHandlerAttribute, EventTarget, MessageEvent
from .executors import ExecutorLike, as_post
from .inbox import Inbox
from .protocol.deflate import DeflateOptions, options_from_user
from .redirects import headers_for, redirect_url, same_origin
from .state import Ending, ReadyState, SocketState
from .protocol.handshake import PROTOCOL_OWNED_HEADERS, Response, check_header_field
from .text import usv_utf8
from .transport import ConnectTarget
from .url import WebSocketURL, parse_ws_url, validate_protocols

logger = logging.getLogger("syncws")

#: What ``headers=`` accepts: a mapping, or (name, value) pairs (a name may repeat).
HeadersLike = Union[Mapping[str, str], Iterable[Tuple[str, str]]]
#: What ``compression=`` accepts: on/off, DeflateOptions, or a mapping of its field names.
CompressionLike = Union[bool, DeflateOptions, Mapping[str, Union[int, bool, None]], None]

__all__ = ["ReadyState", "WebSocket", "connect", "CONNECTING", "OPEN", "CLOSING", "CLOSED"]

#: Inbound limit after decompression (1009 beyond it). Browsers have none; a library should.
DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024
#: Outbound limit: send() beyond it flags the socket as full and fails the connection.
DEFAULT_MAX_BUFFERED_AMOUNT = 64 * 1024 * 1024
#: Undelivered inbound events per socket before the reader stops reading.
DEFAULT_MAX_QUEUE = 32

_DEFAULT_USER_AGENT = f"syncws/{__version__}"


CONNECTING = ReadyState.CONNECTING
OPEN = ReadyState.OPEN
CLOSING = ReadyState.CLOSING
CLOSED = ReadyState.CLOSED

_BINARY_TYPES = ("blob", "arraybuffer")

#: The event types whose listeners keep a socket alive in each state (the standard's
#: "Garbage collection" section); data not yet written keeps it alive in any state.
_HEARD_IN = {
    ReadyState.CONNECTING: ("open", "message", "error", "close"),
    ReadyState.OPEN: ("message", "error", "close"),
    ReadyState.CLOSING: ("error", "close"),
    ReadyState.CLOSED: (),
}


def _check_timeout(name: str, value: Optional[float]) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds or None")
    if value < 0:
        raise ValueError(f"{name} must not be negative")
    return float(value)


def _check_limit(name: str, value: Optional[int]) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int or None")
    if value < 1:
        raise ValueError(f"{name} must be at least 1")
    return value


def _normalize_headers(headers: Optional[HeadersLike]) -> List[Tuple[str, str]]:
    if headers is None:
        return []
    items: List[Tuple[Any, ...]]
    if isinstance(headers, Mapping):
        items = list(headers.items())
    elif isinstance(headers, (str, bytes)):
        raise TypeError("headers must be a mapping or an iterable of (name, value) pairs")
    else:
        try:
            items = [tuple(pair) for pair in headers]
        except TypeError:
            raise TypeError("headers must be a mapping or an iterable of (name, value) pairs") from None
    result: List[Tuple[str, str]] = []
    for item in items:
        if len(item) != 2:
            raise TypeError("each header must be a (name, value) pair")
        name, value = item
        check_header_field(name, value)
        if name.lower() in PROTOCOL_OWNED_HEADERS:
            raise ValueError(
                f"header {name!r} belongs to the WebSocket handshake; "
                "use protocols= or compression= instead of setting it"
                if name.lower() in ("sec-websocket-protocol", "sec-websocket-extensions")
                else f"header {name!r} belongs to the WebSocket handshake and cannot be set"
            )
        result.append((name, value))
    return result


def _to_payload(data: Any) -> Tuple[Union[bytes, Blob], bool, int]:
    """What ``send()`` queues, whether it is text, and its length; TypeError for other types.

    Mutable buffers are copied (the message is what they held at the call, as the standard
    snapshots an ArrayBuffer); a Blob is immutable and is read on the writer thread.
    """
    if isinstance(data, str):
        payload = usv_utf8(data)
        return payload, True, len(payload)
    if isinstance(data, bytes):
        return data, False, len(data)
    if isinstance(data, bytearray):
        return bytes(data), False, len(data)
    if isinstance(data, memoryview):
        if not data.c_contiguous:
            raise TypeError("send() needs a C-contiguous memoryview")
        return data.tobytes(), False, data.nbytes
    if isinstance(data, Blob):
        return data, False, data.size
    raise TypeError(
        "send() takes str, bytes, bytearray, memoryview or syncws.Blob, "
        f"not {type(data).__name__}"
    )


class _Sink(EngineSink):
    """The engine's view of a WebSocket.

    It holds the socket weakly, so that a socket nobody can hear from any more is collected
    (and its finalizer sends the empty Close), and strongly while the standard's
    garbage-collection rules say it must live: :meth:`WebSocket._update_lifetime` decides.
    The engine's threads hold the sink, so a strong reference here keeps the socket alive for
    as long as its connection runs.
    """

    def __init__(
        self, ws: "WebSocket", state: SocketState, dispatcher: Dispatcher, inbox: Optional[Inbox]
    ) -> None:
        self._ref = weakref.ref(ws)
        self.strong: Optional[WebSocket] = None
        self.state = state
        self.dispatcher = dispatcher
        self.inbox = inbox

    def drained(self) -> None:
        ws = self._ref()
        if ws is not None:
            ws._update_lifetime()

    def on_open(self, protocol: str, extensions: str, response: Response) -> None:
        ws = self._ref()
        if ws is None:
            return
        ws._store_cookies(response)
        self.dispatcher.put(lambda: ws._deliver_open(protocol, extensions))

    def on_messages(self, messages: List[Union[str, bytes]]) -> None:
        if self.state.close_requested:
            return  # the standard drops what was not delivered before close()
        ws = self._ref()
        if ws is None:
            return
        inbox = self.inbox
        if inbox is not None:
            for data in messages:
                inbox.put(data)
            if not ws._has_listeners("message"):
                return
        self.dispatcher.put(lambda: ws._deliver_messages(messages), weight=len(messages))

    def on_closed(self, ending: Ending) -> None:
        if self.inbox is not None:
            self.inbox.end()
        ws = self._ref()
        if ws is None:
            self.dispatcher.put(lambda: None, final=True)  # ends the dispatcher's thread
            return
        error = ending.error
        if error is not None:
            self.dispatcher.put(lambda: ws._deliver_error(error))
        self.dispatcher.put(lambda: ws._deliver_close(ending), final=True)

    def wait_for_room(self) -> bool:
        waited = self.dispatcher.wait_for_room()
        if self.inbox is not None:
            waited = self.inbox.wait_for_room() or waited
        return waited

    @property
    def deferring(self) -> bool:
        return self.dispatcher.deferring

    def take_deferred(self) -> Optional[Callable[[], object]]:
        return self.dispatcher.take_deferred()

    def wait_delivered(self, timeout: float) -> None:
        # Input has stopped: what this thread would deliver next, it delivers now.
        drain = self.dispatcher.take_deferred()
        while drain is not None:
            drain()
            drain = self.dispatcher.take_deferred()
        self.dispatcher.wait_idle(timeout)

    def wake(self) -> None:
        self.dispatcher.wake()
        if self.inbox is not None:
            self.inbox.wake()


_live_engines: "weakref.WeakSet[Engine]" = weakref.WeakSet()


def _close_all_at_exit() -> None:
    """The standard's "document goes away": open sockets close with 1001 at interpreter exit."""
    engines = [engine for engine in list(_live_engines) if engine.close_if_open(1001)]
    deadline = time.monotonic() + 1.0  # one bound for all: exit must not wait per socket
    for engine in engines:
        engine.flush(max(0.0, deadline - time.monotonic()), control=True)


atexit.register(_close_all_at_exit)


def _close_on_collect(engine: Engine) -> None:
    # The standard: an open socket that is garbage collected sends a Close with no body.
    engine.close_collected()


class WebSocket(EventTarget):
    """A WebSocket connection with the browser's API (WHATWG WebSockets standard).

    The constructor validates its arguments at once, then returns while the connection is
    established in the background (the standard's "in parallel"). Events are delivered one
    at a time, in order, on ``executor``: ``open`` at most once, then ``message`` events,
    then ``error`` at most once (only when the connection failed), then ``close`` exactly
    once, last. A connection that cannot be made never raises from the constructor: it ends
    with an ``error`` event (carrying the reason in ``event.error``) and a ``close`` event
    with code 1006.

    Pass the handlers to the constructor (or use ``connect=False`` and call
    :meth:`connect` after adding listeners) to be sure to see ``open``. Used as a context
    manager, the socket is closed with code 1000 on exit and the ``with`` block waits up to
    ``close_timeout`` for the ``close`` event. syncws keeps a socket alive by itself while a
    listener can still hear from it, so ``WebSocket(url, onmessage=show)`` works without
    keeping a reference; open sockets are closed with 1001 at interpreter exit.

    Args:
        url: ``ws://`` or ``wss://`` URL (``http://``/``https://`` are converted). A URL
            that does not parse, another scheme, or any fragment (even an empty ``#``)
            raises :class:`~syncws.DOMSyntaxError`. Credentials in it (``ws://user:pass@host/``)
            are sent as HTTP Basic ``Authorization`` unless ``headers`` sets one.
        protocols: subprotocols to offer, a ``str`` or a sequence of them, in order of
            preference (``Sec-WebSocket-Protocol``). Empty, duplicated (case-insensitively)
            or invalid tokens raise :class:`~syncws.DOMSyntaxError`. If the server selects
            none of several offered, or one that was not offered, the connection fails.
        executor: where handlers run. ``None`` (default): on the socket's own threads.
            An object with ``submit(fn)`` (e.g. a :class:`concurrent.futures.ThreadPoolExecutor`),
            a callable ``post(fn)``, or an adapter from :mod:`syncws.executors`
            (``InlineExecutor()``, ``TkExecutor(root)``, ``QtExecutor()``). Whatever it is,
            this socket's events run one at a time, in order.
        onopen: handler for the ``open`` event (:class:`~syncws.Event`), same as setting
            ``ws.onopen`` before the connection starts.
        onmessage: handler for ``message`` events (:class:`~syncws.MessageEvent`).
        onerror: handler for the ``error`` event (:class:`~syncws.ErrorEvent`).
        onclose: handler for the ``close`` event (:class:`~syncws.CloseEvent`).
        binary_type: how binary messages reach ``message`` events: ``"blob"`` (default,
            a :class:`~syncws.Blob`) or ``"arraybuffer"`` (``bytes``). Also a read/write
            attribute.
        headers: extra request headers, a mapping or an iterable of ``(name, value)`` pairs
            (names may repeat). They may override ``Host``, ``User-Agent`` and ``Origin``;
            the headers the protocol owns (``Sec-WebSocket-*``, ``Upgrade``, ``Connection``)
            and names or values that could inject headers raise ``ValueError``.
        origin: value of the ``Origin`` header; none is sent by default.
        user_agent: value of the ``User-Agent`` header (default ``syncws/<version>``).
        cookies: an :class:`http.cookiejar.CookieJar`. Matching cookies are sent (secure
            ones only over ``wss://``) and the ``Set-Cookie`` headers of the server's answer
            are stored in it before ``open`` is dispatched.
        ssl: an :class:`ssl.SSLContext` for ``wss://`` (and for an ``https://`` proxy).
            Default: verify the server against certifi's CA bundle (or the CAs of
            ``SSL_CERT_FILE``/``SSL_CERT_DIR`` when set), check the host name, send SNI.
        proxy: ``"auto"`` (default) reads ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` and
            ``NO_PROXY`` from the environment as ``urllib`` does; ``None`` connects directly;
            or a proxy URL: ``http://``, ``https://``, ``socks5://``, ``socks5h://``,
            ``socks4://``, ``socks4a://`` (SOCKS needs ``pip install "syncws[socks]"``), with
            optional ``user:password@``.
        compression: permessage-deflate (RFC 7692). ``True`` (default) offers what browsers
            offer, ``False`` or ``None`` offers nothing, a ``dict`` or a
            :class:`syncws.protocol.deflate.DeflateOptions` tunes the offer and the
            compressor. What the server accepts is in :attr:`extensions`.
        max_message_size: largest inbound message in bytes, counted after decompression
            (default 64 MiB); a bigger one fails the connection (Close 1009,
            :class:`~syncws.MessageTooBig`). ``None``: unlimited.
        max_buffered_amount: outbound limit in bytes (default 64 MiB). A ``send()`` while
            :attr:`buffered_amount` already exceeds it flags the socket as full and fails
            the connection (:class:`~syncws.BufferFull`). ``None``: unlimited.
        max_queue: how many received events may wait for a handler (default 32) before the
            reader thread stops reading, so that TCP pushes back on the server and memory
            stays bounded. ``None``: unlimited.
        open_timeout: seconds allowed for TCP, proxy, TLS and the opening handshake
            (default 10). ``None``: no limit.
        close_timeout: seconds to wait for the closing handshake to finish before the
            connection is dropped (default 10). ``None``: no limit.
        ping_interval: seconds between keepalive pings while open (default 20); the round
            trip of the last one is :attr:`latency`. ``None`` disables keepalive.
        ping_timeout: seconds to wait for a ping's pong (default 20); without it the
            connection fails (``error`` with :class:`~syncws.KeepaliveTimeout`, then
            ``close`` 1006). ``None``: wait forever.
        connect: ``True`` (default) starts connecting at once; ``False`` waits for
            :meth:`connect`.
        sock: an already connected :class:`socket.socket` to speak WebSocket over (a Unix
            socket, one end of ``socket.socketpair()``, your own tunnel). The URL still
            names the resource, the ``Host`` and, for ``wss://``, the name TLS checks; no
            proxy is used, and syncws closes the socket when the connection ends.
        follow_redirects: ``False`` (default, the standard's rule): a redirect answer fails
            the connection with a :class:`~syncws.HandshakeError` that shows the
            ``Location``. ``True`` follows 301, 302, 303, 307 and 308 up to 5 hops, never from
            ``wss://`` to ``ws://``; to another origin the URL's credentials and the
            ``Authorization``, ``Cookie`` and ``Host`` of ``headers`` are not sent, and
            ``cookies`` are matched again for each URL. Not with ``sock``.

    Raises:
        DOMSyntaxError: for a bad URL or bad ``protocols``.
        TypeError: for an argument of the wrong type.
        ValueError: for a bad value (a negative timeout, a protocol-owned header, a bad
            proxy URL or compression option).

    Attributes:
        CONNECTING: :attr:`ReadyState.CONNECTING` (0), also ``syncws.CONNECTING``.
        OPEN: :attr:`ReadyState.OPEN` (1).
        CLOSING: :attr:`ReadyState.CLOSING` (2).
        CLOSED: :attr:`ReadyState.CLOSED` (3).
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
        url: str,
        protocols: Union[None, str, Sequence[str]] = None,
        *,
        executor: Optional[ExecutorLike] = None,
        onopen: Optional[Callable[[Event], object]] = None,
        onmessage: Optional[Callable[[MessageEvent], object]] = None,
        onerror: Optional[Callable[[ErrorEvent], object]] = None,
        onclose: Optional[Callable[[CloseEvent], object]] = None,
        binary_type: str = "blob",
        headers: Optional[HeadersLike] = None,
        origin: Optional[str] = None,
        user_agent: Optional[str] = None,
        cookies: Optional[http.cookiejar.CookieJar] = None,
        ssl: Optional[_ssl.SSLContext] = None,
        proxy: Optional[str] = "auto",
        compression: CompressionLike = True,
        max_message_size: Optional[int] = DEFAULT_MAX_MESSAGE_SIZE,
        max_buffered_amount: Optional[int] = DEFAULT_MAX_BUFFERED_AMOUNT,
        max_queue: Optional[int] = DEFAULT_MAX_QUEUE,
        open_timeout: Optional[float] = 10.0,
        close_timeout: Optional[float] = 10.0,
        ping_interval: Optional[float] = 20.0,
        ping_timeout: Optional[float] = 20.0,
        connect: bool = True,
        sock: Optional[socket.socket] = None,
        follow_redirects: bool = False,
    ) -> None:
        super().__init__()
        self._socket_state = SocketState()  # the one owner of "is it closed, and how?"
        self._sink: Optional[_Sink] = None  # set by connect(); _listeners_changed() reads it
        self._lifetime_lock = threading.Lock()
        self._warned_send_after_close = False
        parsed = parse_ws_url(url)
        self._parsed: WebSocketURL = parsed
        self._origin = parsed.origin  # MessageEvent.origin, computed once
        self._protocols = validate_protocols(protocols)
        post = as_post(executor)
        self._set_binary_type(binary_type)
        request_headers = _normalize_headers(headers)
        for name, value in (("origin", origin), ("user_agent", user_agent)):
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{name} must be a str or None")
        if cookies is not None and not isinstance(cookies, http.cookiejar.CookieJar):
            raise TypeError("cookies must be an http.cookiejar.CookieJar or None")
        if ssl is not None and not isinstance(ssl, _ssl.SSLContext):
            raise TypeError("ssl must be an ssl.SSLContext or None")
        if sock is not None and not isinstance(sock, socket.socket):
            raise TypeError("sock must be a connected socket.socket or None")
        proxy_url = self._resolve_proxy(proxy, sock)
        deflate_options = options_from_user(compression)
        options = EngineOptions(
            open_timeout=_check_timeout("open_timeout", open_timeout),
            close_timeout=_check_timeout("close_timeout", close_timeout),
            ping_interval=_check_timeout("ping_interval", ping_interval),
            ping_timeout=_check_timeout("ping_timeout", ping_timeout),
            max_message_size=_check_limit("max_message_size", max_message_size),
        )
        self._max_buffered_amount = _check_limit("max_buffered_amount", max_buffered_amount)
        max_queue = _check_limit("max_queue", max_queue)
        if not isinstance(connect, bool):
            raise TypeError("connect must be a bool")
        if not isinstance(follow_redirects, bool):
            raise TypeError("follow_redirects must be a bool")
        if follow_redirects and sock is not None:
            raise ValueError("follow_redirects=True needs syncws to connect: not with sock=")
        for name, handler in (
            ("onopen", onopen),
            ("onmessage", onmessage),
            ("onerror", onerror),
            ("onclose", onclose),
        ):
            if handler is not None:
                setattr(self, name, handler)

        self._cookies = cookies
        self._lock = threading.Lock()  # connect() and close() against each other
        self._protocol = ""
        self._extensions = ""
        self._discarded_before_engine = 0
        self._inbox: Optional[Inbox] = None
        self._dispatcher = Dispatcher(post, name=f"syncws-dispatch-{id(self):x}", max_queue=max_queue)
        self._max_queue = max_queue

        if user_agent is None:
            user_agent = _DEFAULT_USER_AGENT
        all_headers = _handshake_headers(parsed, request_headers, origin, user_agent, cookies)
        spec = HandshakeSpec(
            host_header=parsed.host_header,
            resource=parsed.resource_name,
            protocols=self._protocols,
            headers=all_headers,
            extension_offer=None,
        )
        if deflate_options is not None:
            from .protocol import deflate

            spec.extension_offer = deflate.client_offer(deflate_options)
            spec.accept_extensions = lambda values: deflate.client_accept(values, deflate_options)
        else:
            spec.accept_extensions = _refuse_extensions
        self._redirects: Optional[_RedirectFollower] = None
        if follow_redirects:
            self._redirects = _RedirectFollower(
                parsed, request_headers, origin, user_agent, cookies, proxy, ssl, spec
            )
            spec.follow_redirect = self._redirects
        target = ConnectTarget(
            host=parsed.hostname,
            port=parsed.port,
            secure=parsed.secure,
            ssl_context=ssl,
            proxy=proxy_url,
            proxy_ssl_context=ssl,  # an https:// proxy is verified like the server
            sock=sock,
            user_agent=user_agent,
        )
        self._engine_args = (target, spec, options)
        self._engine: Optional[Engine] = None
        if connect:
            self.connect()

    # -- construction helpers --------------------------------------------------------------

    def _resolve_proxy(self, proxy: Optional[str], sock: Optional[socket.socket]) -> Optional[str]:
        if proxy is not None and not isinstance(proxy, str):
            raise TypeError("proxy must be 'auto', None or a proxy URL string")
        if sock is not None:
            return None
        return _select_proxy(proxy, self._parsed)

    def _store_cookies(self, response: Response) -> None:
        if self._cookies is not None:
            # After redirects, the cookies of the 101 belong to the URL that answered it.
            answered = self._redirects.url if self._redirects is not None else self._parsed
            _store_cookies(self._cookies, answered, response)

    # -- attributes -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The serialized URL (always with a path, e.g. ``ws://h:8080/``)."""
        return self._parsed.href

    @property
    def ready_state(self) -> ReadyState:
        """The connection's state, a :class:`ReadyState` (``readyState`` is an alias).

        It changes as each event is delivered: ``OPEN`` inside ``onopen``, ``CLOSED`` inside
        ``onerror`` and ``onclose``; ``CLOSING`` as soon as :meth:`close` is called.
        """
        return self._socket_state.ready_state

    readyState = ready_state

    @property
    def buffered_amount(self) -> int:
        """Bytes accepted by ``send()`` and not yet handed to the OS (``bufferedAmount``).

        Counts application data only (UTF-8 for text), never framing or compression. It keeps
        growing when ``send()`` is called after the connection closed, as in browsers.
        """
        engine = self._engine
        return self._discarded_before_engine + (engine.buffered_amount if engine else 0)

    bufferedAmount = buffered_amount

    @property
    def protocol(self) -> str:
        """The subprotocol the server selected, or ``""`` (always ``""`` until ``open``)."""
        return self._protocol

    @property
    def extensions(self) -> str:
        """The extensions the server accepted, e.g. ``"permessage-deflate"``; ``""`` until
        ``open`` and when none were."""
        return self._extensions

    @property
    def binary_type(self) -> str:
        """``"blob"`` or ``"arraybuffer"``: whether binary messages reach ``message`` events
        as :class:`~syncws.Blob` or ``bytes`` (``binaryType`` is an alias). Read when each
        event is dispatched. Another string raises :class:`~syncws.DOMSyntaxError`, a
        non-string ``TypeError``, and the value stays unchanged. ``recv()`` always returns
        ``bytes``."""
        return self._binary_type

    @binary_type.setter
    def binary_type(self, value: str) -> None:
        self._set_binary_type(value)

    binaryType = binary_type

    def _set_binary_type(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("binary_type must be 'blob' or 'arraybuffer'")
        if value not in _BINARY_TYPES:
            raise DOMSyntaxError(f"binary_type must be 'blob' or 'arraybuffer', not {value!r}")
        self._binary_type = value

    @property
    def latency(self) -> Optional[float]:
        """Seconds of the last keepalive ping's round trip, or ``None``."""
        engine = self._engine
        return engine.latency if engine else None

    # -- methods ----------------------------------------------------------------------------

    def connect(self) -> None:
        """Start connecting, for a socket built with ``connect=False``.

        Returns at once; the events follow as for a socket that connected on construction.
        Adding listeners first, then calling ``connect()``, is the race-free way to see
        every event. Raises :class:`~syncws.InvalidStateError` if the socket already
        connected (or was closed).
        """
        with self._lock:
            state = self._socket_state
            if self._engine is not None or state.ready_state is not ReadyState.CONNECTING:
                raise InvalidStateError("connect() was already called or the socket is closed")
            target, spec, options = self._engine_args
            sink = _Sink(self, state, self._dispatcher, self._inbox)
            engine = Engine(target, spec, options, sink, state, label=self._parsed.redacted)
            self._engine = engine
            self._sink = sink
        _live_engines.add(engine)
        finalizer = weakref.finalize(self, _close_on_collect, engine)
        finalizer.atexit = False  # at exit the socket is not collected: it goes away (1001)
        self._update_lifetime()
        engine.start()

    # -- lifetime (the standard's garbage-collection rules) ---------------------------------

    def _listeners_changed(self) -> None:
        self._update_lifetime()

    def _update_lifetime(self) -> None:
        """Hold this socket from its own connection while it can still deliver an event to a
        listener, or has bytes accepted by ``send()`` not yet written; else let it go, so that
        a socket nobody references and nobody can hear from is collected."""
        sink = self._sink
        if sink is None:
            return  # not connecting: nothing can happen that a listener would hear
        with self._lifetime_lock:
            state = self._socket_state.ready_state
            heard = any(self._has_listeners(kind) for kind in _HEARD_IN[state])
            engine = self._engine
            # Bytes a connection that has ended will never write keep nothing alive.
            unwritten = engine is not None and not engine.finished and engine.unwritten > 0
            sink.strong = self if heard or unwritten else None

    def send(self, data: Union[str, bytes, bytearray, memoryview, Blob]) -> None:
        """Queue a message to send; returns at once and never blocks on the network.

        Args:
            data: ``str`` is sent as a text message (lone surrogates become U+FFFD);
                ``bytes``, ``bytearray``, a C-contiguous ``memoryview`` (only the viewed
                bytes) or a :class:`~syncws.Blob` as a binary message.

        While ``OPEN`` the message's length is added to :attr:`buffered_amount` before
        returning; compression, masking and writing happen on the writer thread. If the
        buffered amount already exceeded ``max_buffered_amount``, the socket is flagged as
        full and the connection fails (``error`` with :class:`~syncws.BufferFull`, then
        ``close`` 1006). While ``CLOSING`` or ``CLOSED`` the message is dropped but still
        counted in :attr:`buffered_amount`, and the first such call logs a warning on the
        ``"syncws"`` logger. Safe from any thread; messages from one thread go out in order.

        Raises:
            TypeError: ``data`` is of another type (checked before the state).
            InvalidStateError: the socket is still ``CONNECTING``.
        """
        payload, text, size = _to_payload(data)
        state = self._socket_state.ready_state
        if state is ReadyState.CONNECTING:
            raise InvalidStateError("send() while the WebSocket is still CONNECTING")
        engine = self._engine
        if state is not ReadyState.OPEN or engine is None:
            self._discard(size)
            return
        limit = self._max_buffered_amount
        if limit is not None and engine.buffered_amount > limit:
            engine.discard(size)
            engine.abort(
                BufferFull(
                    f"buffered_amount exceeded max_buffered_amount ({limit} bytes): "
                    "the socket was flagged as full"
                )
            )
            return
        engine.send(payload, text, size)
        sink = self._sink
        if sink is not None and sink.strong is None and engine.unwritten:
            # Nobody else may hold this socket: its queued bytes must still go out.
            engine.watch_drain()
            self._update_lifetime()

    def _discard(self, size: int) -> None:
        """A send() while CLOSING/CLOSED: nothing is sent, buffered_amount grows, and the
        first such call logs a warning, as browsers print one on their console."""
        engine = self._engine
        if engine is None:
            with self._lifetime_lock:
                self._discarded_before_engine += size
        else:
            engine.discard(size)
        if not self._warned_send_after_close:
            self._warned_send_after_close = True
            logger.warning(
                "WebSocket is already in CLOSING or CLOSED state: send() to %s sent nothing",
                self._parsed.redacted,
            )

    def close(self, code: Optional[int] = None, reason: Optional[str] = None) -> None:
        """Start the closing handshake, or fail a connection still being established.

        Args:
            code: ``None`` (a Close frame without a body, unless ``reason`` is given), 1000,
                or an application code in 3000-4999.
            reason: a text of at most 123 bytes in UTF-8; with no ``code``, 1000 is sent.

        Messages sent before ``close()`` still go out first. Returns at once; the ``close``
        event follows when the server answered (or ``close_timeout`` passed). Before the
        connection is open it is failed instead: ``error`` then ``close`` with 1006. Calling
        it again, or on a closed socket, does nothing. Received messages whose event was not
        yet delivered are dropped, as the standard says.

        Raises:
            TypeError: ``code`` is not an ``int`` or ``reason`` not a ``str``.
            InvalidAccessError: ``code`` is not 1000 or in 3000-4999.
            DOMSyntaxError: ``reason`` is longer than 123 bytes in UTF-8.
        """
        if code is not None:
            if isinstance(code, bool) or not isinstance(code, int):
                raise TypeError("close code must be an int or None")
            if code != 1000 and not 3000 <= code <= 4999:
                raise InvalidAccessError(
                    f"close code must be 1000 or in 3000-4999, not {code}"
                )
        reason_text = ""
        if reason is not None:
            if not isinstance(reason, str):
                raise TypeError("close reason must be a str or None")
            encoded = usv_utf8(reason)
            if len(encoded) > 123:
                raise DOMSyntaxError(
                    f"close reason is {len(encoded)} bytes in UTF-8; at most 123 are allowed"
                )
            reason_text = encoded.decode("utf-8")
            if code is None:
                code = 1000
        with self._lock:
            state = self._socket_state.request_close()
            if state in (ReadyState.CLOSING, ReadyState.CLOSED):
                return
            engine = self._engine
        self._update_lifetime()
        if state is ReadyState.CONNECTING:
            error = ConnectionAbortedError("close() was called before the connection was established")
            if engine is None:
                ending = Ending(1006, "", False, error)
                self._socket_state.record_ending(ending)
                self._dispatcher.put(lambda: self._deliver_error(error))
                self._dispatcher.put(lambda: self._deliver_close(ending), final=True)
                self._dispatcher.run_deferred_elsewhere()
            else:
                engine.abort(error)
            return
        assert engine is not None
        engine.close(code, reason_text)

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until the ``close`` event was delivered and its handlers returned.

        The loop a script runs instead of an event loop. Returns ``True`` once closed, or
        ``False`` if ``timeout`` seconds passed first (``None``: wait as long as it takes).
        Called from a handler of this same socket it would wait for itself, so it raises
        :class:`~syncws.InvalidStateError` at once instead.
        """
        self._check_not_in_handler("wait")
        return self._socket_state.closed.wait(timeout)

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Block until :attr:`buffered_amount` has drained to the OS.

        Waits until it is 0 while open, or until it reaches what it was when the connection
        closed. Returns ``True`` if drained, ``False`` if ``timeout`` seconds passed first
        (``None``: no limit). Like :meth:`wait`, it raises
        :class:`~syncws.InvalidStateError` from a handler of this socket.
        """
        self._check_not_in_handler("flush")
        engine = self._engine
        if engine is None:
            return True
        return engine.flush(timeout)

    def _check_not_in_handler(self, name: str) -> None:
        if self._dispatcher.running_thread == threading.get_ident():
            raise InvalidStateError(
                f"{name}() from a handler of the same WebSocket would wait for itself"
            )

    # -- blocking helpers (sockets made by connect()) ---------------------------------------

    def recv(self, timeout: Optional[float] = None) -> Union[str, bytes]:
        """Return the next message: ``str`` for text, ``bytes`` for binary.

        Only for sockets made by :func:`syncws.connect`, which keeps every message for
        ``recv()`` (whatever ``binary_type`` says). Waits up to ``timeout`` seconds
        (``None``: no limit).

        Raises:
            ConnectionClosed: the connection is closed and every earlier message has been
                returned (with ``code``, ``reason``, ``was_clean``); again on every call.
            TimeoutError: no message arrived within ``timeout``.
            InvalidStateError: the socket was not made by :func:`syncws.connect`.
        """
        inbox = self._inbox
        if inbox is None:
            raise InvalidStateError("recv() works on sockets made by syncws.connect()")
        return inbox.get(timeout)

    def __iter__(self) -> Iterator[Union[str, bytes]]:
        """Yield messages until the socket closes (sockets made by :func:`connect`).

        The loop ends quietly only when the close was clean and normal: this side called
        ``close()``, or the server closed cleanly with 1000, 1001 or no code. Any other end
        (a lost connection: 1006; a server's close with another code) raises
        ``ConnectionClosed``, so a script can tell a lost feed from the end of the stream.
        """
        inbox = self._inbox
        if inbox is None:
            raise InvalidStateError("iteration works on sockets made by syncws.connect()")
        while True:
            try:
                data = inbox.get(None)
            except ConnectionClosed:
                if self._socket_state.ended_normally:
                    return
                raise
            yield data

    def __enter__(self) -> "WebSocket":
        """Return the socket itself; leaving the block closes it (see :meth:`__exit__`)."""
        return self

    def __exit__(self, *exc_info: Any) -> None:
        """Close with code 1000 and wait up to ``close_timeout`` for the ``close`` event."""
        self.close(1000)
        timeout = self._engine_args[2].close_timeout
        if self._dispatcher.running_thread != threading.get_ident():
            self._socket_state.closed.wait(None if timeout is None else timeout + 1.0)

    def __repr__(self) -> str:
        return f"<syncws.WebSocket {self._parsed.redacted} {self.ready_state.name}>"

    # -- delivery (runs on the executor, one task at a time) --------------------------------

    def _deliver_open(self, protocol: str, extensions: str) -> None:
        state = self._socket_state
        if state.ready_state is not ReadyState.CONNECTING:
            return  # close() came first: the standard never fires open after that
        self._protocol = protocol  # before OPEN: connect() returns as soon as it is OPEN
        self._extensions = extensions
        if not state.open_delivered():
            return
        self._update_lifetime()
        self.dispatch_event(Event("open"))

    def _deliver_messages(self, messages: List[Union[str, bytes]]) -> None:
        origin = self._origin
        state = self._socket_state
        for data in messages:
            if state.ready_state is not ReadyState.OPEN:
                return  # close() was called: the standard drops what was not delivered yet
            payload: object = data
            if data.__class__ is bytes and self._binary_type == "blob":
                payload = Blob([data])  # wraps, no copy
            self.dispatch_event(MessageEvent("message", data=payload, origin=origin))

    def _deliver_error(self, error: BaseException) -> None:
        self._socket_state.end_delivered()
        message = str(error) or type(error).__name__
        self.dispatch_event(ErrorEvent("error", error=error, message=message))

    def _deliver_close(self, ending: Ending) -> None:
        state = self._socket_state
        state.end_delivered()
        event = CloseEvent("close", was_clean=ending.was_clean, code=ending.code, reason=ending.reason)
        try:
            self.dispatch_event(event)
        finally:
            self._update_lifetime()  # CLOSED: nothing more can be heard
            state.close_delivered()


def _select_proxy(proxy: Optional[str], parsed: WebSocketURL) -> Optional[str]:
    """The proxy URL for a connection to ``parsed`` (``"auto"``: from the environment)."""
    if proxy is None:
        return None
    from .proxy import select_proxy

    return select_proxy(proxy, scheme=parsed.scheme, host=parsed.hostname, port=parsed.port)


def _handshake_headers(
    parsed: WebSocketURL,
    headers: List[Tuple[str, str]],
    origin: Optional[str],
    user_agent: str,
    jar: Optional[http.cookiejar.CookieJar],
) -> List[Tuple[str, str]]:
    """The request's headers for ``parsed``: ours (Origin, User-Agent, Authorization from the
    URL's credentials, the jar's cookies) unless ``headers=`` sets them, then ``headers=``."""
    names = {name.lower() for name, _ in headers}
    extra: List[Tuple[str, str]] = []
    if origin is not None:
        check_header_field("Origin", origin)
        if "origin" not in names:  # headers= overrides, as for User-Agent
            extra.append(("Origin", origin))
    if "user-agent" not in names:
        check_header_field("User-Agent", user_agent)
        extra.append(("User-Agent", user_agent))
    if (parsed.username or parsed.password) and "authorization" not in names:
        credentials = f"{parsed.decoded_username}:{parsed.decoded_password}".encode("utf-8")
        extra.append(("Authorization", "Basic " + base64.b64encode(credentials).decode("ascii")))
    if jar is not None and "cookie" not in names:
        cookie = _cookie_header(jar, parsed)
        if cookie:
            extra.append(("Cookie", cookie))
    return extra + headers


class _RedirectFollower:
    """``follow_redirects=True``: the next attempt after a redirect, for the engine.

    Called on the reader thread with each redirect response; :mod:`syncws.redirects` decides
    whether and where to go, this builds the request for there (the jar's cookies matched
    again for the new URL). It holds no reference to the ``WebSocket``, whose lifetime the
    engine must not extend.
    """

    def __init__(
        self,
        url: WebSocketURL,
        headers: List[Tuple[str, str]],
        origin: Optional[str],
        user_agent: str,
        jar: Optional[http.cookiejar.CookieJar],
        proxy: Optional[str],
        ssl_context: Optional[_ssl.SSLContext],
        spec: HandshakeSpec,
    ) -> None:
        self.url = url  #: where the current attempt goes
        self.hops = 0
        self._headers = headers
        self._origin = origin
        self._user_agent = user_agent
        self._jar = jar
        self._proxy = proxy
        self._ssl = ssl_context
        self._spec = spec

    def __call__(self, response: Response) -> Tuple[ConnectTarget, HandshakeSpec]:
        if self._jar is not None:  # a redirect may set cookies, as in a browser
            _store_cookies(self._jar, self.url, response)
        new = redirect_url(self.url, response, self.hops)
        same = same_origin(self.url, new)
        if same:
            new = replace(new, username=self.url.username, password=self.url.password)
        self._headers = headers_for(self._headers, same_origin=same)
        logger.debug("following HTTP %d from %s to %s", response.status, self.url.redacted, new.redacted)
        self.url, self.hops = new, self.hops + 1
        spec = replace(
            self._spec,
            host_header=new.host_header,
            resource=new.resource_name,
            headers=_handshake_headers(new, self._headers, self._origin, self._user_agent, self._jar),
        )
        target = ConnectTarget(
            host=new.hostname,
            port=new.port,
            secure=new.secure,
            ssl_context=self._ssl,
            proxy=_select_proxy(self._proxy, new),
            proxy_ssl_context=self._ssl,
            user_agent=self._user_agent,
        )
        return target, spec


def _refuse_extensions(values: List[str]) -> None:
    if values:
        raise HandshakeError(
            "the server selected an extension that was not offered: " + ", ".join(values)
        )
    return None


def _http_url(parsed: WebSocketURL) -> str:
    scheme = "https" if parsed.secure else "http"
    return f"{scheme}://{parsed.host_header}{parsed.resource_name}"


def _cookie_header(jar: http.cookiejar.CookieJar, parsed: WebSocketURL) -> str:
    """Cookies for the handshake as a browser would pick them (secure ones only over wss)."""
    import urllib.request

    request = urllib.request.Request(_http_url(parsed))
    jar.add_cookie_header(request)
    return request.get_header("Cookie") or ""


def _store_cookies(jar: http.cookiejar.CookieJar, parsed: WebSocketURL, response: Response) -> None:
    import email.message
    import urllib.request

    headers = email.message.Message()
    for name, value in response.headers:
        headers[name] = value

    class _Info:
        def info(self) -> email.message.Message:
            return headers

    jar.extract_cookies(_Info(), urllib.request.Request(_http_url(parsed)))  # type: ignore[arg-type]


class _SameAsTimeout(float):
    """The default of ``connect(open_timeout=...)``: "use ``timeout``".

    A float (so the parameter's type stays an honest ``Optional[float]``) recognized by
    identity; its repr is what ``help(syncws.connect)`` shows.
    """

    def __repr__(self) -> str:
        return "<same as timeout>"


_SAME_AS_TIMEOUT = _SameAsTimeout(10.0)


# connect() lists every keyword option of WebSocket() again, with the same types and defaults,
# rather than taking **options: Any, so that a misspelled option fails in mypy and an editor
# shows them all. The one alternative that writes the list once for type checkers,
# ``**options: Unpack[SomeTypedDict]``, still needs the constructor's own parameter list (a
# TypedDict carries no defaults), needs typing_extensions at run time on Python < 3.11 for
# anything that evaluates the annotations (typing.get_type_hints, Sphinx), and would hide the
# options from help(). tests/project/test_typing.py checks that the two lists stay identical.
def connect(
    url: str,
    protocols: Union[None, str, Sequence[str]] = None,
    *,
    timeout: Optional[float] = 10.0,
    executor: Optional[ExecutorLike] = None,
    onopen: Optional[Callable[[Event], object]] = None,
    onmessage: Optional[Callable[[MessageEvent], object]] = None,
    onerror: Optional[Callable[[ErrorEvent], object]] = None,
    onclose: Optional[Callable[[CloseEvent], object]] = None,
    binary_type: str = "blob",
    headers: Optional[HeadersLike] = None,
    origin: Optional[str] = None,
    user_agent: Optional[str] = None,
    cookies: Optional[http.cookiejar.CookieJar] = None,
    ssl: Optional[_ssl.SSLContext] = None,
    proxy: Optional[str] = "auto",
    compression: CompressionLike = True,
    max_message_size: Optional[int] = DEFAULT_MAX_MESSAGE_SIZE,
    max_buffered_amount: Optional[int] = DEFAULT_MAX_BUFFERED_AMOUNT,
    max_queue: Optional[int] = DEFAULT_MAX_QUEUE,
    open_timeout: Optional[float] = _SAME_AS_TIMEOUT,
    close_timeout: Optional[float] = 10.0,
    ping_interval: Optional[float] = 20.0,
    ping_timeout: Optional[float] = 20.0,
    sock: Optional[socket.socket] = None,
    follow_redirects: bool = False,
) -> WebSocket:
    """Open a WebSocket, block until it is open and return it, for scripts.

    Args:
        url: the ``ws://`` or ``wss://`` URL, as for :class:`WebSocket`.
        protocols: subprotocols to offer, as for :class:`WebSocket`.
        timeout: seconds to wait for the connection to open (also its ``open_timeout``
            unless that is given); ``None`` waits as long as it takes.

    Every other keyword option is the :class:`WebSocket` constructor's, with the same meaning
    and default: ``executor``, ``onopen``, ``onmessage``, ``onerror``, ``onclose``,
    ``binary_type``, ``headers``, ``origin``, ``user_agent``, ``cookies``, ``ssl``, ``proxy``,
    ``compression``, ``max_message_size``, ``max_buffered_amount``, ``max_queue``,
    ``open_timeout``, ``close_timeout``, ``ping_interval``, ``ping_timeout``, ``sock`` and
    ``follow_redirects`` (there is no ``connect``: this function connects).

    The returned socket keeps every message for :meth:`WebSocket.recv` (``str`` for text,
    ``bytes`` for binary, whatever ``binary_type`` is), in addition to dispatching it to any
    handlers. That queue counts towards ``max_queue``: a program that never calls ``recv()``
    stops reading once ``max_queue`` messages wait; use ``WebSocket(...)`` with handlers for
    that style. Iterating the socket (``for data in ws:``) yields messages until it closes:
    the loop ends quietly when this side called ``close()`` or the server closed cleanly with
    1000, 1001 or no code, and raises :class:`ConnectionClosed` for any other end (a lost
    connection, an error code). A server that closes right after opening still gives a
    socket: ``recv()`` returns what it sent, then raises ``ConnectionClosed``.

    Raises:
        HandshakeError: the server answered with something other than a valid 101
            (``status``, ``headers`` and ``body`` describe its answer).
        TimeoutError: the connection did not open within ``timeout``.
        OSError: the connection could not be made (refused, unreachable, DNS, TLS
            certificate, :class:`~syncws.ProxyError`).
        ConnectionClosed: the connection ended before it opened.
        DOMSyntaxError: a bad URL or bad ``protocols``; ``TypeError``/``ValueError`` for
            bad options, as for :class:`WebSocket`.
    """
    ws = WebSocket(
        url,
        protocols,
        executor=executor,
        onopen=onopen,
        onmessage=onmessage,
        onerror=onerror,
        onclose=onclose,
        binary_type=binary_type,
        headers=headers,
        origin=origin,
        user_agent=user_agent,
        cookies=cookies,
        ssl=ssl,
        proxy=proxy,
        compression=compression,
        max_message_size=max_message_size,
        max_buffered_amount=max_buffered_amount,
        max_queue=max_queue,
        open_timeout=timeout if open_timeout is _SAME_AS_TIMEOUT else open_timeout,
        close_timeout=close_timeout,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        connect=False,
        sock=sock,
        follow_redirects=follow_redirects,
    )
    state = ws._socket_state
    ws._inbox = Inbox(state, ws._max_queue)
    ws.connect()
    if not state.settled.wait(timeout):
        ws.close()
        raise TimeoutError(f"timed out after {timeout} s opening {ws._parsed.redacted}")
    if state.was_opened:
        return ws
    ending = state.ending
    if ending is not None and ending.error is not None:
        raise ending.error
    code, reason = (ending.code, ending.reason) if ending is not None else (1006, "")
    raise ConnectionClosed(code, reason, False)
