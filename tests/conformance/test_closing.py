"""The closing handshake (CONFORMANCE.md group 7).

The client echoes the server's Close (its code; an empty Close for an empty one), ignores
everything after it, then lets the server close TCP first, within ``close_timeout``. Bad Close
bodies fail the connection (1002, or 1007 for a reason that is not UTF-8). Client-initiated
closes send exactly what ``close()`` was given. An abrupt TCP end while OPEN is a failure."""

from __future__ import annotations

import time

import pytest

import syncws
from syncws.protocol.frames import Opcode
from syncws.server import CloseInfo

VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
               3000, 3999, 4000, 4999]
INVALID_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]


def assert_client_keeps_tcp_open(conn) -> None:
    """The client must wait for the server to close TCP first (RFC 6455 section 7.1.1)."""
    with pytest.raises(TimeoutError):
        conn.wait_eof(timeout=0.3)


def test_empty_close_is_echoed_empty_and_gives_1005(open_client):
    conn, client = open_client()
    conn.close()
    frame = conn.recv_frame(timeout=5)
    assert (frame.opcode, frame.payload, frame.fin) == (Opcode.CLOSE, b"", True)
    assert_client_keeps_tcp_open(conn)
    assert not client.closed
    conn.release()  # the server closes TCP
    client.assert_clean_close(1005)


def test_close_with_code_is_echoed(open_client):
    conn, client = open_client()
    conn.close(1000)
    frame = conn.recv_frame(timeout=5)
    assert (frame.opcode, frame.payload) == (Opcode.CLOSE, b"\x03\xe8")
    assert_client_keeps_tcp_open(conn)
    conn.release()
    client.assert_clean_close(1000)


@pytest.mark.parametrize(
    "reason", ["bye", "κόσμε 😀", "r" * 123], ids=["ascii", "utf8", "123-bytes"]
)
def test_close_with_code_and_reason_delivers_the_reason(open_client, reason):
    conn, client = open_client()
    conn.close(4000, reason)
    assert conn.expect_close() == CloseInfo(4000, "")  # the echo carries the code
    conn.release()
    client.assert_clean_close(4000, reason)


@pytest.mark.parametrize("code", VALID_CODES)
def test_every_valid_code_is_echoed(open_client, code):
    conn, client = open_client()
    conn.close(code, "valid")
    assert conn.expect_close().code == code
    conn.release()
    client.assert_clean_close(code, "valid")


@pytest.mark.parametrize("code", INVALID_CODES)
def test_every_invalid_code_fails_with_1002(open_client, code):
    conn, client = open_client()
    conn.send("before")
    conn.close(raw_body=code.to_bytes(2, "big") + b"invalid")
    client.expect_failure(conn, 1002, ["before"])


def test_one_byte_close_body_fails_with_1002(open_client):
    conn, client = open_client()
    conn.close(raw_body=b"\x03")
    client.expect_failure(conn, 1002)


@pytest.mark.parametrize(
    "reason", [b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"ok\xe2\x82", b"\xf4\x90\x80\x80"]
)
def test_close_reason_that_is_not_utf8_fails_with_1007(open_client, reason):
    conn, client = open_client()
    conn.close(raw_body=b"\x03\xe8" + reason)
    client.expect_failure(conn, 1007)


@pytest.mark.parametrize("same_segment", [True, False], ids=["same-segment", "later"])
def test_data_and_pings_after_close_are_ignored(open_client, wire, same_segment):
    conn, client = open_client(echo=True)
    after = wire.frame(Opcode.TEXT, "after") + wire.frame(Opcode.PING, "after")
    after += wire.frame(Opcode.BINARY, b"after", fin=False) + wire.frame(Opcode.TEXT, b"\xff")
    close = wire.frame(Opcode.CLOSE, b"\x03\xe8")
    if same_segment:
        conn.send_raw(close + after)
        assert conn.expect_close().code == 1000
    else:
        conn.send_raw(close)
        assert conn.expect_close().code == 1000
        conn.send_raw(after)
    conn.shutdown_write()  # the server closes TCP; the client then closes its side
    with pytest.raises(syncws.server.ClientClosed):  # EOF with no pong and no echo before it
        conn.recv_frame(timeout=5)
    assert conn.pongs == []
    client.assert_clean_close(1000)
    assert client.messages == []


