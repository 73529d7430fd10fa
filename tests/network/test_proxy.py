"""Proxies: choosing one (environment, NO_PROXY, validation) and tunnelling through real ones.

The tunnel tests open streams with :func:`syncws.transport.open_stream` through real proxies on
127.0.0.1 (tinyproxy, nginx+tinyproxy for https://, Dante, microsocks; see proxy_support.py)
to an echo server, and send bytes through. Misbehaving proxies (closing, silent, oversized
answers) are small scripted servers here, since no real proxy misbehaves on demand.
"""

from __future__ import annotations

import logging
import socket
import ssl
import sys
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator, List, Optional

import pytest

from proxy_support import PROXY_AUTH as AUTH
from proxy_support import SOCKS_AUTH as ODD_AUTH
from proxy_support import EchoServer, RunningProxy, echo_server, free_port
from syncws import tcp as tcp_mod
from syncws.errors import ProxyError
from syncws.proxy import open_tunnel, redact_proxy_url, select_proxy, validate_proxy_url
from syncws.streams import Stream
from syncws.transport import ConnectTarget, open_stream

trustme = pytest.importorskip("trustme")

PAYLOAD = b"hello through the proxy\x00\xff" * 100


# -- choosing a proxy: pure unit tests ------------------------------------------------------


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The environment without any proxy variable, in either case, and outside CGI."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.delenv("REQUEST_METHOD", raising=False)
    return monkeypatch


def auto(scheme: str = "ws", host: str = "example.com", port: int = 80) -> Optional[str]:
    return select_proxy("auto", scheme=scheme, host=host, port=port)


def test_none_means_direct_and_explicit_url_is_returned(env: pytest.MonkeyPatch) -> None:
    env.setenv("HTTP_PROXY", "http://env-proxy:3128")
    assert select_proxy(None, scheme="ws", host="h", port=80) is None
    url = "socks5h://user:pw@127.0.0.1:1080"
    assert select_proxy(url, scheme="ws", host="h", port=80) == url
    env.setenv("NO_PROXY", "*")  # NO_PROXY is for "auto" only
    assert select_proxy(url, scheme="ws", host="h", port=80) == url


def test_auto_without_environment_is_direct(env: pytest.MonkeyPatch) -> None:
    assert auto("ws") is None
    assert auto("wss") is None


def test_auto_picks_variable_by_scheme(env: pytest.MonkeyPatch) -> None:
    env.setenv("HTTP_PROXY", "http://plain:3128")
    env.setenv("HTTPS_PROXY", "http://secure:3128")
    assert auto("ws") == "http://plain:3128"
    assert auto("wss") == "http://secure:3128"
    assert auto("http") == "http://plain:3128"  # the API's http:/https: spellings
    assert auto("https") == "http://secure:3128"


def test_auto_falls_back_to_all_proxy(env: pytest.MonkeyPatch) -> None:
    env.setenv("ALL_PROXY", "socks5h://127.0.0.1:1080")
    assert auto("ws") == auto("wss") == "socks5h://127.0.0.1:1080"
    env.setenv("HTTPS_PROXY", "http://secure:3128")
    assert auto("wss") == "http://secure:3128"
    assert auto("ws") == "socks5h://127.0.0.1:1080"


def test_lower_case_wins_even_when_empty(env: pytest.MonkeyPatch) -> None:
    env.setenv("HTTP_PROXY", "http://upper:1")
    env.setenv("http_proxy", "http://lower:2")
    assert auto("ws") == "http://lower:2"
    env.setenv("http_proxy", "")
    assert auto("ws") is None


def test_cgi_ignores_upper_case_http_proxy(env: pytest.MonkeyPatch) -> None:
    env.setenv("REQUEST_METHOD", "GET")
    env.setenv("HTTP_PROXY", "http://from-a-client-header:1")
    assert auto("ws") is None
    env.setenv("HTTPS_PROXY", "http://secure:3")
    assert auto("wss") == "http://secure:3"
    env.setenv("http_proxy", "http://lower:2")
    assert auto("ws") == "http://lower:2"


def test_environment_value_without_scheme_is_http(env: pytest.MonkeyPatch) -> None:
    env.setenv("HTTPS_PROXY", "  proxy.corp:3128 ")
    assert auto("wss") == "http://proxy.corp:3128"


