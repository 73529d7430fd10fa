"""TCP with a deadline, and TLS on top: the steps every connection (direct or through a
proxy) is made of.

Everything here runs on the connection's reader thread. Each step checks ``cancelled`` so that
``close()`` during the opening handshake ends the attempt promptly; ``on_socket`` reports every
socket as soon as it exists so the engine can shut it down from another thread.
"""

from __future__ import annotations

import errno
import os
import socket
import ssl
import time
from typing import Any, Callable, Iterable, Optional, Tuple

from .streams import Stream, TLSStream, iter_addresses, wait_writable
from .trust import default_ssl_context, explain_verification_failure

__all__ = ["check_cancelled", "open_tcp", "tune", "tls_handshake"]

_POLL_SLICE = 0.05
_IN_PROGRESS = {errno.EINPROGRESS, getattr(errno, "EWOULDBLOCK", 11), errno.EAGAIN}
if hasattr(errno, "WSAEWOULDBLOCK"):
    _IN_PROGRESS.add(getattr(errno, "WSAEWOULDBLOCK"))


def check_cancelled(cancelled: Callable[[], bool]) -> None:
    """Raise ``ConnectionAbortedError`` if ``close()`` cancelled the attempt."""
    if cancelled():
        raise ConnectionAbortedError("connection attempt cancelled by close()")


def tune(sock: socket.socket) -> None:
    """Disable Nagle on TCP sockets: WebSocket frames are written whole."""
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


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
        check_cancelled(cancelled)
        sock = socket.socket(family, type_, proto)
        on_socket(sock)
        try:
            sock.setblocking(False)
            err = sock.connect_ex(address)
            if err not in (0,) and err not in _IN_PROGRESS:
                raise OSError(err, f"connect to {address[0]} port {address[1]}: {os.strerror(err)}")
            while err != 0:
                check_cancelled(cancelled)
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise socket.timeout(f"timed out connecting to {host} port {port}")
                if wait_writable(sock, _POLL_SLICE if left is None else min(_POLL_SLICE, left)):
                    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        raise OSError(
                            err, f"connect to {address[0]} port {address[1]}: {os.strerror(err)}"
                        )
                    break
            sock.setblocking(True)
            tune(sock)
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
