"""The opening handshake (CONFORMANCE.md, "Opening handshake"), over real sockets.

What the client sends (GET, Host, Upgrade, Connection, a fresh 16-byte key, version 13, the
protocols in one header, no extension offer with compression off) and every response it must
refuse: each refusal ends with ``error`` (a ``HandshakeError``) then ``close`` 1006, never
``open``. Also: frames right behind the 101 are kept, a huge header block is refused without
buffering it, and a server that never answers runs into ``open_timeout``."""

from __future__ import annotations

import base64
import hashlib
import socket
import time
import tracemalloc

import pytest

import syncws
from syncws.errors import HandshakeError
from syncws.protocol.frames import Opcode
from syncws.protocol.handshake import accept_key
from syncws.server import HandshakeResponse, hold


def assert_refused(client, timeout: float = 5.0) -> BaseException:
    """``error`` (CLOSED inside) then ``close`` 1006, never ``open``."""
    error = client.assert_failed(timeout)
    assert client.types == ["error", "close"]
    return error


def test_request_has_every_required_header(ws_server_factory, make_client):
    server = ws_server_factory(hold, subprotocols=["superchat"])
    client = make_client(server.url + "chat?room=1", ["chat", "superchat"])
    conn = server.accepted()
    client.wait_open()
    request = conn.request
    assert (request.method, request.path, request.version) == ("GET", "/chat?room=1", "HTTP/1.1")
    assert request.header_list("Host") == [f"127.0.0.1:{server.port}"]
    assert [t.lower() for t in request.tokens("Upgrade")] == ["websocket"]
    assert "upgrade" in [t.lower() for t in request.tokens("Connection")]
    assert request.header_list("Sec-WebSocket-Version") == ["13"]
    (key,) = request.header_list("Sec-WebSocket-Key")
    assert len(base64.b64decode(key, validate=True)) == 16
    assert request.header_list("Sec-WebSocket-Protocol") == ["chat, superchat"]
    assert request.header_list("Sec-WebSocket-Extensions") == []  # compression=False
    assert client.ws.protocol == "superchat"
    client.close_from_server(conn)


def test_no_protocol_header_without_protocols(ws_server_factory, make_client):
    server = ws_server_factory(hold)
    client = make_client(server.url)
    conn = server.accepted()
    client.wait_open()
    assert conn.request.header_list("Sec-WebSocket-Protocol") == []
    assert client.ws.protocol == ""
    client.close_from_server(conn)


def test_key_differs_between_connections(ws_server_factory, make_client):
    server = ws_server_factory(hold)
    keys = []
    for _ in range(5):
        client = make_client(server.url)
        conn = server.accepted()
        client.wait_open()
        keys.append(conn.request.header("Sec-WebSocket-Key"))
        client.close_from_server(conn)
    assert len(set(keys)) == 5


def test_host_has_no_port_when_it_is_the_default(ws_server_factory, make_client):
    """``sock=`` (a connected socket) lets ``ws://localhost/`` reach the test server."""
    server = ws_server_factory(hold)
    sock = socket.create_connection(("127.0.0.1", server.port))
    client = make_client("ws://localhost/", sock=sock)
    conn = server.accepted()
    client.wait_open()
    assert conn.request.header_list("Host") == ["localhost"]
    client.close_from_server(conn)


# -- refusals -------------------------------------------------------------------------------


def _set(name, value):
    return lambda request, response: response.set_header(name, value)


def _remove(name):
    return lambda request, response: response.remove_header(name)


REFUSALS = {
    "upgrade-missing": _remove("Upgrade"),
    "upgrade-h2c": _set("Upgrade", "h2c"),
    "upgrade-websocket2": _set("Upgrade", "websocket2"),
    "connection-missing": _remove("Connection"),
    "connection-keep-alive": _set("Connection", "keep-alive"),
    "connection-close": _set("Connection", "close"),
    "accept-missing": _remove("Sec-WebSocket-Accept"),
    "accept-of-another-key": _set("Sec-WebSocket-Accept", accept_key("dGhlIHNhbXBsZSBub25jZQ==")),
    "accept-lowercased": lambda req, resp: resp.set_header(
        "Sec-WebSocket-Accept", resp.header("Sec-WebSocket-Accept").lower()
    ),
    "accept-twice": lambda req, resp: resp.add_header(
        "Sec-WebSocket-Accept", resp.header("Sec-WebSocket-Accept")
    ),
    "accept-of-key-without-guid": lambda req, resp: resp.set_header(
        "Sec-WebSocket-Accept",
        base64.b64encode(hashlib.sha1(req.header("Sec-WebSocket-Key").encode()).digest()).decode(),
    ),
    "protocol-when-none-offered": _set("Sec-WebSocket-Protocol", "chat"),
    "extension-not-offered": _set("Sec-WebSocket-Extensions", "permessage-deflate"),
    "unknown-extension": _set("Sec-WebSocket-Extensions", "x-custom; p=1"),
}


