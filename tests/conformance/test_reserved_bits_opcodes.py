"""Reserved bits and opcodes (CONFORMANCE.md groups 3 and 4).

With no extension negotiated, any RSV bit on any frame, and any reserved opcode, fails the
connection with 1002 at that frame: the messages before it are delivered, nothing after it."""

from __future__ import annotations

import pytest

from syncws.protocol.frames import Opcode

DELIVERED = ["first", b"\x00second"]


def around(wire, bad: bytes) -> bytes:
    """Two valid messages, ``bad``, then a message and a ping that must have no effect."""
    before = wire.frame(Opcode.TEXT, "first") + wire.frame(Opcode.BINARY, b"\x00second")
    after = wire.frame(Opcode.TEXT, "after") + wire.frame(Opcode.PING, "after")
    return before + bad + after


@pytest.mark.parametrize("rsv", ["rsv1", "rsv2", "rsv3"])
@pytest.mark.parametrize(
    "opcode, payload",
    [
        (Opcode.TEXT, b"reserved"),
        (Opcode.BINARY, b"\xffreserved"),
        (Opcode.PING, b"reserved"),
        (Opcode.PONG, b"reserved"),
        (Opcode.CLOSE, b"\x03\xe8reserved"),
    ],
    ids=lambda v: v.name if isinstance(v, Opcode) else "",
)
@pytest.mark.parametrize("chunk_size", [None, 1], ids=["whole", "1-byte-chunks"])
def test_reserved_bit_fails_with_1002(open_client, wire, rsv, opcode, payload, chunk_size):
    conn, client = open_client()
    wire.send(conn, around(wire, wire.frame(opcode, payload, **{rsv: True})), chunk_size)
    client.expect_failure(conn, 1002, DELIVERED)
    assert conn.pongs == []


def test_all_reserved_bits_on_a_continuation_frame(open_client, wire):
    conn, client = open_client()
    start = wire.frame(Opcode.TEXT, "par", fin=False)
    bad = wire.frame(Opcode.CONT, "tial", rsv1=True, rsv2=True, rsv3=True)
    wire.send(conn, around(wire, start + bad))
    client.expect_failure(conn, 1002, DELIVERED)


@pytest.mark.parametrize("payload", [b"", b"payload"], ids=["empty", "payload"])
@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 11, 12, 13, 14, 15])
def test_reserved_opcode_fails_with_1002(open_client, wire, opcode, payload):
    conn, client = open_client()
    wire.send(conn, around(wire, wire.frame(opcode, payload)))
    client.expect_failure(conn, 1002, DELIVERED)
    assert conn.pongs == []


@pytest.mark.parametrize("opcode", [3, 11])
def test_reserved_opcode_sent_one_byte_at_a_time(open_client, wire, opcode):
    conn, client = open_client()
    wire.send(conn, around(wire, wire.frame(opcode, "abc")), chunk_size=1)
    client.expect_failure(conn, 1002, DELIVERED)


def test_reserved_opcode_between_fragments(open_client, wire):
    conn, client = open_client()
    fragments = wire.frame(Opcode.TEXT, "frag", fin=False) + wire.frame(4) + wire.frame(0, "ment")
    wire.send(conn, around(wire, fragments))
    client.expect_failure(conn, 1002, DELIVERED)
