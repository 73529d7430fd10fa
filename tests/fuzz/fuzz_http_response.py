"""Fuzz target: the server's answer to the opening handshake (``ResponseParser`` + checks).

Byte 0 of an input picks the chunk size (bits 0-4, 0 = all at once), whether subprotocols
were offered (bit 5) and whether permessage-deflate was offered (bit 6); byte 1 picks the
parser's head-size limit (``64 * (byte + 1)``, or the real 64 KiB when bit 7 of byte 0 is set).
The rest is the response.

The parser must return a ``Response`` whose ``leftover`` is exactly what followed the first
CRLFCRLF, or raise ``HandshakeError``; it must never hold more than its limit plus one chunk.
A parsed response then goes through ``check_response`` (the client's RFC 6455 4.1 checks,
deflate negotiation included) and ``content_length``: ``HandshakeError`` is the only
exception allowed.

Run it (atheris needed): ``python tests/fuzz/run.py http_response tests/fuzz/corpus/http_response``.
"""

from __future__ import annotations

from typing import Optional

from syncws.errors import HandshakeError
from syncws.protocol.deflate import DeflateOptions, client_accept
from syncws.protocol.handshake import (
    MAX_HEAD_SIZE,
    Response,
    ResponseParser,
    check_response,
    content_length,
)

#: The key the corpus's 101 answers were made for (their Sec-WebSocket-Accept matches it).
KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def parse(data: bytes, chunk: int, limit: int) -> Optional[Response]:
    parser = ResponseParser(limit)
    step = chunk or max(1, len(data))
    for position in range(0, len(data), step):
        piece = data[position : position + step]
        try:
            response = parser.feed(piece)
        except HandshakeError:
            return None
        assert len(parser._buffer) <= limit + len(piece), (len(parser._buffer), limit)
        if response is not None:
            consumed = data[: position + len(piece)]
            end = consumed.index(b"\r\n\r\n")
            assert end <= limit
            assert response.leftover == consumed[end + 4 :], "leftover is not what followed"
            assert 100 <= response.status <= 999
            return response
    return None


def test_one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    flags = data[0]
    limit = MAX_HEAD_SIZE if flags & 0x80 else 64 * (data[1] + 1)
    response = parse(data[2:], flags & 31, limit)
    if response is None:
        return
    protocols = ["chat", "superchat"] if flags & 0x20 else []
    options = DeflateOptions() if flags & 0x40 else None
    length = content_length(response)
    assert length is None or length >= 0
    try:
        protocol, extension = check_response(
            response,
            key=KEY,
            protocols=protocols,
            accept_extensions=lambda values: client_accept(values, options),
        )
    except HandshakeError as error:
        assert error.status == response.status or error.status is None
        return
    assert response.status == 101
    assert protocol == "" or protocol in protocols
    assert extension is None or options is not None