@pytest.mark.parametrize("alter", REFUSALS.values(), ids=REFUSALS.keys())
def test_invalid_101_is_refused(ws_server_factory, make_client, alter):
    server = ws_server_factory(hold, handshake=lambda req, resp: alter(req, resp) and None)
    client = make_client(server.url)
    conn = server.accepted()
    assert conn.response.status == 101
    error = assert_refused(client)
    assert isinstance(error, HandshakeError), repr(error)
    assert conn.wait_eof() in ("eof", "reset")  # the client dropped the connection


@pytest.mark.parametrize(
    "offered, selected",
    [
        (["chat"], "superchat"),  # not offered
        (["chat", "superchat"], "Chat"),  # matched case-sensitively
        (["chat"], "chat, superchat"),  # more than one
        (["chat"], None),  # none although some were offered
    ],
    ids=["not-offered", "wrong-case", "two", "none"],
)
def test_protocol_selection_is_checked(ws_server_factory, make_client, offered, selected):
    def alter(request, response):
        response.remove_header("Sec-WebSocket-Protocol")
        if selected is not None:
            response.add_header("Sec-WebSocket-Protocol", selected)

    server = ws_server_factory(hold, handshake=alter)
    client = make_client(server.url, offered)
    server.accepted()
    assert isinstance(assert_refused(client), HandshakeError)


@pytest.mark.parametrize(
    "name, value",
    [("Upgrade", "WebSocket"), ("Upgrade", "WEBSOCKET"), ("Connection", "UPGRADE"),
     ("Connection", "keep-alive, upgrade")],
)
def test_upgrade_and_connection_tokens_are_case_insensitive(
    ws_server_factory, make_client, name, value
):
    server = ws_server_factory(hold, handshake=_set(name, value))
    client = make_client(server.url)
    conn = server.accepted()
    client.wait_open()
    client.close_from_server(conn)


@pytest.mark.parametrize("status", [200, 204, 400, 403, 404, 426, 500, 503])
def test_status_other_than_101_is_refused(ws_server_factory, make_client, status):
    response = HandshakeResponse(status, headers=[("X-Status", str(status))], body=b"no")
    server = ws_server_factory(hold, handshake=response)
    client = make_client(server.url)
    server.accepted()
    error = assert_refused(client)
    assert isinstance(error, HandshakeError), repr(error)
    assert error.status == status
    assert error.header("X-Status") == str(status)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirect_is_not_followed(ws_server_factory, make_client, status):
    target = ws_server_factory(hold)
    redirect = HandshakeResponse(status, headers=[("Location", target.url)])
    server = ws_server_factory(hold, handshake=redirect)
    client = make_client(server.url)
    server.accepted()
    error = assert_refused(client)
    assert isinstance(error, HandshakeError) and error.status == status
    assert error.header("Location") == target.url
    with pytest.raises(TimeoutError):
        target.accepted(timeout=0.2)


def test_connect_raises_handshake_error_with_status_headers_and_body(ws_server_factory):
    refusal = HandshakeResponse(
        403, headers=[("Content-Type", "text/plain"), ("X-Why", "not today")], body=b"forbidden!"
    )
    server = ws_server_factory(hold, handshake=refusal)
    with pytest.raises(HandshakeError) as info:
        syncws.connect(server.url, compression=False, proxy=None, timeout=5)
    error = info.value
    assert error.status == 403
    assert error.header("x-why") == "not today"
    assert ("Content-Type", "text/plain") in error.headers
    assert error.body == b"forbidden!"


# -- what follows the 101 ---------------------------------------------------------------------


