"""Fragmentation (CONFORMANCE.md group 5): messages in several frames (empty ones too) are
reassembled; pings between fragments are answered at once, pongs between them ignored; a
continuation without a start, a new message before the previous one ended and fragmented
control frames fail the connection with 1002."""

from __future__ import annotations

import pytest

from syncws.protocol.frames import Opcode

DELIVERED = ["ok", b"ok"]


def before(wire) -> bytes:
    return wire.frame(Opcode.TEXT, "ok") + wire.frame(Opcode.BINARY, b"ok")


@pytest.mark.parametrize(
    "parts",
    [
        ["Hello", ", ", "World"],
        ["x", ""],
        ["", "x"],
        ["", ""],
        ["", "", ""],
        ["", "abc", "", "", "def", ""],
        ["a"] * 100,
    ],
    ids=["3-frames", "empty-last", "empty-first", "2-empty", "3-empty", "empties-between", "100"],
)
@pytest.mark.parametrize("kind", ["text", "binary"])
@pytest.mark.parametrize("chunk_size", [None, 1], ids=["whole", "1-byte-chunks"])
def test_fragmented_message_reassembled(open_client, kind, parts, chunk_size):
    conn, client = open_client(echo=True)
    message = "".join(parts)
    if kind == "text":
        conn.send_fragments(Opcode.TEXT, parts, chunk_size=chunk_size)
    else:
        message = message.encode()
        conn.send_fragments(Opcode.BINARY, [p.encode() for p in parts], chunk_size=chunk_size)
    assert conn.recv(timeout=5) == message
    assert client.messages == [message]
    client.close_from_server(conn)


def test_multibyte_characters_split_between_fragments(open_client):
    conn, client = open_client(echo=True)
    data = "κόσμε €😀".encode()
    conn.send_fragments(Opcode.TEXT, [data[i : i + 1] for i in range(len(data))])
    assert conn.recv(timeout=5) == "κόσμε €😀"
    client.close_from_server(conn)


@pytest.mark.parametrize("kind", ["text", "binary"])
def test_pings_between_fragments_are_answered_at_once(open_client, wire, kind):
    """Each pong reaches the server before the server sends the next fragment."""
    conn, client = open_client(echo=True)
    opcode = Opcode.TEXT if kind == "text" else Opcode.BINARY
    parts = [b"frag", "-é-".encode()[:2], "-é-".encode()[2:], b"end"]
    conn.send_raw(wire.frame(opcode, parts[0], fin=False))
    for index, part in enumerate(parts[1:], 1):
        conn.ping(f"ping {index}")
        frame = conn.recv_frame(timeout=5)
        assert (frame.opcode, frame.payload) == (Opcode.PONG, f"ping {index}".encode())
        conn.send_raw(wire.frame(Opcode.CONT, part, fin=index == len(parts) - 1))
    expected = b"".join(parts) if kind == "binary" else b"".join(parts).decode()
    assert conn.recv(timeout=5) == expected
    assert client.messages == [expected]
    client.close_from_server(conn)


@pytest.mark.parametrize("chunk_size", [None, 1], ids=["one-segment", "1-byte-chunks"])
def test_pings_between_fragments_sent_in_one_go(open_client, wire, chunk_size):
    conn, client = open_client(echo=True)
    conn.send_raw(
        wire.frame(Opcode.TEXT, "one ", fin=False)
        + wire.frame(Opcode.PING, "a")
        + wire.frame(Opcode.CONT, "two ", fin=False)
        + wire.frame(Opcode.PING, "b")
        + wire.frame(Opcode.PING, "c")
        + wire.frame(Opcode.CONT, "three"),
        chunk_size=chunk_size,
    )
    frames = [conn.recv_frame(timeout=5) for _ in range(4)]
    assert [(f.opcode, f.payload) for f in frames] == [
        (Opcode.PONG, b"a"),
        (Opcode.PONG, b"b"),
        (Opcode.PONG, b"c"),
        (Opcode.TEXT, b"one two three"),
    ]
    assert client.messages == ["one two three"]
    client.close_from_server(conn)