def test_bad_environment_value_names_the_variable(env: pytest.MonkeyPatch) -> None:
    env.setenv("HTTP_PROXY", "ftp://user:hunter2@proxy.corp:21")
    with pytest.raises(ValueError, match="http_proxy") as info:
        auto("ws")
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    "no_proxy, host, port, bypass",
    [
        ("example.com", "example.com", 80, True),
        ("example.com", "api.example.com", 80, True),
        ("example.com", "notexample.com", 80, False),
        ("example.com", "example.com.evil.org", 80, False),
        (".example.com", "example.com", 80, True),
        (".example.com", "a.b.example.com", 80, True),
        ("*.example.com", "a.example.com", 80, True),
        ("EXAMPLE.com", "Api.Example.COM", 80, True),
        ("example.com", "example.com.", 80, True),
        ("  other.org ,  example.com  ", "example.com", 80, True),
        ("other.org,,", "example.com", 80, False),
        ("", "example.com", 80, False),
        ("example.com:8080", "example.com", 8080, True),
        ("example.com:8080", "example.com", 80, False),
        ("example.com:http", "example.com", 80, False),
        ("*", "anything.example", 443, True),
        ("other.org, *", "anything.example", 443, True),
        ("192.168.1.5", "192.168.1.5", 80, True),
        ("192.168.1.5", "192.168.1.50", 80, False),
        ("192.168.1.5:80", "192.168.1.5", 80, True),
        ("192.168.1.5:81", "192.168.1.5", 80, False),
        ("10.0.0.0/8", "10.20.30.40", 80, True),
        ("10.0.0.0/8", "11.0.0.1", 80, False),
        ("10.0.0.0/8", "10.example", 80, False),
        ("10.1.2.3/8", "10.9.9.9", 80, True),  # host bits set: still a range
        ("::1", "::1", 80, True),
        ("0:0:0:0:0:0:0:1", "::1", 80, True),
        ("[::1]", "::1", 80, True),
        ("[::1]:8080", "::1", 8080, True),
        ("[::1]:8080", "::1", 80, False),
        ("[::1]", "[::1]", 80, True),
        ("fd00::/8", "fd12:3456::1", 80, True),
        ("fd00::/8", "fe80::1", 80, False),
        ("fd00::/8", "10.0.0.1", 80, False),
        ("localhost", "127.0.0.1", 80, False),  # names are not resolved
        ("3.4", "1.2.3.4", 80, False),  # IP hosts match addresses and ranges only
        # Found by fuzzing: str.isdigit() takes these, int() raised ValueError on them.
        ("example.com:\u00b2", "example.com", 2, False),
        ("example.com:" + "9" * 5000, "example.com", 80, False),
        ("example.com:080", "example.com", 80, True),
        ("example.com:" + "0" * 5000 + "80", "example.com", 80, True),
        ("10.0.0.0/33", "10.1.1.1", 80, False),  # not a network: no match, no error
    ],
)
@pytest.mark.parametrize("variable", ["NO_PROXY", "no_proxy"])
def test_no_proxy(
    env: pytest.MonkeyPatch, variable: str, no_proxy: str, host: str, port: int, bypass: bool
) -> None:
    env.setenv("HTTP_PROXY", "http://proxy:3128")
    env.setenv(variable, no_proxy)
    assert auto("ws", host, port) == (None if bypass else "http://proxy:3128")


def test_lower_case_no_proxy_wins(env: pytest.MonkeyPatch) -> None:
    env.setenv("HTTPS_PROXY", "http://proxy:3128")
    env.setenv("NO_PROXY", "example.com")
    env.setenv("no_proxy", "other.org")
    assert auto("wss", "example.com", 443) == "http://proxy:3128"
    assert auto("wss", "other.org", 443) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://proxy:3128",
        "HTTP://Proxy:3128",
        "https://proxy",
        "socks5://127.0.0.1:1080",
        "socks5h://u:p@localhost",
        "socks4://[::1]:1080",
        "socks4a://proxy:1080/",
        "http://user%40corp:p%3Ass@proxy:8080",
    ],
)
def test_valid_proxy_urls(url: str) -> None:
    assert validate_proxy_url(url) == url


@pytest.mark.parametrize(
    "url, message",
    [
        ("ftp://proxy:21", "scheme"),
        ("proxy.corp:3128", "scheme"),
        ("", "scheme"),
        ("http://", "no host"),
        ("http://:8080", "no host"),
        ("socks5://user:pw@:1080", "no host"),
        ("http://proxy:99999", "invalid proxy URL"),
        ("http://proxy:port", "invalid proxy URL"),
        # Found by fuzzing: accepted here, then CONNECT's IDNA encoding raised UnicodeError on
        # the reader thread.
        ("http://" + "\u00fc" * 70 + ".example", "not a valid IDNA name"),
        ("http://\u00fc..example", "not a valid IDNA name"),
        ("http://a b:3128", "spaces or controls"),
    ],
)
def test_invalid_proxy_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_proxy_url(url)
    with pytest.raises(ValueError, match=message):
        select_proxy(url, scheme="ws", host="h", port=80)


