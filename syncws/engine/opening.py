"""Connection set-up: the stream (TCP, proxy tunnel, TLS) and the opening handshake.

Runs on the reader thread before anything else; the result is an open protocol core and the
bytes that arrived right behind the 101 response (they belong to the connection).
"""

from __future__ import annotations

import logging
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Callable, List, NamedTuple, Optional, Sequence, Tuple

from ..protocol.connection import ClientConnection
from ..protocol.handshake import (
    Accepted,
    ClientHandshake,
    HandshakeOutcome,
    Response,
)
from ..redirects import is_redirect
from ..streams import Stream, time_left
from ..transport import ConnectTarget, open_stream

logger = logging.getLogger("syncws")

__all__ = ["HandshakeSpec", "EngineOptions", "Opened", "open_connection", "perform_handshake"]

_READ_SIZE = 16 * 1024


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
    #: With ``follow_redirects=True``: given a redirect, where and how to connect instead
    #: (decided by :mod:`syncws.redirects`; raises ``HandshakeError`` when not to follow).
    follow_redirect: Optional[
        Callable[[Response], Tuple[ConnectTarget, "HandshakeSpec"]]
    ] = None


@dataclass
class EngineOptions:
    """The timeouts and limits of one connection (validated by the API layer)."""

    open_timeout: Optional[float] = 10.0
    close_timeout: Optional[float] = 10.0
    ping_interval: Optional[float] = 20.0
    ping_timeout: Optional[float] = 20.0
    max_message_size: Optional[int] = None


class Opened(NamedTuple):
    """An established connection: what the reader needs to run it."""

    stream: Stream
    connection: ClientConnection
    response: Response
    protocol: str
    extensions: str  #: the Sec-WebSocket-Extensions answer as the server sent it
    leftover: bytes  #: bytes received right behind the 101 response


def open_connection(
    target: ConnectTarget,
    spec: HandshakeSpec,
    options: EngineOptions,
    *,
    label: str,
    cancelled: Callable[[], bool],
    on_socket: Callable[[socket.socket], None],
    on_stream: Callable[[Stream], None],
) -> Opened:
    """Open the stream and run the opening handshake within ``open_timeout``.

    ``cancelled`` is polled while connecting; ``on_socket`` and ``on_stream`` let the caller
    shut down a connection still being set up (``close()`` during CONNECTING). Raises
    ``TimeoutError``, ``HandshakeError`` or the ``OSError`` that stopped it.
    """
    deadline = None if options.open_timeout is None else time.monotonic() + options.open_timeout
    while True:  # once, plus once per redirect followed (all within the one deadline)
        try:
            stream = open_stream(target, deadline, cancelled, on_socket)
        except socket.timeout as exc:
            raise TimeoutError(f"timed out opening the connection to {label}") from exc
        on_stream(stream)
        handshake = ClientHandshake(
            host=spec.host_header,
            resource=spec.resource,
            protocols=spec.protocols,
            extension_offer=spec.extension_offer,
            headers=spec.headers,
            accept_extensions=spec.accept_extensions,
        )
        try:
            outcome = perform_handshake(stream, handshake, deadline)
        except socket.timeout as exc:
            raise TimeoutError(f"timed out during the opening handshake with {label}") from exc
        if isinstance(outcome, Accepted):
            break
        follow = spec.follow_redirect
        if follow is None or not is_redirect(outcome.response):
            raise outcome.error()
        stream.close()
        target, spec = follow(outcome.response)
    extension = outcome.extension
    connection = ClientConnection(max_message_size=options.max_message_size, extension=extension)
    extensions = getattr(extension, "response_text", "") if extension else ""
    return Opened(
        stream, connection, outcome.response, outcome.protocol, extensions, outcome.leftover
    )


def perform_handshake(
    stream: Stream, handshake: ClientHandshake, deadline: Optional[float]
) -> HandshakeOutcome:
    """Send the request and read the response until the sans-I/O handshake has an outcome.

    :class:`~syncws.protocol.handshake.Accepted` for a valid 101; a
    :class:`~syncws.protocol.handshake.Refused` for any other status, its body read until its
    ``Content-Length``, the bound, the end of the stream or the deadline, whichever comes
    first. An invalid 101 raises ``HandshakeError``; ``socket.timeout`` when ``deadline`` (a
    ``time.monotonic()`` value, ``None`` for none) passes before the response head is complete;
    ``ConnectionFailed`` when the stream ends first.
    """
    logger.debug("> %s", handshake.request.split(b"\r\n", 1)[0].decode("latin-1"))
    stream.sendall(handshake.request)
    view = memoryview(bytearray(_READ_SIZE))
    outcome: Optional[HandshakeOutcome] = None
    while outcome is None:
        outcome = _read_some(stream, handshake, view, deadline)
    logger.debug("< HTTP %d %s", outcome.response.status, outcome.response.reason)
    return outcome


def _read_some(
    stream: Stream, handshake: ClientHandshake, view: memoryview, deadline: Optional[float]
) -> Optional[HandshakeOutcome]:
    """One read handed to the handshake; while a refusal's body arrives, a failed or timed-out
    read ends the body instead of the connection attempt."""
    try:
        count = stream.recv_into(view, time_left(deadline))
    except OSError:
        if not handshake.reading_body:
            raise
        return handshake.receive_eof()
    if count is None:
        if not handshake.reading_body:
            raise socket.timeout()
        return handshake.receive_eof()
    if count == 0:
        return handshake.receive_eof()
    return handshake.receive_data(bytes(view[:count]))