def test_pongs_between_fragments_are_ignored(open_client, wire):
    conn, client = open_client(echo=True)
    conn.send_raw(
        wire.frame(Opcode.BINARY, b"\x01", fin=False)
        + wire.frame(Opcode.PONG, "unsolicited")
        + wire.frame(Opcode.CONT, b"\x02", fin=False)
        + wire.frame(Opcode.PONG)
        + wire.frame(Opcode.CONT, b"\x03")
    )
    frame = conn.recv_frame(timeout=5)
    assert (frame.opcode, frame.payload) == (Opcode.BINARY, b"\x01\x02\x03")
    assert client.messages == [b"\x01\x02\x03"]
    client.close_from_server(conn)


def test_close_between_fragments_ends_cleanly_without_the_partial_message(open_client, wire):
    conn, client = open_client()
    conn.send_raw(wire.frame(Opcode.TEXT, "never ", fin=False))
    conn.close(1000, "mid-message")
    assert conn.expect_close().code == 1000
    conn.release()
    client.assert_clean_close(1000, "mid-message")
    assert client.messages == []


@pytest.mark.parametrize(
    "frames",
    [
        [(Opcode.CONT, "orphan", True)],
        [(Opcode.CONT, "orphan", False), (Opcode.CONT, "end", True)],
        [(Opcode.CONT, "", True)],
        [(Opcode.TEXT, "done", True), (Opcode.CONT, "again", True)],
    ],
    ids=["final", "non-final", "empty", "after-a-finished-message"],
)
@pytest.mark.parametrize("chunk_size", [None, 1], ids=["whole", "1-byte-chunks"])
def test_continuation_without_a_start_fails_with_1002(open_client, wire, frames, chunk_size):
    conn, client = open_client()
    stream = before(wire) + b"".join(wire.frame(op, p, fin=fin) for op, p, fin in frames)
    wire.send(conn, stream + wire.frame(Opcode.TEXT, "after"), chunk_size)
    delivered = DELIVERED + (["done"] if frames[0][0] == Opcode.TEXT else [])
    client.expect_failure(conn, 1002, delivered)


@pytest.mark.parametrize("first", [Opcode.TEXT, Opcode.BINARY], ids=["text", "binary"])
@pytest.mark.parametrize("second", [Opcode.TEXT, Opcode.BINARY], ids=["text", "binary"])
@pytest.mark.parametrize("second_fin", [True, False], ids=["final", "non-final"])
def test_new_message_before_the_previous_one_ended_fails_with_1002(
    open_client, wire, first, second, second_fin
):
    conn, client = open_client()
    stream = wire.frame(first, "start", fin=False) + wire.frame(Opcode.CONT, "more", fin=False)
    stream += wire.frame(second, "intruder", fin=second_fin)
    wire.send(conn, before(wire) + stream + wire.frame(Opcode.CONT, "end"))
    client.expect_failure(conn, 1002, DELIVERED)


@pytest.mark.parametrize(
    "opcode, payload",
    [(Opcode.PING, "frag"), (Opcode.PONG, "frag"), (Opcode.CLOSE, b"\x03\xe8frag")],
    ids=["ping", "pong", "close"],
)
@pytest.mark.parametrize("inside_message", [False, True], ids=["alone", "inside-a-message"])
def test_fragmented_control_frame_fails_with_1002(
    open_client, wire, opcode, payload, inside_message
):
    conn, client = open_client()
    stream = before(wire)
    if inside_message:
        stream += wire.frame(Opcode.TEXT, "partial", fin=False)
    stream += wire.frame(opcode, payload, fin=False) + wire.frame(Opcode.CONT, "ment")
    wire.send(conn, stream + wire.frame(Opcode.TEXT, "after"))
    client.expect_failure(conn, 1002, DELIVERED)
    assert conn.pongs == []