@pytest.mark.parametrize("value", [3128, b"http://proxy:3128", ("http://proxy",)])
def test_proxy_of_wrong_type(value: object) -> None:
    with pytest.raises(TypeError):
        select_proxy(value, scheme="ws", host="h", port=80)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        validate_proxy_url(value)  # type: ignore[arg-type]


def test_errors_and_redaction_hide_the_password() -> None:
    with pytest.raises(ValueError) as info:
        validate_proxy_url("ftp://alice:hunter2@proxy:21")
    assert "hunter2" not in str(info.value) and "alice:***@proxy" in str(info.value)
    assert redact_proxy_url("http://a:b@h:1") == "http://a:***@h:1"
    assert redact_proxy_url("http://a:p@ss@h:1/x") == "http://a:***@h:1/x"
    assert redact_proxy_url("http://a@h:1") == "http://a@h:1"
    assert redact_proxy_url("http://h:1") == "http://h:1"


# -- tunnels through real proxies -----------------------------------------------------------


@pytest.fixture(scope="module")
def tls() -> "trustme.CA":
    return trustme.CA()


@pytest.fixture(scope="module")
def server_context(tls: "trustme.CA") -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture(scope="module")
def client_context(tls: "trustme.CA") -> ssl.SSLContext:
    context = ssl.create_default_context()
    tls.configure_trust(context)
    return context


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    with echo_server() as server:
        yield server


@pytest.fixture
def tls_echo(server_context: ssl.SSLContext) -> Iterator[EchoServer]:
    with echo_server(server_context) as server:
        yield server


@pytest.fixture
def python_socks() -> None:
    pytest.importorskip("python_socks", reason="pip install python-socks")


def connect(
    proxy_url: str,
    server: EchoServer,
    *,
    host: Optional[str] = None,
    context: Optional[ssl.SSLContext] = None,
    timeout: float = 5.0,
    sockets: Optional[List[socket.socket]] = None,
) -> Stream:
    """``open_stream`` to the echo server through ``proxy_url`` (TLS when ``context``)."""
    target = ConnectTarget(
        host or server.host,
        server.port,
        secure=context is not None,
        ssl_context=context,
        proxy=proxy_url,
    )
    found: List[socket.socket] = [] if sockets is None else sockets
    return open_stream(target, time.monotonic() + timeout, lambda: False, found.append)


def roundtrip(stream: Stream, payload: bytes = PAYLOAD) -> None:
    """Send ``payload`` and read the echo back, then close the stream."""
    try:
        stream.sendall(payload)
        got = bytearray()
        buffer = memoryview(bytearray(65536))
        deadline = time.monotonic() + 5
        while len(got) < len(payload):
            n = stream.recv_into(buffer, max(0.0, deadline - time.monotonic()))
            assert n, "the tunnel ended or timed out before the echo came back"
            got += buffer[:n]
        assert bytes(got) == payload
    finally:
        stream.close()


def test_http_proxy(tinyproxy: RunningProxy, echo: EchoServer) -> None:
    sockets: List[socket.socket] = []
    stream = connect(tinyproxy.url(), echo, sockets=sockets)
    assert sockets == [stream.sock]
    roundtrip(stream)
    roundtrip(connect(tinyproxy.url(), echo, host="localhost"))
    assert echo.all_received() == PAYLOAD * 2  # nothing of the CONNECT reached the target


def test_http_proxy_with_credentials(tinyproxy_auth: RunningProxy, echo: EchoServer) -> None:
    roundtrip(connect(tinyproxy_auth.url(), echo))
    received = echo.all_received()
    assert received == PAYLOAD
    assert AUTH[1].encode() not in received and b"Proxy-Authorization" not in received


