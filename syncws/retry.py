"""The default reconnection policy: which failures are worth another attempt.

``default_should_retry(close_event, error)`` is what ``ReconnectingWebSocket`` and
``syncws.reconnect()`` use when no ``should_retry`` is given. It looks at the ``error`` event's
exception first (why an attempt failed), then at the close code (how a connection ended):

- retried: an ``OSError`` (refused, reset, unreachable, DNS failure, the peer closing TCP) or a
  ``TimeoutError``; a handshake (or proxy) answered with HTTP 408, 429, 500, 502, 503 or 504;
  any other failure of an established connection (1006: a keepalive timeout, a protocol error);
  a server's close with any code except those below;
- final: a TLS certificate failure; any other HTTP status (401, 403, 404, ...); a 101 answer
  that breaks the handshake (a subprotocol or extension mismatch, a wrong accept key); an
  unreadable answer; the server's close codes 1002, 1003, 1007, 1008, 1009, 1010 and 1015;
  anything that is not a network failure (a bad URL or header from a callable, a bug).

``close()`` on this side is never passed to the policy: it always ends the socket.
"""

from __future__ import annotations

import re
import ssl
from typing import Callable, FrozenSet, Optional

from .errors import HandshakeError, ProxyError, WebSocketError
from .events import CloseEvent

__all__ = [
    "ShouldRetry",
    "default_should_retry",
    "retry_after",
    "RETRIED_STATUSES",
    "FINAL_CLOSE_CODES",
]

#: ``should_retry(close_event, error) -> bool``: whether to attempt another connection.
ShouldRetry = Callable[[CloseEvent, Optional[BaseException]], bool]

#: HTTP statuses of a refused handshake that are worth another attempt.
RETRIED_STATUSES: FrozenSet[int] = frozenset({408, 429, 500, 502, 503, 504})
#: Close codes from the server that end a reconnecting socket: the server says that another
#: attempt would be refused the same way (protocol, data or policy errors).
FINAL_CLOSE_CODES: FrozenSet[int] = frozenset({1002, 1003, 1007, 1008, 1009, 1010, 1015})

_DELTA_SECONDS = re.compile(r"[0-9]+")


def _http_status(error: BaseException) -> Optional[int]:
    """The HTTP status that refused the handshake or the proxy tunnel, if any."""
    if isinstance(error, (HandshakeError, ProxyError)):
        return error.status
    return None


def _cert_failure(error: Optional[BaseException]) -> bool:
    """Whether ``error`` is (or was caused by) a failed TLS certificate verification."""
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, ssl.SSLCertVerificationError):
            return True
        error = error.__cause__ or error.__context__
        seen += 1
    return False


def default_should_retry(close_event: CloseEvent, error: Optional[BaseException]) -> bool:
    """The default retry policy: whether to attempt another connection.

    ``close_event`` is the ``close`` event of the attempt or connection that ended, ``error``
    the exception of its ``error`` event (``None`` if it did not fail). Retried: network
    failures (``OSError``, ``TimeoutError``), HTTP 408, 429, 500, 502, 503 and 504, and a
    connection that ended without this side calling ``close()``, unless the server closed
    with 1002, 1003, 1007, 1008, 1009, 1010 or 1015. Not retried: those close codes, other
    HTTP statuses, certificate failures, subprotocol or extension mismatches, ``close()``.
    See the module's documentation for every case.
    """
    if error is not None:
        if _cert_failure(error):
            return False
        if isinstance(error, HandshakeError):
            # status None: an unreadable answer; 101: a broken handshake (mismatch, bad key).
            return error.status in RETRIED_STATUSES
        status = _http_status(error)
        if status is not None:
            return status in RETRIED_STATUSES
        # Network failures (OSError, TimeoutError) and failures of an established connection
        # (keepalive timeout, protocol errors: all WebSocketError) are worth another attempt;
        # anything else is a bug or a bad argument that a new attempt would repeat.
        return isinstance(error, (OSError, TimeoutError, WebSocketError))
    return close_event.code not in FINAL_CLOSE_CODES


def retry_after(error: Optional[BaseException]) -> Optional[float]:
    """The ``Retry-After`` of a refused handshake in seconds (delta-seconds form), or ``None``.

    The HTTP-date form is ignored: clocks of client and server need not agree.
    """
    if not isinstance(error, HandshakeError):
        return None
    value = error.header("Retry-After")
    if value is None or not _DELTA_SECONDS.fullmatch(value.strip()):
        return None
    return float(int(value.strip()))