def test_client_closes_tcp_after_close_timeout_if_the_server_never_does(open_client):
    conn, client = open_client(close_timeout=0.5)
    conn.close(1000, "stay")
    started = time.monotonic()
    assert conn.expect_close().code == 1000
    assert conn.wait_eof(timeout=5) in ("eof", "reset")
    elapsed = time.monotonic() - started
    assert 0.4 <= elapsed < 2.5, elapsed
    client.assert_clean_close(1000, "stay")


def test_client_initiated_close_with_code_and_reason(open_client):
    conn, client = open_client()
    client.ws.close(1000, "bye")
    assert client.ws.ready_state == syncws.CLOSING
    frame = conn.recv_frame(timeout=5)
    assert (frame.opcode, frame.fin, frame.payload) == (Opcode.CLOSE, True, b"\x03\xe8bye")
    assert (frame.rsv1, frame.rsv2, frame.rsv3) == (False, False, False)
    conn.close(1000, "server reply")
    assert_client_keeps_tcp_open(conn)
    conn.release()
    client.assert_clean_close(1000, "server reply")


def test_client_initiated_close_when_the_server_never_closes_tcp(open_client):
    """Both Close frames were exchanged: after close_timeout the client closes TCP, cleanly."""
    conn, client = open_client(close_timeout=0.5)
    started = time.monotonic()
    client.ws.close(3000)
    assert conn.expect_close().code == 3000  # echoed by the server
    assert conn.wait_eof(timeout=5) in ("eof", "reset")
    assert time.monotonic() - started < 2.5
    client.assert_clean_close(3000)


def test_server_closes_tcp_right_after_its_close(open_client):
    """A server that does not wait for the echo: still a clean close, and the echo is sent."""
    conn, client = open_client()
    conn.close(1001, "going away")
    conn.shutdown_write()
    assert conn.expect_close().code == 1001
    client.assert_clean_close(1001, "going away")


def test_client_close_without_arguments_sends_an_empty_close(open_client):
    conn, client = open_client()
    client.ws.close()
    frame = conn.recv_frame(timeout=5)
    assert (frame.opcode, frame.payload) == (Opcode.CLOSE, b"")
    conn.close()
    conn.release()
    client.assert_clean_close(1005)


@pytest.mark.parametrize(
    "code, reason, body",
    [(None, "why", b"\x03\xe8why"), (3000, None, b"\x0b\xb8"), (4999, "", b"\x13\x87")],
    ids=["reason-only", "code-only", "code-empty-reason"],
)
def test_client_close_arguments_on_the_wire(open_client, code, reason, body):
    conn, client = open_client()
    client.ws.close(code, reason)
    assert conn.expect_close() == CloseInfo(int.from_bytes(body[:2], "big"), body[2:].decode())
    conn.release()
    client.assert_clean_close(int.from_bytes(body[:2], "big"), body[2:].decode())


def test_client_close_then_server_never_answers(open_client):
    """Without the server's Close the client gives up after close_timeout: not clean."""
    conn, client = open_client(close_timeout=0.5)
    client.ws.close(1000)
    assert conn.expect_close(reply=False).code == 1000
    assert conn.wait_eof(timeout=5) in ("eof", "reset")
    event = client.wait_closed()
    assert (event.code, event.was_clean) == (1006, False)
    assert client.types == ["open", "close"]  # closing timed out: not a failure, no error


def test_messages_sent_before_close_go_out_first(open_client):
    conn, client = open_client()
    for i in range(3):
        client.ws.send(f"m{i}")
    client.ws.close(1000, "done")
    assert [conn.recv(timeout=5) for _ in range(3)] == ["m0", "m1", "m2"]
    assert conn.expect_close() == CloseInfo(1000, "done")
    conn.release()
    client.assert_clean_close(1000, "done")


@pytest.mark.parametrize("how", ["abort", "shutdown_write"])
def test_abrupt_tcp_close_while_open_is_a_failure(open_client, how):
    conn, client = open_client()
    conn.send("last words")
    assert client.wait_messages(1) == ["last words"]
    getattr(conn, how)()
    error = client.assert_failed()
    assert isinstance(error, OSError), repr(error)
    assert client.types == ["open", "message", "error", "close"]
