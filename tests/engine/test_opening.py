"""syncws.engine.opening.perform_handshake: the sans-I/O client handshake driven over real TCP
against syncws's scriptable server (refusal bodies, deadlines, a server that drops)."""

from __future__ import annotations

import socket
import time

import pytest

from syncws.engine.opening import perform_handshake
from syncws.errors import ConnectionFailed
from syncws.protocol.handshake import Accepted, ClientHandshake, Refused
from syncws.server import HandshakeResponse, WebSocketServer, hold
from syncws.streams import SocketStream


def connect(server: WebSocketServer) -> SocketStream:
    return SocketStream(socket.create_connection((server.host, server.port), timeout=5))


def handshake(**options: object) -> ClientHandshake:
    return ClientHandshake(host="localhost", resource="/", **options)  # type: ignore[arg-type]


def test_accepted_with_subprotocol(ws_server_factory) -> None:
    server = ws_server_factory(hold, subprotocols=["b"])
    stream = connect(server)
    accepted = perform_handshake(stream, handshake(protocols=["a", "b"]), time.monotonic() + 5)
    assert isinstance(accepted, Accepted) and accepted.protocol == "b"
    assert server.accepted().request.header("Sec-WebSocket-Protocol") == "a, b"
    stream.close()


def test_refusal_body_arriving_in_pieces_is_read_to_its_length(ws_server_factory) -> None:
    refusal = HandshakeResponse(403, body=b"go away, please", chunk_size=5, delay=0.02)
    server = ws_server_factory(handshake=refusal)
    stream = connect(server)
    refused = perform_handshake(stream, handshake(), time.monotonic() + 5)
    assert isinstance(refused, Refused)
    assert (refused.response.status, refused.response.leftover) == (403, b"go away, please")
    assert refused.error().body == refused.response.leftover
    stream.close()


def test_refusal_without_length_ends_at_end_of_stream(ws_server_factory) -> None:
    server = ws_server_factory(handshake=HandshakeResponse(raw=b"HTTP/1.1 500 Oops\r\n\r\nall of it"))
    stream = connect(server)
    refused = perform_handshake(stream, handshake(), time.monotonic() + 5)
    assert isinstance(refused, Refused)
    assert (refused.response.status, refused.response.leftover) == (500, b"all of it")
    assert refused.error().body == refused.response.leftover
    stream.close()


def test_deadline_during_a_refusal_body_keeps_what_came() -> None:
    # A peer that answers part of a refusal and then keeps TCP open (the scripted server ends
    # the connection after a refusal, so this one is a plain socket).
    listener = socket.create_server(("127.0.0.1", 0))
    stream = SocketStream(socket.create_connection(listener.getsockname(), timeout=5))
    peer, _ = listener.accept()
    listener.close()
    peer.sendall(b"HTTP/1.1 503 Busy\r\nContent-Length: 100\r\n\r\nfirst")
    start = time.monotonic()
    refused = perform_handshake(stream, handshake(), time.monotonic() + 0.5)
    assert isinstance(refused, Refused)
    assert (refused.response.status, refused.response.leftover) == (503, b"first")
    assert refused.error().body == refused.response.leftover
    assert 0.4 < time.monotonic() - start < 3
    assert peer.recv(4096).startswith(b"GET / HTTP/1.1\r\n")
    peer.close()
    stream.close()


def test_deadline_before_the_head_is_a_timeout(ws_server_factory) -> None:
    server = ws_server_factory(handshake=HandshakeResponse.hang())
    stream = connect(server)
    with pytest.raises(socket.timeout):
        perform_handshake(stream, handshake(), time.monotonic() + 0.3)
    stream.close()


def test_server_dropping_the_connection_fails_it(ws_server_factory) -> None:
    server = ws_server_factory(handshake=HandshakeResponse.drop())
    stream = connect(server)
    with pytest.raises(ConnectionFailed):
        perform_handshake(stream, handshake(), time.monotonic() + 5)
    stream.close()
