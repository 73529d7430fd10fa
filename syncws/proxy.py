"""Proxies: choosing one from the ``proxy=`` option or the environment, and tunnelling through it.

Two halves, used at two moments:

* :func:`select_proxy` runs when a ``WebSocket`` is made. It turns ``proxy="auto"`` into a URL
  the way ``urllib.request.getproxies()``/``proxy_bypass()`` read the environment (so a script
  behaves as ``requests`` and ``urllib`` do on the same machine), and validates explicit URLs so
  that a typo fails at construction, not later in the background.
* :func:`open_tunnel` runs on the connection's reader thread (called by
  :func:`syncws.transport.open_stream`). It returns a :class:`~syncws.streams.Stream` that
  reaches the target through the proxy; the transport then layers the server's TLS on top. HTTP
  CONNECT (also over TLS to an ``https://`` proxy) is done here with the transport's own TCP
  code, so deadlines, ``cancelled()`` and ``on_socket`` work as on a direct connection; SOCKS
  goes through the optional ``python-socks`` package.

What goes where: the proxy sees only ``CONNECT host:port``, ``Host``, ``Proxy-Authorization``
(from the proxy URL's credentials) and ``User-Agent``; the target's request headers travel
inside the tunnel, and the proxy's credentials never do. Proxy URLs are logged and put in error
messages only with the password masked.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import os
import re
import socket
import ssl
from typing import Callable, NamedTuple, Optional, Sequence, Tuple, Union
from urllib.parse import unquote, urlsplit

from .errors import HandshakeError, ProxyError
from .protocol.handshake import MAX_HEAD_SIZE, Response, ResponseParser, check_header_field
from .streams import BytesLike, SocketStream, Stream, time_left
from .tcp import check_cancelled, open_tcp, tls_handshake, tune

logger = logging.getLogger("syncws")

__all__ = [
    "PROXY_SCHEMES",
    "select_proxy",
    "validate_proxy_url",
    "redact_proxy_url",
    "open_tunnel",
]

#: Proxy URL schemes syncws understands. ``socks5h``/``socks4a`` let the proxy resolve the
#: target's name (curl's convention); ``socks5``/``socks4`` resolve it locally.
PROXY_SCHEMES = ("http", "https", "socks5", "socks5h", "socks4", "socks4a")

_DEFAULT_PORTS = {"http": 80, "https": 443}  # SOCKS: 1080, the registered port
_SOCKS_DEFAULT_PORT = 1080

# The environment variable (without ``_proxy``) each WebSocket scheme reads, as urllib maps
# http/https URLs; the API converts http:/https: to ws:/wss: but both spellings are accepted.
_ENV_FOR_SCHEME = {"ws": "http", "http": "http", "wss": "https", "https": "https"}

# Wakes the CONNECT read this often to look at cancelled(): close() must not wait for a
# silent proxy until the open timeout.
_POLL_SLICE = 0.05

# ``scheme://user:password@`` -> ``scheme://user:***@``. Greedy up to the last "@" before the
# path, as urlsplit splits the userinfo, so an unescaped "@" in a password is masked too.
_PASSWORD_IN_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*://[^/?#:@]*):[^/?#]*@")
_NOT_IN_HOST = re.compile(r"[\x00-\x20\x7f]")
_PORT_DIGITS = re.compile(r"0*([0-9]{1,5})")


class _ProxyURL(NamedTuple):
    scheme: str  #: lower case, one of PROXY_SCHEMES
    host: str  #: lower case, IPv6 without brackets
    port: int
    username: Optional[str]  #: percent-decoded; None when the URL has no userinfo
    password: Optional[str]
    redacted: str  #: the URL with the password masked, for logs and messages

    @property
    def address(self) -> str:
        return _authority(self.host, self.port)


def redact_proxy_url(url: str) -> str:
    """``url`` with any password replaced by ``***``: what logs and error messages may show."""
    return _PASSWORD_IN_URL.sub(r"\1:***@", url)


def _parse_proxy_url(url: object) -> _ProxyURL:
    if not isinstance(url, str):
        raise TypeError(f"proxy must be a URL string, 'auto' or None, not {type(url).__name__}")
    url = url.strip()
    redacted = redact_proxy_url(url)
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a port that is not a number or out of range
    except ValueError as exc:
        raise ValueError(f"invalid proxy URL {redacted!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in PROXY_SCHEMES:
        raise ValueError(
            f"invalid proxy URL {redacted!r}: the scheme must be one of "
            f"{', '.join(PROXY_SCHEMES)} (e.g. 'http://proxy.example:3128')"
        )
    host = parts.hostname
    if not host:
        raise ValueError(f"invalid proxy URL {redacted!r}: no host")
    if _NOT_IN_HOST.search(host):
        raise ValueError(f"invalid proxy URL {redacted!r}: the host contains spaces or controls")
    try:
        _authority(host, 0)  # what CONNECT will need: fail here, not later on the reader thread
    except UnicodeError:
        raise ValueError(f"invalid proxy URL {redacted!r}: the host is not a valid IDNA name") from None
    if port is None:
        port = _DEFAULT_PORTS.get(scheme, _SOCKS_DEFAULT_PORT)
    username = None if parts.username is None else unquote(parts.username)
    password = None if parts.password is None else unquote(parts.password)
    return _ProxyURL(scheme, host, port, username, password, redacted)


def validate_proxy_url(url: str) -> str:
    """Check an explicit proxy URL and return it; ``ValueError``/``TypeError`` if unusable.

    Called when a ``WebSocket`` is constructed so that a bad ``proxy=`` fails there, in the
    caller's thread, rather than as an ``error`` event later. A missing port defaults to 80 for
    ``http``, 443 for ``https`` and 1080 for SOCKS.
    """
    _parse_proxy_url(url)
    return url.strip()


# -- choosing a proxy -----------------------------------------------------------------------


def select_proxy(proxy: Optional[str], *, scheme: str, host: str, port: int) -> Optional[str]:
    """The proxy URL to reach ``scheme://host:port`` through, or ``None`` to connect directly.

    ``proxy`` is the ``WebSocket`` option: ``None`` (direct), an explicit proxy URL (validated
    and returned; ``NO_PROXY`` does not apply to it), or ``"auto"``, which reads the environment
    as urllib does so that scripts behave like ``requests`` on the same machine:

    * ``wss`` uses ``https_proxy``, ``ws`` uses ``http_proxy``; both fall back to ``all_proxy``.
    * A lower-case variable wins over its upper-case twin, even when it is set but empty (it
      then counts as unset, hiding the upper-case one). Under CGI (``REQUEST_METHOD`` set) the upper-case ``HTTP_PROXY``
      is ignored, because a web server copies a client's ``Proxy:`` header into it (httpoxy).
    * A value without a scheme is taken as ``http://`` (as urllib and requests do).
    * ``no_proxy``/``NO_PROXY`` lists hosts reached directly; see :func:`_bypasses`.

    Raises ``TypeError`` for a ``proxy`` that is neither ``str`` nor ``None``, and
    ``ValueError`` for an unusable URL (naming the environment variable it came from).
    """
    if proxy is None:
        return None
    if not isinstance(proxy, str):
        raise TypeError(f"proxy must be a URL string, 'auto' or None, not {type(proxy).__name__}")
    if proxy != "auto":
        return validate_proxy_url(proxy)
    try:
        kind = _ENV_FOR_SCHEME[scheme.lower()]
    except KeyError:
        raise ValueError(f"no proxy environment variable for scheme {scheme!r}") from None
    for name in (kind + "_proxy", "all_proxy"):
        value = _getenv(name)
        if value is not None:
            break
    else:
        return None
    no_proxy = _getenv("no_proxy")
    if no_proxy is not None and _bypasses(no_proxy, host, port):
        return None
    url = value if "://" in value else "http://" + value
    try:
        return validate_proxy_url(url)
    except ValueError as exc:
        raise ValueError(f"{name} (or {name.upper()}) in the environment: {exc}") from None


def _getenv(name: str) -> Optional[str]:
    """``name`` (lower case) or its upper-case twin, with urllib's precedence; None if unset."""
    value = os.environ.get(name)
    if value is None:
        if name == "http_proxy" and "REQUEST_METHOD" in os.environ:
            return None  # httpoxy: under CGI, HTTP_PROXY may come from a request header
        value = os.environ.get(name.upper())
    if value is None:
        return None
    return value.strip() or None


