"""Redirects of the opening handshake: failed by default (the standard), followed safely with
``follow_redirects=True``. Unit tests of the decisions (syncws.redirects), then end to end
against syncws's server answering 30x."""

from __future__ import annotations

import http.cookiejar
from typing import Any, Callable, List, Optional

import pytest

import syncws
from syncws.protocol.handshake import Response
from syncws.redirects import MAX_REDIRECTS, headers_for, redirect_url, same_origin
from syncws.server import HandshakeResponse, Request
from syncws.url import parse_ws_url

TIMEOUT = 10.0
OPTS: Any = dict(proxy=None, timeout=TIMEOUT)


def answer(status: int, location: Optional[str]) -> Response:
    headers = [("Location", location)] if location is not None else []
    return Response(status, "", headers, b"")


# -- the decisions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "current, location, expected",
    [
        ("ws://a.example/x/y", "/z", "ws://a.example/z"),
        ("ws://a.example/x/y", "z?q=1", "ws://a.example/x/z?q=1"),
        ("ws://a.example/", "ws://b.example:8080/p", "ws://b.example:8080/p"),
        ("ws://a.example/", "wss://b.example/p", "wss://b.example/p"),  # an upgrade is fine
        ("ws://a.example/", "http://b.example/p", "ws://b.example/p"),
        ("wss://a.example/", "https://b.example/p", "wss://b.example/p"),
        ("wss://a.example:9443/x", "//b.example/p", "wss://b.example/p"),
        ("ws://a.example/", "/p#fragment", "ws://a.example/p"),  # never sent anyway
        ("ws://a.example/", "ws://mallory:secret@b.example/", "ws://b.example/"),  # no creds from it
        ("ws://u:p@a.example/", "/next", "ws://a.example/next"),  # the caller re-adds its own
    ],
)
def test_redirect_url(current: str, location: str, expected: str) -> None:
    new = redirect_url(parse_ws_url(current), answer(302, location), 0)
    assert new.href == expected


def test_never_from_wss_to_ws() -> None:
    for location in ("ws://a.example/", "http://a.example/"):
        with pytest.raises(syncws.HandshakeError, match="never from wss:// to ws://") as info:
            redirect_url(parse_ws_url("wss://a.example/"), answer(301, location), 0)
        assert info.value.status == 301


def test_at_most_five_hops() -> None:
    url = parse_ws_url("ws://a.example/")
    assert redirect_url(url, answer(307, "/6"), MAX_REDIRECTS - 1).path == "/6"
    with pytest.raises(syncws.HandshakeError, match="more than 5 redirects"):
        redirect_url(url, answer(307, "/7"), MAX_REDIRECTS)


@pytest.mark.parametrize("location", [None, "", "ftp://b.example/", "http://[::1/"])
def test_missing_or_unusable_location_fails(location: Optional[str]) -> None:
    with pytest.raises(syncws.HandshakeError, match="Location") as info:
        redirect_url(parse_ws_url("ws://a.example/"), answer(302, location), 0)
    assert info.value.status == 302


def test_same_origin_is_scheme_host_and_port() -> None:
    a = parse_ws_url("ws://a.example/x")
    assert same_origin(a, parse_ws_url("ws://a.example:80/y"))
    assert not same_origin(a, parse_ws_url("wss://a.example/x"))
    assert not same_origin(a, parse_ws_url("ws://a.example:81/x"))
    assert not same_origin(a, parse_ws_url("ws://b.example/x"))


def test_origin_bound_headers_are_dropped_across_origins() -> None:
    headers = [("Authorization", "Bearer t"), ("cookie", "a=1"), ("Host", "h"), ("X-Trace", "1")]
    assert headers_for(headers, same_origin=True) == headers
    assert headers_for(headers, same_origin=False) == [("X-Trace", "1")]


# -- end to end --------------------------------------------------------------------------------


def redirecting(status: int, location: Callable[[Request], Optional[str]]) -> Callable[..., Any]:
    """A handshake hook answering ``status`` with ``Location: location(request)``; a None
    location lets that request through (101)."""

    def hook(request: Request, default: HandshakeResponse) -> Optional[HandshakeResponse]:
        where = location(request)
        if where is None:
            return None
        return HandshakeResponse(status, headers=[("Location", where)], body=b"moved")

    return hook


@pytest.fixture
def target(ws_server_factory: Any) -> Any:
    return ws_server_factory()


def test_a_redirect_fails_by_default_and_the_error_shows_the_location(
    ws_server_factory: Any, target: Any
) -> None:
    destination = target.url + "elsewhere"
    server = ws_server_factory(handshake=redirecting(302, lambda r: destination))
    with pytest.raises(syncws.HandshakeError) as info:
        syncws.connect(server.url, **OPTS)
    assert info.value.status == 302
    assert info.value.header("Location") == destination
    assert f"redirecting to {destination}" in str(info.value)
    assert "follow_redirects=True" in str(info.value)
    assert len(target.connections) == 0  # not followed


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_follow_redirects_follows_each_redirect_status(
    ws_server_factory: Any, target: Any, status: int
) -> None:
    server = ws_server_factory(handshake=redirecting(status, lambda r: target.url + "there?x=1"))
    with syncws.connect(server.url, follow_redirects=True, **OPTS) as ws:
        ws.send("after the redirect")
        assert ws.recv(TIMEOUT) == "after the redirect"
        assert ws.url == server.url  # the URL given, as ws.url always is
    assert target.accepted(5).request.path == "/there?x=1"