@pytest.mark.parametrize("auth", [None, ("alice", "badpass"), ("mallory", AUTH[1])])
def test_http_proxy_rejects_missing_or_wrong_credentials(
    tinyproxy_auth: RunningProxy, echo: EchoServer, auth: object
) -> None:
    with pytest.raises(ProxyError, match="credentials missing or wrong") as info:
        connect(tinyproxy_auth.url(auth), echo)
    error = info.value
    # tinyproxy 1.11 answers 407 to missing credentials but 401 to wrong ones.
    assert error.status == (407 if auth is None else 401)
    if auth is None:
        assert any(name.lower() == "proxy-authenticate" for name, _ in error.headers)
    assert str(error.status) in str(error)
    assert "badpass" not in str(error) and AUTH[1] not in str(error)
    assert isinstance(error, OSError)
    assert echo.all_received() == b""


def test_wss_through_http_proxy(
    tinyproxy: RunningProxy, tls_echo: EchoServer, client_context: ssl.SSLContext
) -> None:
    roundtrip(connect(tinyproxy.url(), tls_echo, context=client_context))
    roundtrip(connect(tinyproxy.url(), tls_echo, host="localhost", context=client_context))


def test_http_proxy_refuses_unreachable_target(tinyproxy: RunningProxy) -> None:
    port = free_port()  # nobody listens there
    target = ConnectTarget("127.0.0.1", port, secure=False, proxy=tinyproxy.url())
    with pytest.raises(ProxyError) as info:
        open_stream(target, time.monotonic() + 5, lambda: False, lambda s: None)
    assert info.value.status is not None and info.value.status >= 400  # tinyproxy: 500


def test_https_proxy(nginx_https: RunningProxy, echo: EchoServer) -> None:
    stream = open_tunnel(
        nginx_https.url(),
        echo.host,
        echo.port,
        time.monotonic() + 5,
        lambda: False,
        lambda s: None,
        proxy_ssl_context=nginx_https.tls_context,
    )
    roundtrip(stream)
    assert echo.all_received() == PAYLOAD


def test_wss_through_https_proxy_is_tls_inside_tls(
    nginx_https: RunningProxy,
    tls_echo: EchoServer,
    client_context: ssl.SSLContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # open_stream has no way to pass the proxy's context yet: trust its CA by default here.
    monkeypatch.setattr(tcp_mod, "default_ssl_context", lambda: nginx_https.tls_context)
    roundtrip(connect(nginx_https.url(), tls_echo, context=client_context))


def test_https_proxy_certificate_is_verified(nginx_https: RunningProxy, echo: EchoServer) -> None:
    # The default context trusts certifi's CAs, not the test CA that signed the proxy's cert.
    with pytest.raises(ProxyError, match="TLS handshake with proxy") as info:
        connect(nginx_https.url(), echo)
    assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)


def test_socks5(dante: RunningProxy, echo: EchoServer, python_socks: None) -> None:
    sockets: List[socket.socket] = []
    stream = connect(dante.url(), echo, sockets=sockets)
    assert sockets == [stream.sock]
    assert stream.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    roundtrip(stream)
    roundtrip(connect(dante.url(scheme="socks5h"), echo, host="localhost"))


def test_wss_through_socks5(
    dante: RunningProxy, tls_echo: EchoServer, client_context: ssl.SSLContext, python_socks: None
) -> None:
    url = dante.url(scheme="socks5h")
    roundtrip(connect(url, tls_echo, host="localhost", context=client_context))


def _destinations(proxy: RunningProxy, port: int) -> List[str]:
    """The destinations microsocks logged for ``port``, as the client named them."""
    deadline = time.monotonic() + 2
    while True:
        found = [
            line.rsplit("connected to ", 1)[1].strip()
            for line in proxy.log().splitlines()
            if line.rstrip().endswith(f":{port}") and "connected to " in line
        ]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def test_socks5h_sends_the_name_and_socks5_resolves_locally(
    microsocks: RunningProxy, python_socks: None
) -> None:
    with echo_server() as local:
        roundtrip(connect(microsocks.url(scheme="socks5h"), local, host="localhost"))
        assert _destinations(microsocks, local.port) == [f"localhost:{local.port}"]
    with echo_server() as remote:
        roundtrip(connect(microsocks.url(scheme="socks5"), remote, host="localhost"))
        assert _destinations(microsocks, remote.port) == [f"127.0.0.1:{remote.port}"]


def test_socks5_with_credentials(
    microsocks_auth: RunningProxy, echo: EchoServer, python_socks: None
) -> None:
    roundtrip(connect(microsocks_auth.url(), echo))
    roundtrip(connect(microsocks_auth.url(scheme="socks5h"), echo, host="localhost"))
    received = echo.all_received()
    assert received == PAYLOAD * 2 and ODD_AUTH[1].encode() not in received