def _bypasses(no_proxy: str, host: str, port: int) -> bool:
    """Whether a ``NO_PROXY`` list sends ``host:port`` direct.

    Entries are separated by commas, whitespace around them ignored, compared without regard
    to case:

    * ``*`` — every host;
    * ``example.com``, ``.example.com`` or ``*.example.com`` — that name and every name under
      it (matching on dot boundaries: ``notexample.com`` is not under ``example.com``);
    * an IP address (``10.1.2.3``, ``::1``, ``[::1]``) — that address, however it is written;
    * a CIDR range (``10.0.0.0/8``, ``fd00::/8``) — every IP address in it;
    * any of those followed by ``:port`` (IPv6 in brackets: ``[::1]:8080``) — only that port.

    Names are never resolved (nor do urllib and requests resolve them): a host given by name
    matches name entries only, an IP address matches address and range entries only.
    """
    host = host.strip().strip("[]").rstrip(".").lower()
    host_ip = _ip_or_none(host)
    for entry in no_proxy.split(","):
        entry = entry.strip().lower()
        if entry == "*":
            return True
        name, entry_port = _split_no_proxy_entry(entry)
        if not name or (entry_port is not None and entry_port != port):
            continue
        if host_ip is not None:
            if "/" in name:
                try:
                    if host_ip in ipaddress.ip_network(name, strict=False):
                        return True
                except ValueError:
                    pass
            elif _ip_or_none(name) == host_ip:
                return True
        else:
            name = name.lstrip("*").strip(".")
            if name and (host == name or host.endswith("." + name)):
                return True
    return False


