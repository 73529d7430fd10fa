"""The sans-I/O opening handshake objects: ClientHandshake and ServerHandshake, fed bytes."""

from __future__ import annotations

from typing import List

import pytest

from syncws.errors import ConnectionFailed, HandshakeError
from syncws.protocol.handshake import (
    MAX_BODY,
    Accepted,
    ClientHandshake,
    Refused,
    Request,
    RequestRejected,
    ServerHandshake,
    accept_headers,
    accept_key,
    check_request,
    response_bytes,
)

KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def client(**options: object) -> ClientHandshake:
    return ClientHandshake(host="example.com", resource="/chat?x=1", key=KEY, **options)  # type: ignore[arg-type]


def accept_101(*extra: str) -> bytes:
    lines = ["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Accept: {accept_key(KEY)}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def feed_bytewise(handshake: ClientHandshake, data: bytes) -> List[object]:
    return [handshake.receive_data(data[i : i + 1]) for i in range(len(data))]


# -- client --------------------------------------------------------------------------------


def test_request_then_101_byte_by_byte_with_leftover_frames() -> None:
    handshake = client(protocols=["chat", "v2"], headers=[("Origin", "https://a.example")])
    assert handshake.request.startswith(b"GET /chat?x=1 HTTP/1.1\r\nHost: example.com\r\n")
    assert f"Sec-WebSocket-Key: {KEY}\r\n".encode() in handshake.request
    assert b"Sec-WebSocket-Protocol: chat, v2\r\nOrigin: https://a.example\r\n\r\n" in handshake.request
    outcomes = feed_bytewise(handshake, accept_101("Sec-WebSocket-Protocol: v2"))
    assert outcomes[:-1] == [None] * (len(outcomes) - 1)
    accepted = outcomes[-1]
    assert isinstance(accepted, Accepted)
    assert accepted.protocol == "v2" and accepted.extension is None
    assert accepted.response.status == 101 and accepted.response.get("upgrade") == "websocket"
    assert accepted.leftover == b""  # the head ended with the last byte fed
    handshake = client()
    accepted = handshake.receive_data(accept_101() + b"\x81\x02hi")  # type: ignore[assignment]
    assert accepted.leftover == b"\x81\x02hi"
    with pytest.raises(RuntimeError):
        handshake.receive_data(b"more")


def test_extensions_are_judged_by_the_callback() -> None:
    seen = []

    def judge(values: List[str]) -> object:
        seen.append(values)
        return "the codec"

    handshake = client(extension_offer="permessage-deflate", accept_extensions=judge)
    assert b"Sec-WebSocket-Extensions: permessage-deflate\r\n" in handshake.request
    outcome = handshake.receive_data(accept_101("Sec-WebSocket-Extensions: permessage-deflate"))
    assert isinstance(outcome, Accepted) and outcome.extension == "the codec"
    assert seen == [["permessage-deflate"]]


def test_an_invalid_101_raises_with_status_and_headers() -> None:
    handshake = client()
    bad = accept_101().replace(accept_key(KEY).encode(), b"wrong")
    with pytest.raises(HandshakeError, match="Accept") as info:
        handshake.receive_data(bad)
    assert info.value.status == 101 and ("Upgrade", "websocket") in info.value.headers


def test_refusal_body_is_read_up_to_content_length() -> None:
    handshake = client()
    head = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\nX-Why: test\r\n\r\n"
    assert handshake.receive_data(head + b"go ") is None
    assert handshake.reading_body
    refused = handshake.receive_data(b"away!and more")
    assert isinstance(refused, Refused) and not handshake.reading_body
    assert refused.response.leftover == b"go away!a"
    error = refused.error()
    assert (error.status, error.body) == (403, b"go away!a")
    assert error.header("x-why") == "test" and "HTTP 403 Forbidden" in str(error)


def test_refusal_without_length_ends_with_the_stream_and_is_bounded() -> None:
    handshake = client()
    assert handshake.receive_data(b"HTTP/1.1 500 Oops\r\n\r\npart") is None
    assert handshake.receive_data(b" two") is None
    assert handshake.receive_eof().response.leftover == b"part two"
    handshake = client(max_body=10)
    refused = handshake.receive_data(b"HTTP/1.1 404 Not Found\r\n\r\n" + b"x" * 20)
    assert isinstance(refused, Refused) and refused.response.leftover == b"x" * 10
    handshake = client()
    refused = handshake.receive_data(b"HTTP/1.1 400 Bad\r\n\r\n" + b"y" * (MAX_BODY + 5))
    assert isinstance(refused, Refused) and len(refused.response.leftover) == MAX_BODY


def test_end_of_stream_before_the_head_fails_the_connection() -> None:
    handshake = client()
    assert handshake.receive_data(b"HTTP/1.1 101 Switching") is None
    with pytest.raises(ConnectionFailed):
        handshake.receive_eof()


# -- server --------------------------------------------------------------------------------


def test_server_parses_the_clients_request_byte_by_byte_and_keeps_frames_behind_it() -> None:
    handshake = client(protocols=["chat"])
    server = ServerHandshake()
    data = handshake.request + b"\x81\x82abcd"
    outcomes = [server.receive_data(data[i : i + 1]) for i in range(len(handshake.request))]
    request = outcomes[-1]
    assert outcomes[:-1] == [None] * (len(outcomes) - 1)
    assert isinstance(request, Request) and check_request(request) is None
    assert (request.method, request.path, request.version) == ("GET", "/chat?x=1", "HTTP/1.1")
    assert request.header("sec-websocket-key") == KEY and request.tokens("Sec-WebSocket-Protocol") == ["chat"]
    server = ServerHandshake()
    assert server.receive_data(data) == request and server.leftover == b"\x81\x82abcd"


def test_the_server_answer_is_accepted_by_the_client() -> None:
    handshake = client(protocols=["a", "b"], extension_offer="x-ext", accept_extensions=lambda v: v)
    request = ServerHandshake().receive_data(handshake.request)
    assert isinstance(request, Request)
    headers = accept_headers(request, protocol="b", extensions="x-ext")
    outcome = handshake.receive_data(response_bytes(101, None, headers))
    assert isinstance(outcome, Accepted)
    assert outcome.protocol == "b" and outcome.extension == ["x-ext"]
    assert outcome.response.reason == "Switching Protocols"


def test_response_bytes_adds_content_length_where_a_body_may_be() -> None:
    assert response_bytes(400, "Bad", [("X", "1")], b"why") == (
        b"HTTP/1.1 400 Bad\r\nX: 1\r\nContent-Length: 3\r\n\r\nwhy"
    )
    assert response_bytes(200, None, [("content-length", "0")]) == (
        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
    )
    assert response_bytes(101, "", []) == b"HTTP/1.1 101 \r\n\r\n"
    assert response_bytes(599, None, []) == b"HTTP/1.1 599 \r\nContent-Length: 0\r\n\r\n"


def test_oversized_and_malformed_requests_are_rejected() -> None:
    server = ServerHandshake(max_request_size=100)
    assert server.receive_data(b"GET / HTTP/1.1\r\nX: " + b"a" * 50) is None
    assert server.receive_data(b"a" * 50) == RequestRejected(431, b"request head too large")
    server = ServerHandshake(max_request_size=30)
    assert server.receive_data(b"GET / HTTP/1.1\r\nX: " + b"a" * 20 + b"\r\n\r\n") == (
        RequestRejected(431, b"request head too large")
    )
    rejected = ServerHandshake().receive_data(b"nonsense\r\n\r\n")
    assert isinstance(rejected, RequestRejected) and rejected.status == 400
    assert b"malformed request line" in rejected.body
    rejected = ServerHandshake().receive_data(b"GET / HTTP/1.1\r\n bad: x\r\n\r\n")
    assert isinstance(rejected, RequestRejected) and rejected.status == 400


@pytest.mark.parametrize(
    "change, problem",
    [
        (lambda r: r.replace(b"GET", b"PUT"), "method PUT is not GET"),
        (lambda r: r.replace(b"HTTP/1.1", b"HTTP/1.0"), "HTTP/1.0 is not HTTP/1.1"),
        (lambda r: r.replace(b"Upgrade: websocket", b"Upgrade: h2c"), "Upgrade: websocket is missing"),
        (lambda r: r.replace(b"Connection: Upgrade", b"Connection: close"), "Connection: Upgrade is missing"),
        (lambda r: r.replace(KEY.encode(), b"c2hvcnQ="), "Sec-WebSocket-Key is missing or invalid"),
        (lambda r: r.replace(KEY.encode(), b"not base64!"), "Sec-WebSocket-Key is missing or invalid"),
        (lambda r: r.replace(b"Version: 13", b"Version: 8"), "Sec-WebSocket-Version is not 13"),
    ],
)
def test_check_request_says_what_is_wrong(change, problem: str) -> None:
    request = ServerHandshake().receive_data(change(client().request))
    assert isinstance(request, Request) and check_request(request) == problem