@pytest.mark.parametrize("auth", [None, (ODD_AUTH[0], "wrong")])
def test_socks5_rejects_missing_or_wrong_credentials(
    microsocks_auth: RunningProxy, echo: EchoServer, auth: object, python_socks: None
) -> None:
    with pytest.raises(ProxyError, match="SOCKS5 proxy") as info:
        connect(microsocks_auth.url(auth), echo)
    assert info.value.__cause__ is not None
    assert echo.all_received() == b""


def test_socks4(dante4: RunningProxy, echo: EchoServer, python_socks: None) -> None:
    roundtrip(connect(dante4.url(), echo))
    roundtrip(connect(dante4.url(), echo, host="localhost"))  # socks4 resolves locally
    assert echo.all_received() == PAYLOAD * 2


def test_socks_without_python_socks(
    monkeypatch: pytest.MonkeyPatch, echo: EchoServer
) -> None:
    monkeypatch.setitem(sys.modules, "python_socks", None)  # makes the import fail
    with pytest.raises(ImportError, match=r"pip install syncws\[socks\]"):
        connect("socks5://127.0.0.1:1080", echo)


@pytest.mark.parametrize("scheme", ["http", "socks5"])
def test_unreachable_proxy(scheme: str, echo: EchoServer, python_socks: None) -> None:
    with pytest.raises(ProxyError) as info:
        connect(f"{scheme}://127.0.0.1:{free_port()}", echo)
    assert isinstance(info.value.__cause__, OSError)


def test_password_is_not_logged(
    tinyproxy_auth: RunningProxy, echo: EchoServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="syncws"):
        roundtrip(connect(tinyproxy_auth.url(), echo))
    assert f"{AUTH[0]}:***@" in caplog.text
    assert AUTH[1] not in caplog.text


# -- scripted misbehaving proxies -----------------------------------------------------------


Script = Callable[["Scripted", socket.socket, threading.Event], None]


class Scripted:
    """A one-trick proxy on 127.0.0.1: each connection runs ``script(self, conn, stop)``."""

    def __init__(self, script: Script) -> None:
        self.heads: List[bytes] = []
        self.stop = threading.Event()
        self._script = script
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._threads: List[threading.Thread] = []
        self._spawn(self._accept)

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._spawn(self._run, conn)

    def _run(self, conn: socket.socket) -> None:
        with conn:
            try:
                self._script(self, conn, self.stop)
            except OSError:
                pass

    def read_head(self, conn: socket.socket) -> bytes:
        head = b""
        while b"\r\n\r\n" not in head:
            data = conn.recv(4096)
            if not data:
                break
            head += data
        self.heads.append(head)
        return head

    def url(self, userinfo: str = "") -> str:
        return f"http://{userinfo}127.0.0.1:{self.port}"

    def close(self) -> None:
        self.stop.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        for thread in self._threads:
            thread.join(timeout=5)


@contextmanager
def scripted(script: Script) -> Iterator[Scripted]:
    server = Scripted(script)
    try:
        yield server
    finally:
        server.close()


def answer(reply: bytes, then_echo: bool = False) -> Script:
    """Read the request head, send ``reply``, then maybe echo."""

    def script(server: Scripted, conn: socket.socket, stop: threading.Event) -> None:
        server.read_head(conn)
        conn.sendall(reply)
        while then_echo:
            data = conn.recv(65536)
            if not data:
                return
            conn.sendall(data)

    return script


def open_via(
    url: str,
    host: str = "target.example",
    port: int = 443,
    *,
    timeout: float = 5.0,
    cancelled: Callable[[], bool] = lambda: False,
    user_agent: Optional[str] = None,
) -> Stream:
    deadline = time.monotonic() + timeout
    return open_tunnel(url, host, port, deadline, cancelled, lambda s: None, user_agent=user_agent)


def test_connect_request_carries_only_what_the_proxy_needs() -> None:
    with scripted(answer(b"HTTP/1.1 200 Connection established\r\n\r\n")) as proxy:
        url = proxy.url("bob%40corp:p%3Ass%20w@")
        open_via(url, "target.example", 8443, user_agent="syncws-test/1").close()
        open_via(proxy.url(), "::1", 9000).close()
        open_via(proxy.url("onlyuser@"), "h", 1).close()
    assert proxy.heads == [
        b"CONNECT target.example:8443 HTTP/1.1\r\n"
        b"Host: target.example:8443\r\n"
        b"Proxy-Authorization: Basic Ym9iQGNvcnA6cDpzcyB3\r\n"  # bob@corp:p:ss w
        b"User-Agent: syncws-test/1\r\n\r\n",
        b"CONNECT [::1]:9000 HTTP/1.1\r\nHost: [::1]:9000\r\n\r\n",
        b"CONNECT h:1 HTTP/1.1\r\nHost: h:1\r\nProxy-Authorization: Basic b25seXVzZXI6\r\n\r\n",
    ]