def _split_no_proxy_entry(entry: str) -> Tuple[str, Optional[int]]:
    """``(name, port)``; the port is -1 (never matches) when it is not a number."""
    if entry.startswith("["):  # [v6] or [v6]:port
        name, _, rest = entry[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else None
    elif entry.count(":") == 1:  # name:port or v4:port; more colons means a bare IPv6 address
        name, _, port_text = entry.partition(":")
    else:
        return entry, None
    if port_text is None:
        return name, None
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses; and at most 5
    # after leading zeros (int() refuses over 4300 digits; anything longer is no port).
    digits = _PORT_DIGITS.fullmatch(port_text)
    return name, int(digits.group(1)) if digits else -1


def _ip_or_none(text: str) -> Optional[Union[ipaddress.IPv4Address, ipaddress.IPv6Address]]:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


# -- opening the tunnel ---------------------------------------------------------------------


def open_tunnel(
    proxy_url: str,
    host: str,
    port: int,
    deadline: Optional[float],
    cancelled: Callable[[], bool],
    on_socket: Callable[[socket.socket], None],
    *,
    proxy_ssl_context: Optional[ssl.SSLContext] = None,
    user_agent: Optional[str] = None,
) -> Stream:
    """A stream to ``host:port`` through the proxy at ``proxy_url``; runs on the reader thread.

    ``deadline`` (a ``time.monotonic()`` value or ``None``) bounds the whole tunnel set-up;
    ``cancelled()`` is polled so that ``close()`` ends it promptly; ``on_socket`` gets the TCP
    socket as soon as it exists. ``proxy_ssl_context`` verifies an ``https://`` proxy (default:
    :func:`syncws.trust.default_ssl_context`: certifi's CAs or ``SSL_CERT_FILE``/``SSL_CERT_DIR``,
    and the proxy's host name).
    ``user_agent`` is sent to an HTTP proxy with CONNECT.

    Raises :class:`syncws.errors.ProxyError` (an ``OSError``) when the proxy cannot be reached,
    refuses (``status`` and ``headers`` carry an HTTP proxy's answer, e.g. 407) or breaks the
    handshake, chained to the underlying error; ``socket.timeout`` when ``deadline`` passes;
    ``ConnectionAbortedError`` when cancelled; ``ImportError`` naming ``syncws[socks]`` for a
    SOCKS proxy without ``python-socks``.
    """
    proxy = _parse_proxy_url(proxy_url)
    logger.debug("connecting to %s through proxy %s", _authority(host, port), proxy.redacted)
    if proxy.scheme.startswith("socks"):
        return _socks_tunnel(proxy, host, port, deadline, cancelled, on_socket)
    return _http_tunnel(
        proxy, host, port, deadline, cancelled, on_socket, proxy_ssl_context, user_agent
    )


def _http_tunnel(
    proxy: _ProxyURL,
    host: str,
    port: int,
    deadline: Optional[float],
    cancelled: Callable[[], bool],
    on_socket: Callable[[socket.socket], None],
    ssl_context: Optional[ssl.SSLContext],
    user_agent: Optional[str],
) -> Stream:
    target = _authority(host, port)
    request = _connect_request(proxy, target, user_agent)  # bad input fails before any I/O
    where = f"proxy {proxy.address}"
    stream: Optional[Stream] = None
    step = "connecting to"
    done = False
    try:
        stream = SocketStream(open_tcp(proxy.host, proxy.port, deadline, cancelled, on_socket))
        if proxy.scheme == "https":
            step = "TLS handshake with"
            stream = tls_handshake(stream, ssl_context, proxy.host, deadline)
        step = "CONNECT through"
        stream.sendall(request)
        response = _read_response_head(stream, deadline, cancelled)
        if not 200 <= response.status < 300:
            # 407 is the standard answer; tinyproxy, for one, answers 401 to wrong credentials.
            hint = " (proxy credentials missing or wrong)" if response.status in (401, 407) else ""
            raise ProxyError(
                f"{where} refused CONNECT to {target}: HTTP {response.status} "
                f"{response.reason}{hint}".rstrip(),
                status=response.status,
                headers=response.headers,
            )
        done = True
        logger.debug("%s opened a tunnel to %s", where, target)
        # Whatever followed the answer's head already belongs to the target (a server may
        # speak first, or the proxy's answer and the first TLS record share a packet).
        return _PrefixedStream(stream, response.leftover) if response.leftover else stream
    except socket.timeout as exc:
        raise socket.timeout(f"{step} {where} timed out") from exc
    except (ProxyError, ConnectionAbortedError):
        raise
    except (OSError, HandshakeError) as exc:
        raise ProxyError(f"{step} {where} failed: {exc}") from exc
    finally:
        if not done and stream is not None:
            stream.close()


def _connect_request(proxy: _ProxyURL, target: str, user_agent: Optional[str]) -> bytes:
    if _NOT_IN_HOST.search(target):
        raise ValueError(f"invalid host for CONNECT: {target!r}")
    lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
    if proxy.username is not None:
        credentials = f"{proxy.username}:{proxy.password or ''}".encode("utf-8")
        lines.append("Proxy-Authorization: Basic " + base64.b64encode(credentials).decode("ascii"))
    if user_agent is not None:
        check_header_field("User-Agent", user_agent)
        lines.append(f"User-Agent: {user_agent}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def _read_response_head(
    stream: Stream, deadline: Optional[float], cancelled: Callable[[], bool]
) -> Response:
    """The proxy's answer to CONNECT, bounded by ``MAX_HEAD_SIZE``; the body is not read."""
    parser = ResponseParser(MAX_HEAD_SIZE)
    buffer = memoryview(bytearray(16 * 1024))
    received = 0
    while True:
        check_cancelled(cancelled)
        left = time_left(deadline)
        n = stream.recv_into(buffer, _POLL_SLICE if left is None else min(left, _POLL_SLICE))
        if n is None:
            continue
        if n == 0:
            raise ConnectionResetError(
                "the proxy closed the connection "
                + ("in the middle of its answer" if received else "without answering")
            )
        received += n
        response = parser.feed(bytes(buffer[:n]))
        if response is not None:
            return response


def _authority(host: str, port: int) -> str:
    """``host:port`` as a request target, IPv6 literals in brackets."""
    try:
        host.encode("ascii")
    except UnicodeEncodeError:
        host = host.encode("idna").decode("ascii")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _PrefixedStream(Stream):
    """A stream whose first reads return bytes that arrived together with the proxy's answer.

    Like :class:`~syncws.streams.TLSStream` it keeps the layer below as ``inner``, so the
    engine can walk the chain (e.g. to set ``output_waker`` on a proxy's TLS layer).
    """

    def __init__(self, inner: Stream, prefix: bytes) -> None:
        self.inner = inner
        self.sock = inner.sock
        self._prefix = memoryview(prefix)

    def recv_into(self, buffer: memoryview, timeout: Optional[float] = None) -> Optional[int]:
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        return self.inner.recv_into(buffer, timeout)

    def send_buffers(self, buffers: Sequence[BytesLike]) -> None:
        self.inner.send_buffers(buffers)

    def flush(self) -> None:
        self.inner.flush()

    def shutdown(self) -> None:
        self.inner.shutdown()

    def close(self) -> None:
        self.inner.close()


# SOCKS scheme -> (protocol version, whether the proxy resolves the target's name).
_SOCKS_VARIANTS = {
    "socks5": (5, False),
    "socks5h": (5, True),
    "socks4": (4, False),
    "socks4a": (4, True),
}


def _socks_tunnel(
    proxy: _ProxyURL,
    host: str,
    port: int,
    deadline: Optional[float],
    cancelled: Callable[[], bool],
    on_socket: Callable[[socket.socket], None],
) -> Stream:
    """SOCKS through ``python-socks``' blocking client.

    python-socks opens the TCP connection itself, so the socket reaches ``on_socket`` only once
    the SOCKS handshake is over: ``cancelled()`` is honoured before and after it, and the
    handshake itself is bounded by ``deadline`` (python-socks' own 60 s when there is none).
    ``rdns`` is always passed explicitly: python-socks defaults to remote resolution for SOCKS5
    but local for SOCKS4, while the ``h``/``a`` suffixes are what users mean to choose.
    """
    try:
        import python_socks
        from python_socks.sync import Proxy
    except ImportError as exc:
        raise ImportError(
            f"{proxy.scheme}:// proxies need the python-socks package: "
            "pip install syncws[socks]"
        ) from exc
    version, remote_dns = _SOCKS_VARIANTS[proxy.scheme]
    client = Proxy(
        python_socks.ProxyType.SOCKS5 if version == 5 else python_socks.ProxyType.SOCKS4,
        proxy.host,
        proxy.port,
        username=proxy.username,
        password=proxy.password,
        rdns=remote_dns,
    )
    target = _authority(host, port)
    where = f"SOCKS{version} proxy {proxy.address}"
    check_cancelled(cancelled)
    try:
        sock = client.connect(host, port, timeout=time_left(deadline))
    except python_socks.ProxyTimeoutError as exc:
        raise socket.timeout(f"{where} timed out connecting to {target}") from exc
    except (python_socks.ProxyError, OSError) as exc:
        # python-socks reports a timed-out TCP connect as ProxyConnectionError.
        if isinstance(exc.__cause__, socket.timeout):
            raise socket.timeout(f"connecting to {where} timed out") from exc
        raise ProxyError(f"{where} failed to connect to {target}: {exc}") from exc
    on_socket(sock)
    tune(sock)
    logger.debug("%s opened a tunnel to %s", where, target)
    return SocketStream(sock)
