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

from ..errors import ConnectionFailed
from ..protocol.connection import ClientConnection
from ..protocol.handshake import (
    MAX_BODY,
    Response,
    ResponseParser,
    build_request,
    check_response,
    content_length,
    new_key,
)
from ..redirects import is_redirect
from ..streams import Stream, time_left
from ..transport import ConnectTarget, open_stream

logger = logging.getLogger("syncws")

__all__ = ["HandshakeSpec", "EngineOptions", "Opened", "open_connection"]


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
        key = new_key()
        try:
            response = _handshake(stream, spec, key, deadline)
        except socket.timeout as exc:
            raise TimeoutError(f"timed out during the opening handshake with {label}") from exc
        follow = spec.follow_redirect
        if follow is None or not is_redirect(response):
            break
        stream.close()
        target, spec = follow(response)
    protocol, extension = check_response(
        response, key=key, protocols=list(spec.protocols), accept_extensions=spec.accept_extensions
    )
    connection = ClientConnection(max_message_size=options.max_message_size, extension=extension)
    extensions = getattr(extension, "response_text", "") if extension else ""
    return Opened(stream, connection, response, protocol, extensions, response.leftover)


def _handshake(stream: Stream, spec: HandshakeSpec, key: str, deadline: Optional[float]) -> Response:
    request = build_request(
        host=spec.host_header,
        resource=spec.resource,
        key=key,
        protocols=spec.protocols,
        extensions=spec.extension_offer,
        headers=spec.headers,
    )
    logger.debug("> %s", request.split(b"\r\n", 1)[0].decode("latin-1"))
    stream.sendall(request)
    parser = ResponseParser()
    view = memoryview(bytearray(16 * 1024))
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
        response = _read_refusal_body(stream, response, view, deadline)
    return response


def _read_refusal_body(
    stream: Stream, response: Response, view: memoryview, deadline: Optional[float]
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