def test_relative_location_on_the_same_server(ws_server_factory: Any) -> None:
    server = ws_server_factory(
        handshake=redirecting(307, lambda r: "/end" if r.path == "/start" else None)
    )
    with syncws.connect(server.url + "start", follow_redirects=True, **OPTS) as ws:
        ws.send("x")
        assert ws.recv(TIMEOUT) == "x"
    assert [c.request.path for c in server.connections] == ["/start", "/end"]


def test_same_origin_keeps_credentials_and_headers(ws_server_factory: Any) -> None:
    server = ws_server_factory(
        handshake=redirecting(302, lambda r: "/end" if r.path == "/start" else None)
    )
    url = server.url.replace("ws://", "ws://user:pw@") + "start"
    headers = {"Cookie": "session=1", "X-Trace": "1"}
    with syncws.connect(url, follow_redirects=True, headers=headers, **OPTS):
        pass
    first, second = (c.request for c in server.connections)
    assert second.header("Authorization") == first.header("Authorization") == "Basic dXNlcjpwdw=="
    assert second.header("Cookie") == "session=1"
    assert second.header("X-Trace") == "1"


def test_another_origin_gets_no_credentials_authorization_or_cookie(
    ws_server_factory: Any, target: Any
) -> None:
    server = ws_server_factory(handshake=redirecting(302, lambda r: target.url))
    for url, headers in [
        (server.url.replace("ws://", "ws://user:pw@"), {"X-Trace": "1"}),
        (server.url, {"Authorization": "Bearer secret", "Cookie": "session=1", "X-Trace": "1"}),
    ]:
        with syncws.connect(url, follow_redirects=True, headers=headers, **OPTS):
            pass
        sent = server.connections[-1].request
        assert sent.header("Authorization") is not None
        followed = target.accepted(5).request
        assert followed.header("Authorization") is None
        assert followed.header("Cookie") is None
        assert followed.header("X-Trace") == "1"


def cookie(name: str, domain: str, path: str) -> http.cookiejar.Cookie:
    return http.cookiejar.Cookie(
        0, name, "1", None, False, domain, False, False, path, True, False, None, False, None,
        None, {},
    )


def test_jar_cookies_are_matched_again_for_the_new_url(ws_server_factory: Any, target: Any) -> None:
    # 127.0.0.1:/start -> localhost:/end: each request carries the cookies of its own URL.
    destination = target.url.replace("127.0.0.1", "localhost") + "end"
    server = ws_server_factory(handshake=redirecting(302, lambda r: destination))
    jar = http.cookiejar.CookieJar()
    jar.set_cookie(cookie("for_ip", "127.0.0.1", "/start"))
    jar.set_cookie(cookie("for_localhost", "localhost.local", "/"))
    with syncws.connect(server.url + "start", follow_redirects=True, cookies=jar, **OPTS):
        pass
    assert server.connections[0].request.header("Cookie") == "for_ip=1"
    assert target.accepted(5).request.header("Cookie") == "for_localhost=1"


def test_cookies_set_by_the_redirect_are_stored_and_sent(ws_server_factory: Any) -> None:
    def hook(request: Request, default: HandshakeResponse) -> Optional[HandshakeResponse]:
        if request.path == "/login":
            return HandshakeResponse(
                302, headers=[("Location", "/feed"), ("Set-Cookie", "token=abc; Path=/")]
            )
        return None

    server = ws_server_factory(handshake=hook)
    jar = http.cookiejar.CookieJar()
    with syncws.connect(server.url + "login", follow_redirects=True, cookies=jar, **OPTS):
        pass
    assert server.connections[-1].request.header("Cookie") == "token=abc"
    assert [c.name for c in jar] == ["token"]


def test_never_from_wss_to_ws_end_to_end(ws_server_factory: Any, ws_tls: Any, target: Any) -> None:
    server = ws_server_factory(ssl_context=ws_tls.server, handshake=redirecting(301, lambda r: target.url))
    with pytest.raises(syncws.HandshakeError, match="never from wss:// to ws://"):
        syncws.connect(server.url, follow_redirects=True, ssl=ws_tls.client, **OPTS)
    assert len(target.connections) == 0


def test_more_than_five_redirects_fail(ws_server_factory: Any) -> None:
    counter: List[int] = []

    def hook(request: Request, default: HandshakeResponse) -> HandshakeResponse:
        counter.append(1)
        return HandshakeResponse(308, headers=[("Location", f"/hop{len(counter)}")])

    server = ws_server_factory(handshake=hook)
    errors: List[Optional[BaseException]] = []
    ws = syncws.WebSocket(
        server.url, follow_redirects=True, proxy=None, onerror=lambda e: errors.append(e.error)
    )
    assert ws.wait(TIMEOUT)
    assert len(errors) == 1 and isinstance(errors[0], syncws.HandshakeError)
    assert "more than 5 redirects" in str(errors[0])
    assert len(counter) == 1 + MAX_REDIRECTS


def test_follow_redirects_is_checked_at_once() -> None:
    with pytest.raises(TypeError, match="follow_redirects"):
        syncws.WebSocket("ws://127.0.0.1:9/", follow_redirects="yes", connect=False)  # type: ignore[arg-type]
    import socket

    a, b = socket.socketpair()
    with a, b, pytest.raises(ValueError, match="sock="):
        syncws.WebSocket("ws://127.0.0.1:9/", follow_redirects=True, sock=a, connect=False)
