"""syncws.protocol.handshake, byte for byte: the request, the bounded response parser and
every check RFC 6455 (and the WHATWG protocol rule) makes of a 101 response."""

from __future__ import annotations

import base64
from typing import List, Optional, Tuple

import pytest

from syncws.errors import HandshakeError
from syncws.protocol import handshake
from syncws.protocol.handshake import (
    GUID,
    MAX_HEADERS,
    MAX_LINE,
    Response,
    ResponseParser,
    accept_key,
    build_request,
    check_header_field,
    check_response,
    content_length,
    new_key,
)

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 section 1.3
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_accept_key_of_the_rfc_example():
    assert GUID == "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
    assert accept_key(KEY) == ACCEPT


def test_new_key_is_16_random_bytes_in_base64(monkeypatch):
    keys = {new_key() for _ in range(100)}
    assert len(keys) == 100
    assert all(len(base64.b64decode(key, validate=True)) == 16 for key in keys)
    monkeypatch.setattr(handshake.os, "urandom", lambda n: bytes(range(n)))
    assert new_key() == base64.b64encode(bytes(range(16))).decode()


# -- request --------------------------------------------------------------------------------


def test_request_bytes():
    request = build_request(
        host="example.com:8080",
        resource="/chat?room=1",
        key=KEY,
        protocols=["chat", "superchat"],
        extensions="permessage-deflate; client_max_window_bits",
        headers=[("Origin", "http://example.com"), ("User-Agent", "test")],
    )
    assert request == (
        b"GET /chat?room=1 HTTP/1.1\r\n"
        b"Host: example.com:8080\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Protocol: chat, superchat\r\n"
        b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        b"Origin: http://example.com\r\n"
        b"User-Agent: test\r\n"
        b"\r\n"
    )


def test_minimal_request_and_host_override():
    assert build_request(host="h", resource="/", key=KEY) == (
        b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: " + KEY.encode() + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    request = build_request(host="h", resource="/", key=KEY, headers=[("host", "other")])
    assert b"Host: h\r\n" not in request and request.endswith(b"\r\nhost: other\r\n\r\n")


@pytest.mark.parametrize(
    "name, value, error",
    [
        ("X Bad", "v", ValueError),
        ("X:Bad", "v", ValueError),
        ("", "v", ValueError),
        ("X-Ok", "a\r\nInjected: yes", ValueError),
        ("X-Ok", "a\nb", ValueError),
        ("X-Ok", "a\x00b", ValueError),
        (b"X-Ok", "v", TypeError),
        ("X-Ok", 1, TypeError),
    ],
)
def test_header_fields_are_checked(name, value, error):
    with pytest.raises(error):
        check_header_field(name, value)


def test_valid_header_field():
    check_header_field("X-Custom_1.2~", "any text, even ü")


# -- response parsing -----------------------------------------------------------------------

HEAD = (
    b"HTTP/1.1 101 Switching Protocols\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: " + ACCEPT.encode() + b"\r\n"
    b"\r\n"
)


def test_response_in_one_piece_with_leftover_frames():
    response = ResponseParser().feed(HEAD + b"\x81\x02hi")
    assert response is not None
    assert (response.status, response.reason) == (101, "Switching Protocols")
    assert response.headers == [
        ("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", ACCEPT)
    ]
    assert response.leftover == b"\x81\x02hi"


def test_response_byte_by_byte():
    parser = ResponseParser()
    for byte in HEAD[:-1]:
        assert parser.feed(bytes([byte])) is None
    response = parser.feed(HEAD[-1:])
    assert response is not None and response.status == 101 and response.leftover == b""


@pytest.mark.parametrize("cut", [1, 2, 3])
def test_blank_line_split_between_reads(cut):
    parser = ResponseParser()
    assert parser.feed(HEAD[:-cut]) is None
    assert parser.feed(HEAD[-cut:] + b"rest").leftover == b"rest"


def test_header_values_are_trimmed_and_looked_up_case_insensitively():
    head = b"HTTP/1.1 101 OK\r\nX-A:  one \t\r\nx-a: two\r\nX-Empty:\r\n\r\n"
    response = ResponseParser().feed(head)
    assert response.get_all("X-A") == ["one", "two"]
    assert response.get("x-a") == "one, two"
    assert response.get("X-Empty") == ""
    assert response.get("Missing") is None


@pytest.mark.parametrize(
    "status_line, status, reason",
    [(b"HTTP/1.1 101", 101, ""), (b"HTTP/1.0 403 Forbidden", 403, "Forbidden"),
     (b"HTTP/1.1 200 OK fine", 200, "OK fine")],
)
def test_status_lines(status_line, status, reason):
    response = ResponseParser().feed(status_line + b"\r\n\r\n")
    assert (response.status, response.reason) == (status, reason)


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/2 101 Switching Protocols\r\n\r\n",
        b"HTTP/1.1 1O1 Switching Protocols\r\n\r\n",
        b"HTTP/1.1 1010 Switching Protocols\r\n\r\n",
        b"ICY 200 OK\r\n\r\n",
        b"\r\n\r\n",
        b"HTTP/1.1 101 OK\r\nNo colon here\r\n\r\n",
        b"HTTP/1.1 101 OK\r\nBad Name: x\r\n\r\n",
        b"HTTP/1.1 101 OK\r\nX-A: one\r\n folded\r\n\r\n",
        b"HTTP/1.1 101 OK\r\n" + b"X-Long: " + b"a" * MAX_LINE + b"\r\n\r\n",
        b"HTTP/1.1 101 OK\r\n" + b"X-A: b\r\n" * (MAX_HEADERS + 1) + b"\r\n",
        # Found by fuzzing: RFC 9110 status codes are 100-599 (the first digit is the class).
        b"HTTP/1.1 050 OK\r\n\r\n",
        b"HTTP/1.1 600 OK\r\n\r\n",
        b"HTTP/1.1 101 OK\nUpgrade: websocket\r\n\r\n",
    ],
    ids=["http-2", "letter-o", "4-digits", "not-http", "empty", "no-colon", "bad-name",
         "folded", "long-line", "too-many-headers", "status-050", "status-600", "bare-lf"],
)
def test_malformed_responses(head):
    with pytest.raises(HandshakeError):
        ResponseParser().feed(head)