def test_bytes_after_the_answer_belong_to_the_tunnel() -> None:
    reply = b"HTTP/1.0 200 OK\r\nProxy-Agent: x\r\n\r\nserver spoke first"
    with scripted(answer(reply, then_echo=True)) as proxy:
        stream = open_via(proxy.url())
        buffer = memoryview(bytearray(6))
        assert stream.recv_into(buffer, 1) == 6 and bytes(buffer) == b"server"
        assert stream.recv_into(buffer, 1) == 6 and bytes(buffer) == b" spoke"
        rest = memoryview(bytearray(100))
        assert stream.recv_into(rest, 1) == 6 and bytes(rest[:6]) == b" first"
        roundtrip(stream, b"and then the echo")


def test_proxy_that_answers_407() -> None:
    reply = (
        b"HTTP/1.1 407 Proxy Authentication Required\r\n"
        b'Proxy-Authenticate: Basic realm="corp"\r\nContent-Length: 0\r\n\r\n'
    )
    with scripted(answer(reply)) as proxy:
        with pytest.raises(ProxyError, match="407 Proxy Authentication Required") as info:
            open_via(proxy.url())
    assert info.value.status == 407
    assert ("Proxy-Authenticate", 'Basic realm="corp"') in info.value.headers


def test_proxy_that_closes_without_answering() -> None:
    with scripted(lambda server, conn, stop: server.read_head(conn)) as proxy:
        with pytest.raises(ProxyError, match="without answering") as info:
            open_via(proxy.url())
    assert isinstance(info.value.__cause__, ConnectionResetError)


def test_proxy_that_closes_at_once() -> None:
    # Closing with the request unread makes the kernel reset the connection: either way it
    # is a ProxyError chained to the OSError.
    with scripted(lambda server, conn, stop: None) as proxy:
        with pytest.raises(ProxyError, match="CONNECT through proxy") as info:
            open_via(proxy.url())
    assert isinstance(info.value.__cause__, OSError)


def test_proxy_that_closes_mid_answer() -> None:
    with scripted(answer(b"HTTP/1.1 200 Conn")) as proxy:
        with pytest.raises(ProxyError, match="in the middle of its answer") as info:
            open_via(proxy.url())
    assert isinstance(info.value.__cause__, ConnectionResetError)


def test_proxy_that_sends_garbage() -> None:
    with scripted(answer(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")) as proxy:
        with pytest.raises(ProxyError, match="malformed"):
            open_via(proxy.url())


def test_proxy_answer_is_bounded() -> None:
    with scripted(answer(b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"a" * 70000)) as proxy:
        with pytest.raises(ProxyError, match="exceeds"):
            open_via(proxy.url())


def silent(server: Scripted, conn: socket.socket, stop: threading.Event) -> None:
    server.read_head(conn)
    stop.wait(10)


@pytest.mark.parametrize("scheme", ["http", "socks5"])
def test_deadline_is_respected(scheme: str, python_socks: None) -> None:
    with scripted(silent) as proxy:
        start = time.monotonic()
        with pytest.raises(socket.timeout):
            open_via(f"{scheme}://127.0.0.1:{proxy.port}", timeout=0.5)
        assert time.monotonic() - start < 2.0


def test_cancel_ends_the_wait_for_the_proxy() -> None:
    cancel_at = time.monotonic() + 0.3
    with scripted(silent) as proxy:
        with pytest.raises(ConnectionAbortedError):
            open_via(proxy.url(), timeout=10, cancelled=lambda: time.monotonic() > cancel_at)
        assert time.monotonic() - cancel_at < 1.0


def test_header_injection_through_the_host_is_refused() -> None:
    with pytest.raises(ValueError):
        open_via("http://127.0.0.1:9", "evil\r\nX-Injected: 1")
    with pytest.raises(ValueError):
        open_via("http://127.0.0.1:9", "h", user_agent="x\r\nX-Injected: 1")


def test_auto_proxy_for_an_unknown_scheme_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="scheme 'ftp'"):
        select_proxy("auto", scheme="ftp", host="h", port=21)
