"""Opening the byte stream: a user's socket, or TCP (maybe through a proxy), then TLS.

Everything here runs on the connection's reader thread before the writer starts, so it may
read and write freely. Each step checks ``cancelled`` so that ``close()`` during the opening
handshake ends the attempt promptly; ``on_socket`` reports every socket as soon as it exists so
the engine can shut it down from another thread to interrupt a blocking call.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from typing import Callable, Optional

from .proxy import open_tunnel
from .streams import SocketStream, Stream
from .tcp import check_cancelled, open_tcp, tls_handshake, tune

__all__ = ["ConnectTarget", "open_stream"]


@dataclass(frozen=True)
class ConnectTarget:
    """Where a connection goes and how: the engine's input to :func:`open_stream`."""

    host: str  #: host name or IP literal (no brackets), used for DNS, SNI and certificate checks
    port: int
    secure: bool  #: TLS to the server (wss)
    ssl_context: Optional[ssl.SSLContext] = None  #: None = :func:`~syncws.trust.default_ssl_context`
    proxy: Optional[str] = None  #: proxy URL after resolving ``"auto"``; None = direct
    sock: Optional[socket.socket] = None  #: a connected socket the user brought
    proxy_ssl_context: Optional[ssl.SSLContext] = None  #: for https:// proxies (None = default)
    user_agent: Optional[str] = None  #: sent to HTTP proxies with CONNECT


def open_stream(
    target: ConnectTarget,
    deadline: Optional[float],
    cancelled: Callable[[], bool],
    on_socket: Callable[[socket.socket], None],
) -> Stream:
    """The stream to speak WebSocket over: user socket or TCP (maybe via a proxy), then TLS."""
    if target.sock is not None:
        on_socket(target.sock)
        tune(target.sock)
        stream: Stream = SocketStream(target.sock)
    elif target.proxy is not None:
        stream = open_tunnel(
            target.proxy,
            target.host,
            target.port,
            deadline,
            cancelled,
            on_socket,
            proxy_ssl_context=target.proxy_ssl_context,
            user_agent=target.user_agent,
        )
    else:
        stream = SocketStream(open_tcp(target.host, target.port, deadline, cancelled, on_socket))
    check_cancelled(cancelled)
    if target.secure:
        stream = tls_handshake(stream, target.ssl_context, target.host, deadline)
    return stream