def test_frames_in_the_same_segment_as_the_101_come_after_open(
    ws_server_factory, make_client, wire
):
    extra = wire.frame(Opcode.TEXT, "first") + wire.frame(Opcode.BINARY, b"second")
    extra += wire.frame(Opcode.PING, "ping")

    def answer(request, response):
        response.extra = extra

    server = ws_server_factory(hold, handshake=answer)
    client = make_client(server.url)
    conn = server.accepted()
    assert client.wait_messages(2) == ["first", b"second"]
    assert client.types == ["open", "message", "message"]
    assert conn.recv_frame(timeout=5) == (Opcode.PONG, b"ping", True, False, False, False)
    client.close_from_server(conn)


def test_close_in_the_same_segment_as_the_101(ws_server_factory, make_client, wire):
    def answer(request, response):
        response.extra = wire.frame(Opcode.CLOSE, b"\x03\xe8bye")

    server = ws_server_factory(hold, handshake=answer)
    client = make_client(server.url)
    conn = server.accepted()
    assert conn.expect_close().code == 1000
    conn.release()
    client.assert_clean_close(1000, "bye")
    assert client.types == ["open", "close"]


def test_huge_header_block_is_refused_without_buffering_it(ws_server_factory, make_client):
    """A 101 status line, then 4 MiB of header lines: ``HandshakeError``, and the client
    allocates far less than the block while refusing it."""
    filler = b"X-Padding: " + b"a" * 1000 + b"\r\n"
    headers = filler * 4200 + b"\r\n"
    assert len(headers) > 4 * 1024 * 1024

    def send_headers(conn):  # runs once the status line is out: nothing allocated server-side
        conn.send_raw(headers)

    status_line = HandshakeResponse(raw=b"HTTP/1.1 101 Switching Protocols\r\n")
    server = ws_server_factory(send_headers, handshake=status_line)
    assert_refused(make_client(server.url))  # warm-up: first-use allocations are not counted
    tracemalloc.start()
    try:
        client = make_client(server.url)
        error = assert_refused(client)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(error, HandshakeError), repr(error)
    assert peak < 1024 * 1024, f"{peak} bytes allocated while refusing a 4 MiB header block"


def test_server_that_never_answers_hits_open_timeout(ws_server_factory, make_client):
    server = ws_server_factory(hold, handshake=HandshakeResponse.hang())
    started = time.monotonic()
    client = make_client(server.url, open_timeout=0.5)
    error = assert_refused(client)
    elapsed = time.monotonic() - started
    assert isinstance(error, TimeoutError), repr(error)
    assert 0.4 <= elapsed < 3, elapsed
    server.accepted()


def test_connect_raises_timeout_error_when_the_server_never_answers(ws_server_factory):
    server = ws_server_factory(hold, handshake=HandshakeResponse.hang())
    with pytest.raises(TimeoutError):
        syncws.connect(server.url, compression=False, proxy=None, timeout=0.5)


@pytest.mark.parametrize("action", ["drop", "reset"])
def test_connection_lost_during_the_handshake(ws_server_factory, make_client, action):
    server = ws_server_factory(hold, handshake=HandshakeResponse(action=action))
    client = make_client(server.url)
    server.accepted()
    error = assert_refused(client)
    assert isinstance(error, OSError), repr(error)


def test_truncated_response_head(ws_server_factory, make_client):
    raw = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"  # no blank line
    server = ws_server_factory(hold, handshake=HandshakeResponse(raw=raw))
    client = make_client(server.url)
    conn = server.accepted()
    conn.release()  # the server closes TCP mid-head
    assert_refused(client)


@pytest.mark.parametrize(
    "raw",
    [b"HTTP/1.1 101\r\n\r\n", b"HTTP/2 101 Switching Protocols\r\n\r\n", b"SSH-2.0-OpenSSH\r\n\r\n",
     b"HTTP/1.1 1O1 Switching Protocols\r\n\r\n"],
    ids=["no-headers", "http-2", "not-http", "bad-status"],
)
def test_malformed_response_is_refused(ws_server_factory, make_client, raw):
    server = ws_server_factory(hold, handshake=HandshakeResponse(raw=raw))
    client = make_client(server.url)
    server.accepted()
    assert isinstance(assert_refused(client), HandshakeError)
