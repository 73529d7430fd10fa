"""Opening the byte stream: DNS and TCP with a deadline, proxies, then TLS.

Everything here runs on the connection's reader thread before the writer starts, so it may
read and write freely. Each step checks ``cancelled`` so that ``close()`` during the opening
handshake ends the attempt promptly; ``on_socket`` reports every socket as soon as it exists so
the engine can shut it down from another thread to interrupt a blocking call.
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, Tuple

from .streams import SocketStream, Stream, TLSStream, iter_addresses, wait_writable
from .trust import default_ssl_context, explain_verification_failure

logger = logging.getLogger("syncws")

__all__ = ["ConnectTarget", "default_ssl_context", "open_tcp", "open_stream", "tls_handshake"]

_POLL_SLICE = 0.05


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


def tls_handshake(
    stream: Stream,
    context: Optional[ssl.SSLContext],
    host: str,
    deadline: Optional[float],
) -> TLSStream:
    """TLS over ``stream`` with ``context`` (None: :func:`default_ssl_context`), verified for
    ``host``; a certificate failure says which CAs were trusted and how to pass ``ssl=``."""
    # Python sends SNI only for names, and checks IP literals against IP SANs.
    tls = TLSStream(stream, context or default_ssl_context(), server_hostname=host)
    try:
        tls.handshake(deadline)
    except ssl.SSLCertVerificationError as exc:
        raise explain_verification_failure(exc, host, user_context=context is not None) from exc
    return tls


def _check(cancelled: Callable[[], bool]) -> None:
    if cancelled():
        raise ConnectionAbortedError("connection attempt cancelled by close()")


def open_tcp(
    host: str,
    port: int,
    deadline: Optional[float],
    cancelled: Callable[[], bool],
    on_socket: Callable[[socket.socket], None],
) -> socket.socket:
    """Connect to ``host:port`` trying each address in turn; the socket is blocking, no Nagle."""
    last_error: Optional[BaseException] = None
    for family, type_, proto, _name, address in _resolve(host, port):
        _check(cancelled)
        sock = socket.socket(family, type_, proto)
        on_socket(sock)
        try:
            sock.setblocking(False)
            err = sock.connect_ex(address)
            if err not in (0,) and err not in _IN_PROGRESS:
                raise OSError(err, f"connect to {address[0]} port {address[1]}: {_strerror(err)}")
            while err != 0:
                _check(cancelled)
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise socket.timeout(f"timed out connecting to {host} port {port}")
                if wait_writable(sock, _POLL_SLICE if left is None else min(_POLL_SLICE, left)):
                    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        raise OSError(
                            err, f"connect to {address[0]} port {address[1]}: {_strerror(err)}"
                        )
                    break
            sock.setblocking(True)
            _tune(sock)
            return sock
        except BaseException as exc:
            sock.close()
            last_error = exc
            if isinstance(exc, (socket.timeout, ConnectionAbortedError)):
                raise
    if last_error is None:
        raise OSError(f"no address found for {host}")
    raise last_error


def _resolve(host: str, port: int) -> Iterable[Tuple[Any, ...]]:
    """``getaddrinfo`` for ``host``; a failure says which name did not resolve.

    The resolver's own error (``socket.gaierror``) names no host, unlike a refused connection.
    The one raised here is still a ``gaierror`` (an ``OSError``) with the same ``errno``, chained
    to the original. A name Python cannot even encode for the resolver (a label over 63
    characters) raises ``UnicodeError`` in ``getaddrinfo``; it becomes the same kind of error.
    """
    try:
        return iter_addresses(host, port)
    except socket.gaierror as exc:
        raise socket.gaierror(
            exc.errno, f"cannot resolve host {host!r}: {exc.strerror or exc}"
        ) from exc
    except UnicodeError as exc:
        raise socket.gaierror(
            socket.EAI_NONAME, f"cannot resolve host {host!r}: not a valid DNS name ({exc})"
        ) from exc


def _strerror(err: int) -> str:
    import os

    return os.strerror(err)


import errno as _errno  # noqa: E402

_IN_PROGRESS = {_errno.EINPROGRESS, getattr(_errno, "EWOULDBLOCK", 11), _errno.EAGAIN}
if hasattr(_errno, "WSAEWOULDBLOCK"):
    _IN_PROGRESS.add(getattr(_errno, "WSAEWOULDBLOCK"))


def _tune(sock: socket.socket) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


def open_stream(
    target: ConnectTarget,
    deadline: Optional[float],
    cancelled: Callable[[], bool],
    on_socket: Callable[[socket.socket], None],
) -> Stream:
    """The stream to speak WebSocket over: user socket or TCP (maybe via a proxy), then TLS."""
    if target.sock is not None:
        on_socket(target.sock)
        _tune(target.sock)
        stream: Stream = SocketStream(target.sock)
    elif target.proxy is not None:
        from .proxy import open_tunnel

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
    _check(cancelled)
    if target.secure:
        stream = tls_handshake(stream, target.ssl_context, target.host, deadline)
    return stream