def test_head_size_is_bounded_while_it_arrives():
    parser = ResponseParser(max_size=1000)
    assert parser.feed(b"HTTP/1.1 101 OK\r\n" + b"X-A: b\r\n" * 100) is None  # 817 bytes
    with pytest.raises(HandshakeError):
        parser.feed(b"X-A: b\r\n" * 30)  # over 1000 with no end in sight


def test_head_ending_past_the_limit_in_one_read():
    head = b"HTTP/1.1 101 OK\r\n" + b"X-A: b\r\n" * 200 + b"\r\n"
    with pytest.raises(HandshakeError):
        ResponseParser(max_size=1000).feed(head)
    assert ResponseParser(max_size=len(head) - 4).feed(head) is not None  # exactly the limit


def test_default_limit_is_64_kib():
    parser = ResponseParser()
    chunk = b"X-Padding: " + b"a" * 1000 + b"\r\n"
    with pytest.raises(HandshakeError):
        parser.feed(b"HTTP/1.1 101 OK\r\n")
        for _ in range(100):
            parser.feed(chunk)


def test_content_length():
    def response(*headers: Tuple[str, str]) -> Response:
        return Response(200, "OK", list(headers), b"")

    assert content_length(response(("Content-Length", "12"))) == 12
    assert content_length(response(("content-length", " 0 "))) == 0
    assert content_length(response()) is None
    assert content_length(response(("Content-Length", "-1"))) is None
    assert content_length(response(("Content-Length", "ten"))) is None
    # Found by fuzzing: str.isdigit() accepts these, int() raised ValueError on them.
    assert content_length(response(("Content-Length", "\u00b2"))) is None
    assert content_length(response(("Content-Length", "9" * 5000))) is None
    assert content_length(response(("Content-Length", "1" * 18))) == int("1" * 18)


# -- response checks ------------------------------------------------------------------------


def make_response(
    status: int = 101,
    *,
    drop: Tuple[str, ...] = (),
    extra: List[Tuple[str, str]] = (),
    leftover: bytes = b"",
) -> Response:
    headers = [
        ("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", ACCEPT)
    ]
    headers = [(k, v) for k, v in headers if k not in drop] + list(extra)
    return Response(status, "", headers, leftover)


def check(response: Response, protocols=(), extensions=lambda values: None):
    return check_response(
        response, key=KEY, protocols=list(protocols), accept_extensions=extensions
    )


def test_valid_response():
    assert check(make_response()) == ("", None)


@pytest.mark.parametrize(
    "extra",
    [
        [],
        [("Upgrade", "WebSocket")],
        [("Connection", "keep-alive, UPGRADE")],
    ],
)
def test_tokens_are_case_insensitive(extra):
    names = {name for name, _ in extra}
    assert check(make_response(drop=tuple(names), extra=extra)) == ("", None)


