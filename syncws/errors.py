"""Exceptions: the WHATWG ``DOMException`` family and syncws's connection errors.

The DOM exceptions are what the browser API raises for bad arguments and bad states.
``WebSocketError`` and its subclasses describe why a connection failed; they are carried by
``ErrorEvent.error`` and raised by the blocking helpers (``connect``/``recv``).
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

__all__ = [
    "DOMException",
    "InvalidStateError",
    "InvalidAccessError",
    "DOMSyntaxError",
    "WebSocketError",
    "HandshakeError",
    "ConnectionClosed",
    "ProtocolError",
    "PayloadError",
    "MessageTooBig",
    "KeepaliveTimeout",
    "ConnectionFailed",
    "BufferFull",
    "ProxyError",
]


class DOMException(Exception):
    """Base of the spec's exceptions; ``name`` is the name the standard gives it."""

    default_name = "Error"

    def __init__(self, message: str = "", name: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.name = name if name is not None else self.default_name


class InvalidStateError(DOMException, RuntimeError):
    """The object is in a state that does not allow the call (e.g. ``send()`` while CONNECTING)."""

    default_name = "InvalidStateError"


class InvalidAccessError(DOMException, ValueError):
    """An argument is not allowed (e.g. a close code other than 1000 or 3000-4999)."""

    default_name = "InvalidAccessError"


class DOMSyntaxError(DOMException, ValueError):
    """A string does not parse (bad URL, bad protocol token, too long a close reason)."""

    default_name = "SyntaxError"


class WebSocketError(Exception):
    """Base of the errors that end a connection."""


class HandshakeError(WebSocketError):
    """The opening handshake failed: a non-101 answer or a response that breaks RFC 6455.

    ``status``, ``headers`` (a list of ``(name, value)`` pairs) and ``body`` describe the
    server's answer when there was one; they are ``None``/empty when the response itself was
    unreadable.
    """

    def __init__(
        self,
        message: str,
        *,
        status: Optional[int] = None,
        headers: Optional[List[Tuple[str, str]]] = None,
        body: bytes = b"",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.headers: List[Tuple[str, str]] = list(headers or [])
        self.body = body

    def header(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """The first value of header ``name`` (case-insensitive) in the server's answer, or
        ``default`` if it has none."""
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return default


class ConnectionClosed(WebSocketError):
    """The connection is closed; ``code``, ``reason`` and ``was_clean`` are the close event's."""

    def __init__(self, code: int, reason: str = "", was_clean: bool = False) -> None:
        text = f"connection closed: code {code}"
        if reason:
            text += f" ({reason})"
        if not was_clean:
            text += ", not clean"
        super().__init__(text)
        self.code = code
        self.reason = reason
        self.was_clean = was_clean


class ProtocolError(WebSocketError):
    """The peer broke RFC 6455/7692; ``close_code`` is the code syncws sent it (1002 by default)."""

    close_code = 1002

    def __init__(self, message: str, close_code: Optional[int] = None) -> None:
        super().__init__(message)
        if close_code is not None:
            self.close_code = close_code


class PayloadError(ProtocolError):
    """A text message or close reason was not valid UTF-8 (close code 1007)."""

    close_code = 1007


class MessageTooBig(ProtocolError):
    """An inbound message exceeded ``max_message_size`` (close code 1009)."""

    close_code = 1009



class KeepaliveTimeout(WebSocketError, TimeoutError):
    """No pong arrived within ``ping_timeout`` of a keepalive ping."""


class ConnectionFailed(WebSocketError, ConnectionError):
    """The connection ended abnormally (TCP closed or reset without a Close frame)."""


class BufferFull(WebSocketError):
    """``send()`` found ``buffered_amount`` above ``max_buffered_amount``: the socket was flagged full."""


class ProxyError(WebSocketError, OSError):
    """The proxy refused or broke the tunnel; ``status`` is its HTTP status when it answered."""

    def __init__(self, message: str, status: Optional[int] = None, **kwargs: Any) -> None:
        WebSocketError.__init__(self, message)
        self.status = status
        self.headers = kwargs.get("headers", [])
