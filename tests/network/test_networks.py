"""Reaching servers from real networks: WebSockets through proxies, proxy environment
variables, cookies, credentials in URLs, custom headers and sockets users bring (issue 5).

Every test speaks WebSocket end to end to syncws's own server. Proxies are the real ones of
proxy_support.py (tinyproxy, nginx+tinyproxy for https://, Dante, microsocks); a
:class:`Relay` in front of them counts the connections that really went through the proxy.
Fake HTTP proxies (recording the CONNECT request, answering 407, closing early) are relays too.
"""

from __future__ import annotations

import base64
import http.cookiejar
import logging
import os
import socket
import ssl
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, List, NamedTuple, Optional, Tuple

import pytest

import syncws
from proxy_support import HOST, PROXY_AUTH, SOCKS_AUTH, RunningProxy, free_port
from syncws.errors import DOMSyntaxError, HandshakeError, ProxyError
from syncws.server import HandshakeResponse, Request, WebSocketServer

MESSAGES = ["hello through the network", b"\x00\xff binary" * 1000]
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No proxy variable in either case (a developer's own would reroute these tests)."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.delenv("REQUEST_METHOD", raising=False)
    return monkeypatch


@pytest.fixture
def python_socks() -> None:
    pytest.importorskip("python_socks", reason="pip install python-socks")


# -- relays: taps in front of real proxies, fake proxies, Unix sockets ---------------------


def read_head(conn: socket.socket) -> bytes:
    """Bytes up to the end of an HTTP head (a client sends nothing more before an answer)."""
    head = b""
    while b"\r\n\r\n" not in head:
        data = conn.recv(4096)
        if not data:
            break
        head += data
    return head


Upstream = Callable[["Relay", socket.socket], Optional[socket.socket]]


class Relay:
    """Accepts connections and pipes each, both ways, to the socket ``upstream`` opens for it.

    ``upstream(relay, conn)`` may talk to ``conn`` first (a fake proxy's handshake) and returns
    the socket to pipe to, or ``None`` to end the connection. ``accepted`` counts connections;
    ``heads`` keeps what fake proxies read. ``attach`` serves a connection made elsewhere.
    """

    def __init__(self, upstream: Upstream, listener: Optional[socket.socket] = None) -> None:
        self._upstream = upstream
        self._listener = listener if listener is not None else socket.create_server((HOST, 0))
        self.address = self._listener.getsockname()
        self.accepted = 0
        self.heads: List[bytes] = []
        self._sockets: List[socket.socket] = []
        self._threads: List[threading.Thread] = []
        self._lock = threading.Lock()
        self._spawn(self._accept_loop)

    @property
    def port(self) -> int:
        return self.address[1]

    def url(self, scheme: str = "http", userinfo: str = "") -> str:
        return f"{scheme}://{userinfo}{HOST}:{self.port}"

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            self.attach(conn)

    def attach(self, conn: socket.socket) -> None:
        self._track(conn)
        self._spawn(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        upstream = None
        try:
            upstream = self._upstream(self, conn)
            if upstream is None:
                return
            self._track(upstream)
            other = threading.Thread(target=_pipe, args=(upstream, conn), daemon=True)
            other.start()
            _pipe(conn, upstream)
            other.join(10)
        except OSError:
            pass
        finally:
            conn.close()
            if upstream is not None:
                upstream.close()

    def close(self) -> None:
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept() on Linux
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            sockets, threads = list(self._sockets), list(self._threads)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in threads:
            thread.join(5)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    """Copy until ``source`` ends, then pass the end on (half-close)."""
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            sink.sendall(data)
    except OSError:
        pass
    try:
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        pass


@contextmanager
def relay(upstream: Upstream, listener: Optional[socket.socket] = None) -> Iterator[Relay]:
    server = Relay(upstream, listener)
    try:
        yield server
    finally:
        server.close()


def to_address(host: str, port: int) -> Upstream:
    return lambda relay, conn: socket.create_connection((host, port), timeout=5)


@contextmanager
def tap(proxy: RunningProxy) -> Iterator[Tuple[str, Relay]]:
    """A counting relay in front of ``proxy``: ``(proxy URL through the relay, relay)``."""
    with relay(to_address(proxy.host, proxy.port)) as counter:
        url = proxy.url().replace(f":{proxy.port}", f":{counter.port}")
        yield url, counter


def fake_http_proxy(
    answer: Optional[bytes] = None, *, close_after_request: bool = False
) -> Upstream:
    """A CONNECT proxy recording each request head in ``relay.heads``.

    By default it opens the tunnel it is asked for; with ``answer`` it sends that instead and
    closes; with ``close_after_request`` it answers 200, reads the tunnelled request (the
    WebSocket handshake) and closes without forwarding it.
    """

    def upstream(relay: Relay, conn: socket.socket) -> Optional[socket.socket]:
        head = read_head(conn)
        relay.heads.append(head)
        if answer is not None:
            conn.sendall(answer)
            return None
        if close_after_request:
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            relay.heads.append(read_head(conn))
            return None
        host, _, port = head.split(b" ", 2)[1].decode("ascii").rpartition(":")
        target = socket.create_connection((host.strip("[]"), int(port)), timeout=5)
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        return target

    return upstream


# -- servers and clients --------------------------------------------------------------------


class Target(NamedTuple):
    """A syncws server and the ``ssl=`` a client needs for it (None for ws://)."""

    server: WebSocketServer
    ssl: Optional[ssl.SSLContext]

    def url(self, host: str = HOST) -> str:
        return self.server.url.replace(HOST, host)

    def requests(self) -> List[Request]:
        return [conn.request for conn in self.server.connections if conn.request is not None]


@pytest.fixture(params=["ws", "wss"])
def target(request: pytest.FixtureRequest, ws_server_factory: Any, ws_tls: Any) -> Target:
    if request.param == "wss":
        return Target(ws_server_factory(ssl_context=ws_tls.server), ws_tls.client)
    return Target(ws_server_factory(), None)


def exchange(url: str, **options: Any) -> syncws.WebSocket:
    """Open, echo a text and a binary message, close cleanly; returns the closed socket."""
    closes: List[syncws.CloseEvent] = []
    with syncws.connect(url, timeout=5, onclose=closes.append, **options) as ws:
        for message in MESSAGES:
            ws.send(message)
            assert ws.recv(5) == message
    assert [(event.code, event.was_clean) for event in closes] == [(1000, True)]
    return ws


def failed(url: str, **options: Any) -> Tuple[syncws.ErrorEvent, syncws.CloseEvent]:
    """The error and close events of a connection that must fail (and nothing else)."""
    events: List[Any] = []
    ws = syncws.WebSocket(
        url, onopen=events.append, onerror=events.append, onclose=events.append, **options
    )
    assert ws.wait(5)
    assert [event.type for event in events] == ["error", "close"]
    error, close = events
    assert (close.code, close.was_clean) == (1006, False)
    return error, close


def trusting(*contexts: ssl.SSLContext) -> ssl.SSLContext:
    """A client context trusting the CAs of all ``contexts`` (the proxy's and the server's)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    for other in contexts:
        for der in other.get_ca_certs(binary_form=True):
            context.load_verify_locations(cadata=der)
    return context


def wait_for(predicate: Callable[[], bool], timeout: float = 3.0) -> bool:
    """Poll ``predicate`` (e.g. a proxy's log, written asynchronously) until it holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


# -- real proxies ---------------------------------------------------------------------------


def connected_through_tinyproxy(proxy: RunningProxy, port: int) -> bool:
    return wait_for(lambda: f"CONNECT {HOST}:{port} HTTP/1.1" in proxy.log())


def no_proxy_headers_reached(target: Target) -> None:
    for request in target.requests():
        assert request.header("Proxy-Authorization") is None
        assert request.header("Proxy-Connection") is None


def test_http_proxy(tinyproxy: RunningProxy, target: Target) -> None:
    with tap(tinyproxy) as (url, counter):
        ws = exchange(target.url(), proxy=url, ssl=target.ssl)
    assert counter.accepted == 1
    assert connected_through_tinyproxy(tinyproxy, target.server.port)
    assert ws.url == target.url()


def test_http_proxy_with_credentials(tinyproxy_auth: RunningProxy, target: Target) -> None:
    with tap(tinyproxy_auth) as (url, counter):
        exchange(target.url(), proxy=url, ssl=target.ssl)
    assert counter.accepted == 1
    assert connected_through_tinyproxy(tinyproxy_auth, target.server.port)
    (request,) = target.requests()
    no_proxy_headers_reached(target)
    assert PROXY_AUTH[1].encode() not in request.raw
    assert basic(*PROXY_AUTH).split()[1].encode() not in request.raw


@pytest.mark.parametrize("auth", [None, (PROXY_AUTH[0], "wrong")])
def test_http_proxy_refuses_missing_or_wrong_credentials(
    tinyproxy_auth: RunningProxy, ws_server: WebSocketServer, auth: object
) -> None:
    with pytest.raises(ProxyError) as info:
        syncws.connect(ws_server.url, proxy=tinyproxy_auth.url(auth), timeout=5)
    assert info.value.status in (401, 407)  # tinyproxy answers 401 to wrong credentials
    assert "credentials" in str(info.value)
    assert ws_server.connections == []


def test_https_proxy_is_tls_inside_tls(
    nginx_https: RunningProxy, target: Target, ws_tls: Any
) -> None:
    # ssl= verifies the https:// proxy too: it must trust the proxy's CA (and the server's).
    context = trusting(nginx_https.tls_context, ws_tls.client)  # type: ignore[arg-type]
    with tap(nginx_https) as (url, counter):
        exchange(target.url(), proxy=url, ssl=context)
    assert counter.accepted == 1
    assert connected_through_tinyproxy(nginx_https, target.server.port)


def test_https_proxy_certificate_is_verified(
    nginx_https: RunningProxy, ws_server: WebSocketServer, ws_tls: Any
) -> None:
    error, _ = failed(ws_server.url, proxy=nginx_https.url(), ssl=ws_tls.client)
    assert isinstance(error.error, ProxyError)
    assert isinstance(error.error.__cause__, ssl.SSLCertVerificationError)
    assert ws_server.connections == []


def test_socks5(dante: RunningProxy, target: Target, python_socks: None) -> None:
    with tap(dante) as (url, counter):
        exchange(target.url(), proxy=url, ssl=target.ssl)
    assert counter.accepted == 1


def test_socks5_with_credentials(
    microsocks_auth: RunningProxy, target: Target, python_socks: None
) -> None:
    with tap(microsocks_auth) as (url, counter):
        exchange(target.url(), proxy=url, ssl=target.ssl)
    assert counter.accepted == 1
    (request,) = target.requests()
    assert SOCKS_AUTH[1].encode() not in request.raw
    no_proxy_headers_reached(target)


def test_socks5_refuses_wrong_credentials(
    microsocks_auth: RunningProxy, ws_server: WebSocketServer, python_socks: None
) -> None:
    error, _ = failed(ws_server.url, proxy=microsocks_auth.url((SOCKS_AUTH[0], "wrong")))
    assert isinstance(error.error, ProxyError)
    assert "SOCKS5" in error.message and "wrong" not in error.message
    assert ws_server.connections == []


def destinations(proxy: RunningProxy, port: int, count: int) -> List[str]:
    """What microsocks was asked to connect to for ``port`` (once ``count`` lines are there)."""
    found: List[str] = []

    def logged() -> bool:
        found[:] = [
            line.rsplit("connected to ", 1)[1].strip()
            for line in proxy.log().splitlines()
            if "connected to " in line and line.rstrip().endswith(f":{port}")
        ]
        return len(found) >= count

    wait_for(logged)
    return found


def test_socks5h_resolves_the_name_on_the_proxy(
    microsocks: RunningProxy, target: Target, python_socks: None
) -> None:
    port = target.server.port
    exchange(target.url("localhost"), proxy=microsocks.url(scheme="socks5h"), ssl=target.ssl)
    assert destinations(microsocks, port, 1) == [f"localhost:{port}"]
    # socks5:// resolves locally and sends the address.
    exchange(target.url("localhost"), proxy=microsocks.url(scheme="socks5"), ssl=target.ssl)
    assert destinations(microsocks, port, 2) == [f"localhost:{port}", f"{HOST}:{port}"]


def test_socks4(dante4: RunningProxy, target: Target, python_socks: None) -> None:
    with tap(dante4) as (url, counter):
        exchange(target.url(), proxy=url, ssl=target.ssl)
        exchange(target.url("localhost"), proxy=url, ssl=target.ssl)  # resolved locally
    assert counter.accepted == 2


def test_socks_without_python_socks(
    clean_environment: pytest.MonkeyPatch, ws_server: WebSocketServer
) -> None:
    clean_environment.setitem(sys.modules, "python_socks", None)  # makes the import fail
    proxy = f"socks5://{HOST}:{free_port()}"
    with pytest.raises(ImportError, match=r"pip install syncws\[socks\]"):
        syncws.connect(ws_server.url, proxy=proxy, timeout=5)
    error, _ = failed(ws_server.url, proxy=proxy)
    assert isinstance(error.error, ImportError)
    assert "pip install syncws[socks]" in error.message
    clean_environment.setenv("ALL_PROXY", proxy.replace("socks5", "socks5h"))
    with pytest.raises(ImportError, match=r"socks5h:// proxies need the python-socks package"):
        syncws.connect(ws_server.url, timeout=5)


# -- proxies from the environment -----------------------------------------------------------


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy"])
def test_http_proxy_variable_routes_ws(
    clean_environment: pytest.MonkeyPatch,
    tinyproxy: RunningProxy,
    ws_server: WebSocketServer,
    variable: str,
) -> None:
    with tap(tinyproxy) as (url, counter):
        clean_environment.setenv(variable, url)
        exchange(ws_server.url)  # proxy="auto" is the default
        assert counter.accepted == 1
        assert connected_through_tinyproxy(tinyproxy, ws_server.port)
        exchange(ws_server.url, proxy=None)  # None: direct, whatever the environment says
        assert counter.accepted == 1


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "https_proxy"])
def test_https_proxy_variable_routes_wss_only(
    clean_environment: pytest.MonkeyPatch,
    tinyproxy: RunningProxy,
    ws_server_factory: Any,
    ws_tls: Any,
    variable: str,
) -> None:
    secure = ws_server_factory(ssl_context=ws_tls.server)
    plain = ws_server_factory()
    with tap(tinyproxy) as (url, counter):
        clean_environment.setenv(variable, url.replace("http://", ""))  # scheme-less: http
        exchange(secure.url, ssl=ws_tls.client)
        assert counter.accepted == 1
        assert connected_through_tinyproxy(tinyproxy, secure.port)
        exchange(plain.url)  # ws:// reads HTTP_PROXY, which is unset
        assert counter.accepted == 1


@pytest.mark.parametrize("variable", ["ALL_PROXY", "all_proxy"])
def test_all_proxy_variable_is_the_fallback(
    clean_environment: pytest.MonkeyPatch,
    dante: RunningProxy,
    target: Target,
    variable: str,
    python_socks: None,
) -> None:
    with tap(dante) as (url, counter):
        clean_environment.setenv(variable, url.replace("socks5://", "socks5h://"))
        exchange(target.url(), ssl=target.ssl)  # no HTTP(S)_PROXY: ALL_PROXY for both
        assert counter.accepted == 1
        with relay(fake_http_proxy()) as specific:
            name = "HTTPS_PROXY" if target.ssl else "HTTP_PROXY"
            clean_environment.setenv(name, specific.url())
            exchange(target.url(), ssl=target.ssl)
        assert (counter.accepted, specific.accepted) == (1, 1)


@pytest.mark.parametrize(
    "no_proxy, host",
    [
        ("127.0.0.1", HOST),
        ("127.0.0.0/8", HOST),
        ("example.org, 127.0.0.1", HOST),
        ("{port}", HOST),  # replaced by "127.0.0.1:<the server's port>"
        ("*", HOST),
        ("localhost", "localhost"),
        (".localhost", "localhost"),
    ],
)
@pytest.mark.parametrize("variable", ["NO_PROXY", "no_proxy"])
def test_no_proxy_bypasses(
    clean_environment: pytest.MonkeyPatch,
    target: Target,
    variable: str,
    no_proxy: str,
    host: str,
) -> None:
    port = target.server.port
    with relay(fake_http_proxy()) as proxy:
        clean_environment.setenv("HTTPS_PROXY" if target.ssl else "HTTP_PROXY", proxy.url())
        clean_environment.setenv(variable, no_proxy.replace("{port}", f"{HOST}:{port}"))
        exchange(target.url(host), ssl=target.ssl)
        assert proxy.accepted == 0
        # Another port or host is not bypassed: the same environment then uses the proxy.
        clean_environment.setenv(variable, f"{HOST}:{port + 1},example.org")
        exchange(target.url(), ssl=target.ssl)
        assert proxy.accepted == 1


def test_sock_ignores_the_proxy_environment(
    clean_environment: pytest.MonkeyPatch, ws_server: WebSocketServer
) -> None:
    clean_environment.setenv("HTTP_PROXY", f"http://{HOST}:{free_port()}")  # nothing there
    sock = socket.create_connection((HOST, ws_server.port))
    exchange(ws_server.url, sock=sock)


# -- proxies that refuse or break -----------------------------------------------------------

REPLY_407 = (
    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
    b'Proxy-Authenticate: Basic realm="corp"\r\nContent-Length: 0\r\n\r\n'
)


def test_proxy_answering_407(ws_server: WebSocketServer) -> None:
    with relay(fake_http_proxy(REPLY_407)) as proxy:
        error, _ = failed(ws_server.url, proxy=proxy.url())
        assert isinstance(error.error, ProxyError) and isinstance(error.error, OSError)
        assert error.error.status == 407
        assert ("Proxy-Authenticate", 'Basic realm="corp"') in error.error.headers
        assert "407" in error.message
        with pytest.raises(ProxyError) as info:
            syncws.connect(ws_server.url, proxy=proxy.url("http", "u:hunter2@"), timeout=5)
    assert info.value.status == 407
    assert "hunter2" not in str(info.value)
    assert proxy.accepted == 2
    assert ws_server.connections == []


def test_proxy_closing_in_the_middle_of_its_answer(ws_server: WebSocketServer) -> None:
    with relay(fake_http_proxy(b"HTTP/1.1 200 Connec")) as proxy:
        error, _ = failed(ws_server.url, proxy=proxy.url())
        with pytest.raises(ProxyError, match="in the middle of its answer"):
            syncws.connect(ws_server.url, proxy=proxy.url(), timeout=5)
    assert isinstance(error.error, ProxyError) and error.error.status is None


def test_proxy_closing_during_the_websocket_handshake(ws_server: WebSocketServer) -> None:
    with relay(fake_http_proxy(close_after_request=True)) as proxy:
        error, _ = failed(ws_server.url, proxy=proxy.url())
        with pytest.raises(OSError) as info:
            syncws.connect(ws_server.url, proxy=proxy.url(), timeout=5)
    assert isinstance(error.error, OSError)
    assert "opening handshake" in str(info.value)
    assert proxy.heads[1].startswith(b"GET / HTTP/1.1\r\n")  # the handshake went in the tunnel
    assert ws_server.connections == []


def test_what_the_proxy_and_the_target_each_see(
    target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    jar = http.cookiejar.CookieJar()
    jar.set_cookie(make_cookie("session", "abc"))
    url = target.url().replace("://", "://user:pa%24%24@")
    with relay(fake_http_proxy()) as proxy, caplog.at_level(logging.DEBUG, logger="syncws"):
        exchange(
            url,
            proxy=proxy.url("http", "proxyuser:proxypw@"),
            ssl=target.ssl,
            headers={"X-Target": "only-for-the-server"},
            origin="https://app.example",
            cookies=jar,
        )
    (connect,) = proxy.heads
    assert connect.startswith(f"CONNECT {HOST}:{target.server.port} HTTP/1.1\r\n".encode())
    assert f"Proxy-Authorization: {basic('proxyuser', 'proxypw')}\r\n".encode() in connect
    for secret in (b"X-Target", b"Cookie", b"session", b"\nAuthorization", b"Origin", b"pa$$"):
        assert secret not in connect
    (request,) = target.requests()
    assert request.header("X-Target") == "only-for-the-server"
    assert request.header("Cookie") == "session=abc"
    assert request.header("Authorization") == basic("user", "pa$$")
    assert request.header("Origin") == "https://app.example"
    no_proxy_headers_reached(target)
    assert b"proxypw" not in request.raw
    assert "proxyuser:***@" in caplog.text  # the proxy was logged, its password masked
    for secret in ("proxypw", "pa%24%24", "pa$$"):
        assert secret not in caplog.text


# -- cookies --------------------------------------------------------------------------------


def make_cookie(name: str, value: str, secure: bool = False) -> http.cookiejar.Cookie:
    return http.cookiejar.Cookie(
        0, name, value, None, False, HOST, False, False, "/", True, secure, None, False,
        None, None, {},
    )


def set_cookies(request: Request, response: HandshakeResponse) -> None:
    response.add_header("Set-Cookie", "a=1; Path=/")
    response.add_header("Set-Cookie", "s=2; Secure")


def test_cookies_are_stored_before_open_and_sent_back(
    ws_server_factory: Any, ws_tls: Any, target: Target
) -> None:
    secure = target.ssl is not None
    server = ws_server_factory(
        handshake=set_cookies, ssl_context=ws_tls.server if secure else None
    )
    jar = http.cookiejar.CookieJar()
    seen_in_onopen: List[set] = []

    def onopen(event: syncws.Event) -> None:
        seen_in_onopen.append({cookie.name for cookie in jar})
        event.target.close()

    ws = syncws.WebSocket(server.url, cookies=jar, ssl=target.ssl, onopen=onopen)
    assert ws.wait(5)
    assert seen_in_onopen and "a" in seen_in_onopen[0]
    if secure:
        assert seen_in_onopen[0] == {"a", "s"}
    exchange(server.url, cookies=jar, ssl=target.ssl)
    first, second = (conn.request for conn in server.connections)
    assert first.header("Cookie") is None
    sent = sorted(second.header("Cookie").split("; "))  # type: ignore[union-attr]
    assert sent == (["a=1", "s=2"] if secure else ["a=1"])  # secure cookies only over wss


def test_cookie_header_from_headers_replaces_the_jar(ws_server: WebSocketServer) -> None:
    jar = http.cookiejar.CookieJar()
    jar.set_cookie(make_cookie("from_jar", "1"))
    exchange(ws_server.url, cookies=jar, headers=[("Cookie", "mine=2")])
    exchange(ws_server.url, cookies=jar)
    first, second = (conn.request for conn in ws_server.connections)
    assert first.header_list("Cookie") == ["mine=2"]
    assert second.header_list("Cookie") == ["from_jar=1"]


def test_cookies_must_be_a_cookie_jar() -> None:
    with pytest.raises(TypeError):
        syncws.WebSocket("ws://127.0.0.1:9/", cookies={"a": "1"}, connect=False)  # type: ignore[arg-type]


# -- credentials in the URL -----------------------------------------------------------------


def test_url_credentials_send_basic_authorization(
    ws_server: WebSocketServer, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"ws://user:p%40ss@{HOST}:{ws_server.port}/chat"
    with caplog.at_level(logging.DEBUG, logger="syncws"):
        ws = exchange(url)
    assert ws.url == url  # serialized as the URL standard does: credentials kept as given
    assert "chat" in caplog.text  # the connection was logged...
    for secret in ("p%40ss", "p@ss", basic("user", "p@ss").split()[1]):  # ...not the password
        assert secret not in caplog.text
        assert secret not in repr(ws)
    (request,) = (conn.request for conn in ws_server.connections)
    assert request.header_list("Authorization") == [basic("user", "p@ss")]


@pytest.mark.parametrize(
    "userinfo, user, password",
    [
        ("j%C3%BCrgen:p%C3%A4ss", "jürgen", "päss"),  # UTF-8, percent-decoded
        ("only-user", "only-user", ""),
        (":only-password", "", "only-password"),
        ("a%3Ab:c:d", "a:b", "c:d"),  # the first unescaped ":" separates them
    ],
)
def test_url_credentials_are_percent_decoded(
    ws_server: WebSocketServer, userinfo: str, user: str, password: str
) -> None:
    exchange(f"ws://{userinfo}@{HOST}:{ws_server.port}/")
    (request,) = (conn.request for conn in ws_server.connections)
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode("utf-8")).decode()
    assert request.header("Authorization") == expected


def test_url_serialization_percent_encodes_credentials(ws_server: WebSocketServer) -> None:
    ws = exchange(f"ws://us er:pä ss@{HOST}:{ws_server.port}")
    assert ws.url == f"ws://us%20er:p%C3%A4%20ss@{HOST}:{ws_server.port}/"
    (request,) = (conn.request for conn in ws_server.connections)
    assert request.header("Authorization") == basic("us er", "pä ss")


def test_authorization_header_wins_over_url_credentials(ws_server: WebSocketServer) -> None:
    exchange(
        f"ws://user:secret@{HOST}:{ws_server.port}/",
        headers={"authorization": "Bearer x"},
    )
    (request,) = (conn.request for conn in ws_server.connections)
    assert request.header_list("Authorization") == ["Bearer x"]
    assert b"secret" not in request.raw and b"Basic" not in request.raw


def test_401_is_a_handshake_error_without_the_password(
    ws_server_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    refusal = HandshakeResponse(
        401,
        headers=[("WWW-Authenticate", 'Basic realm="chat"'), ("Content-Type", "text/plain")],
        body=b"who are you?",
    )
    server = ws_server_factory(handshake=refusal)
    url = f"ws://user:hunter2@{HOST}:{server.port}/"
    with caplog.at_level(logging.DEBUG, logger="syncws"):
        with pytest.raises(HandshakeError) as info:
            syncws.connect(url, timeout=5)
        error, _ = failed(url)
    exc = info.value
    assert exc.status == 401
    assert exc.header("www-authenticate") == 'Basic realm="chat"'
    assert exc.body == b"who are you?"
    assert isinstance(error.error, HandshakeError) and error.error.status == 401
    for text in (str(exc), repr(exc), error.message, caplog.text):
        assert "hunter2" not in text
    assert server.connections[0].request.header("Authorization") == basic("user", "hunter2")


@pytest.mark.parametrize(
    "url",
    [
        "ws://user:hunter2@127.0.0.1:99999/",
        "ws://user:hunter2@/",
        "wss://user:hunter2@host/#fragment",
        "ftp://user:hunter2@host/",
        "ws://user:hun@ter2@[::zz]/",
        " ws://user:hunter2@host:port",
    ],
)
def test_url_errors_do_not_show_the_password(url: str) -> None:
    with pytest.raises(DOMSyntaxError) as info:
        syncws.WebSocket(url, connect=False)
    message = str(info.value)
    assert "hunter2" not in message and "ter2" not in message
    assert "user:***@" in message


# -- headers --------------------------------------------------------------------------------


def test_headers_add_and_override(ws_server: WebSocketServer) -> None:
    exchange(
        ws_server.url,
        headers={
            "Origin": "https://app.example",
            "User-Agent": "my-agent/2.0",
            "Host": "virtual.example",
            "X-Custom": "a value, with: punctuation",
        },
    )
    (request,) = (conn.request for conn in ws_server.connections)
    assert request.header_list("Origin") == ["https://app.example"]
    assert request.header_list("User-Agent") == ["my-agent/2.0"]
    assert request.header_list("Host") == ["virtual.example"]
    assert request.header_list("X-Custom") == ["a value, with: punctuation"]


def test_headers_override_origin_and_user_agent_options(ws_server: WebSocketServer) -> None:
    exchange(
        ws_server.url,
        origin="https://option.example",
        user_agent="option-agent/1",
        headers=[("origin", "https://header.example"), ("user-agent", "header-agent/1")],
    )
    (request,) = (conn.request for conn in ws_server.connections)
    assert request.header_list("Origin") == ["https://header.example"]
    assert request.header_list("User-Agent") == ["header-agent/1"]


def test_default_host_and_user_agent(ws_server: WebSocketServer) -> None:
    exchange(ws_server.url, user_agent="named-agent/1")
    exchange(ws_server.url)
    first, second = (conn.request for conn in ws_server.connections)
    assert first.header_list("Host") == [f"{HOST}:{ws_server.port}"]
    assert first.header_list("User-Agent") == ["named-agent/1"]
    assert second.header("User-Agent", "").startswith("syncws/")  # type: ignore[union-attr]


def test_headers_as_pairs_may_repeat(ws_server: WebSocketServer) -> None:
    pairs = [("X-Dup", "1"), ("x-dup", "2"), ("X-Other", "")]
    exchange(ws_server.url, headers=pairs)
    exchange(ws_server.url, headers=iter([["X-Dup", "3"]]))  # any iterable of pairs
    first, second = (conn.request for conn in ws_server.connections)
    assert first.header_list("X-Dup") == ["1", "2"]
    assert first.header_list("X-Other") == [""]
    assert second.header_list("X-Dup") == ["3"]


OWNED = [
    "Sec-WebSocket-Key",
    "sec-websocket-version",
    "SEC-WEBSOCKET-ACCEPT",
    "Upgrade",
    "connection",
    "Sec-WebSocket-Protocol",
    "Sec-WebSocket-Extensions",
]


@pytest.mark.parametrize("name", OWNED)
def test_protocol_owned_headers_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="handshake"):
        syncws.WebSocket("ws://127.0.0.1:9/", headers={name: "x"}, connect=False)
    with pytest.raises(ValueError, match="handshake"):
        syncws.WebSocket("ws://127.0.0.1:9/", headers=[("X-Fine", "1"), (name, "x")])


@pytest.mark.parametrize(
    "name, value",
    [
        ("X-Evil", "a\r\nX-Injected: 1"),
        ("X-Evil", "a\nb"),
        ("X-Evil", "a\rb"),
        ("X-Evil", "a\x00b"),
        ("X-Evil\r\nX-Injected", "1"),
        ("X-Evil\n", "1"),
        ("X-\x00", "1"),
        ("", "1"),
        ("X Space", "1"),
        ("X-Colon:", "1"),
    ],
)
def test_header_injection_is_refused(name: str, value: str) -> None:
    with pytest.raises(ValueError):
        syncws.WebSocket("ws://127.0.0.1:9/", headers={name: value}, connect=False)
    with pytest.raises(ValueError):
        syncws.WebSocket("ws://127.0.0.1:9/", headers=[(name, value)], connect=False)


@pytest.mark.parametrize("option", ["origin", "user_agent"])
def test_injection_through_origin_or_user_agent_is_refused(option: str) -> None:
    with pytest.raises(ValueError):
        syncws.WebSocket("ws://127.0.0.1:9/", connect=False, **{option: "x\r\nX-Injected: 1"})


@pytest.mark.parametrize(
    "headers", ["X-A: 1", b"X-A: 1", [("X-A",)], [("X-A", "1", "2")], [("X-A", 1)], 42]
)
def test_malformed_headers_argument_is_a_type_error(headers: object) -> None:
    with pytest.raises(TypeError):
        syncws.WebSocket("ws://127.0.0.1:9/", headers=headers, connect=False)


# -- sockets users bring --------------------------------------------------------------------


def test_sock_connected_tcp_socket(ws_server: WebSocketServer) -> None:
    sock = socket.create_connection((HOST, ws_server.port))
    url = "ws://chat.example:1234/room"  # names the resource; the socket is the transport
    exchange(url, sock=sock)
    (request,) = (conn.request for conn in ws_server.connections)
    assert request.path == "/room"
    assert request.header("Host") == "chat.example:1234"
    assert sock.fileno() == -1  # syncws owns the socket and closed it


def test_sock_socketpair(ws_server: WebSocketServer) -> None:
    mine, theirs = socket.socketpair()
    with relay(to_address(HOST, ws_server.port)) as forwarder:
        forwarder.attach(theirs)
        exchange("ws://paired.example/", sock=mine)
    assert ws_server.connections[0].request.header("Host") == "paired.example"  # type: ignore[union-attr]


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no Unix domain sockets")
def test_sock_unix_domain_socket(ws_server: WebSocketServer) -> None:
    # WebSocketServer listens on TCP only: a relay carries the Unix socket's bytes to it.
    with tempfile.TemporaryDirectory(prefix="syncws-unix-") as tmp:
        path = os.path.join(tmp, "ws.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(4)
        with relay(to_address(HOST, ws_server.port), listener) as forwarder:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(path)
            exchange("ws://localhost/unix", sock=sock)
        assert forwarder.accepted == 1
    assert ws_server.connections[0].request.path == "/unix"  # type: ignore[union-attr]


def test_sock_with_wss_still_does_tls(ws_server_factory: Any, ws_tls: Any) -> None:
    server = ws_server_factory(ssl_context=ws_tls.server)
    exchange(server.url, sock=socket.create_connection((HOST, server.port)), ssl=ws_tls.client)
    # The certificate is still checked, against the URL's host name.
    sock = socket.create_connection((HOST, server.port))
    error, _ = failed(f"wss://not-in-the-cert.example:{server.port}/", sock=sock, ssl=ws_tls.client)
    assert isinstance(error.error, ssl.SSLCertVerificationError)
    assert len([conn for conn in server.connections if conn.upgraded]) == 1


def test_sock_must_be_a_socket() -> None:
    with pytest.raises(TypeError):
        syncws.WebSocket("ws://127.0.0.1:9/", sock=3, connect=False)  # type: ignore[arg-type]