@pytest.mark.parametrize(
    "drop, extra",
    [
        (("Upgrade",), []),
        (("Upgrade",), [("Upgrade", "h2c")]),
        (("Upgrade",), [("Upgrade", "websocket2")]),
        (("Connection",), []),
        (("Connection",), [("Connection", "keep-alive")]),
        (("Connection",), [("Connection", "Upgrade-Insecure")]),
        (("Sec-WebSocket-Accept",), []),
        (("Sec-WebSocket-Accept",), [("Sec-WebSocket-Accept", accept_key("x" * 24))]),
        (("Sec-WebSocket-Accept",), [("Sec-WebSocket-Accept", ACCEPT.lower())]),
        ((), [("Sec-WebSocket-Accept", ACCEPT)]),  # twice
    ],
    ids=["no-upgrade", "upgrade-h2c", "upgrade-websocket2", "no-connection",
         "connection-keep-alive", "connection-other-token", "no-accept", "accept-of-another-key",
         "accept-lowercase", "accept-twice"],
)
def test_invalid_101(drop, extra):
    response = make_response(drop=drop, extra=extra)
    with pytest.raises(HandshakeError) as info:
        check(response)
    assert info.value.status == 101
    assert info.value.headers == response.headers


@pytest.mark.parametrize(
    "offered, selected, expected",
    [
        ([], None, ""),
        (["chat"], "chat", "chat"),
        (["chat", "superchat"], "superchat", "superchat"),
        (["chat"], "superchat", None),
        (["chat", "superchat"], "Chat", None),
        ([], "chat", None),
        (["chat"], None, None),
        (["chat", "superchat"], "chat, superchat", None),
    ],
)
def test_protocol_rules(offered, selected, expected: Optional[str]):
    extra = [] if selected is None else [("Sec-WebSocket-Protocol", selected)]
    response = make_response(extra=extra)
    if expected is None:
        with pytest.raises(HandshakeError):
            check(response, offered)
    else:
        assert check(response, offered) == (expected, None)


def test_protocol_header_twice_is_refused():
    extra = [("Sec-WebSocket-Protocol", "chat"), ("Sec-WebSocket-Protocol", "chat")]
    with pytest.raises(HandshakeError):
        check(make_response(extra=extra), ["chat"])


def test_extensions_are_judged_by_the_callback():
    seen = []

    def accept(values):
        seen.append(values)
        if "x-bad" in values:
            raise HandshakeError("not offered")
        return "negotiated" if values else None

    extra = [("Sec-WebSocket-Extensions", "x-good"), ("Sec-WebSocket-Extensions", "x-more")]
    assert check(make_response(extra=extra), extensions=accept) == ("", "negotiated")
    assert check(make_response(), extensions=accept) == ("", None)
    with pytest.raises(HandshakeError):
        check(make_response(extra=[("Sec-WebSocket-Extensions", "x-bad")]), extensions=accept)
    assert seen == [["x-good", "x-more"], [], ["x-bad"]]


@pytest.mark.parametrize("status", [200, 302, 400, 403, 500])
def test_refusal_carries_status_headers_and_body(status):
    headers = [("Location", "ws://elsewhere/"), ("X-Why", "because")]
    response = Response(status, "Nope", headers, b"the body")
    with pytest.raises(HandshakeError) as info:
        check(response)
    error = info.value
    assert (error.status, error.headers, error.body) == (status, headers, b"the body")
    assert error.header("x-why") == "because"
    assert str(status) in str(error)


def test_refusal_body_is_bounded():
    response = Response(403, "Forbidden", [], b"x" * (handshake.MAX_BODY + 100))
    with pytest.raises(HandshakeError) as info:
        check(response)
    assert info.value.body == b"x" * handshake.MAX_BODY


def test_extension_error_keeps_the_status_it_carries():
    """A HandshakeError from accept_extensions gets the response's status and headers, unless
    it already says which answer it is about."""
    def reject(values):
        raise HandshakeError("no", status=599, headers=[("X", "y")])

    with pytest.raises(HandshakeError) as info:
        check(make_response(extra=[("Sec-WebSocket-Extensions", "x")]), extensions=reject)
    assert (info.value.status, info.value.headers) == (599, [("X", "y")])

    def reject_plain(values):
        raise HandshakeError("no")

    with pytest.raises(HandshakeError) as info:
        check(make_response(), extensions=reject_plain)
    assert info.value.status == 101 and info.value.header("Upgrade") == "websocket"
    assert info.value.header("X-Missing", "default") == "default"
