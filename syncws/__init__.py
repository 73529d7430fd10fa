"""syncws: the browser's WebSocket API for threaded Python code (scripts, Tkinter, Qt).

>>> ws = syncws.WebSocket("wss://example.com/feed", onmessage=lambda e: print(e.data))
"""

from __future__ import annotations

from ._version import __version__

from .backoff import Backoff
from .blob import Blob
from .errors import (
    BufferFull,
    ConnectionClosed,
    ConnectionFailed,
    DOMException,
    DOMSyntaxError,
    HandshakeError,
    InvalidAccessError,
    InvalidStateError,
    KeepaliveTimeout,
    MessageTooBig,
    PayloadError,
    ProtocolError,
    ProxyError,
    WebSocketError,
)
from .events import CloseEvent, ErrorEvent, Event, EventTarget, MessageEvent
from .websocket import CLOSED, CLOSING, CONNECTING, OPEN, ReadyState, WebSocket, connect
from .reconnecting import ReconnectingCloseEvent, ReconnectingWebSocket, reconnect
from .retry import default_should_retry

__all__ = [
    "__version__",
    "WebSocket",
    "connect",
    "ReconnectingWebSocket",
    "ReconnectingCloseEvent",
    "reconnect",
    "Backoff",
    "default_should_retry",
    "ReadyState",
    "CONNECTING",
    "OPEN",
    "CLOSING",
    "CLOSED",
    "Blob",
    "Event",
    "MessageEvent",
    "ErrorEvent",
    "CloseEvent",
    "EventTarget",
    "DOMException",
    "InvalidStateError",
    "InvalidAccessError",
    "DOMSyntaxError",
    "WebSocketError",
    "HandshakeError",
    "ConnectionClosed",
    "ConnectionFailed",
    "ProtocolError",
    "PayloadError",
    "MessageTooBig",
    "KeepaliveTimeout",
    "BufferFull",
    "ProxyError",
]
