"""Pings and pongs (CONFORMANCE.md group 2): every ping answered with a pong carrying the same
payload, in order and before later data; unsolicited pongs ignored; a control frame longer
than 125 bytes fails the connection with 1002. Pings never reach the user as events."""

from __future__ import annotations

import random
from typing import List

import pytest

from syncws.protocol.frames import Frame, Opcode


def read_frames(conn, count: int) -> List[Frame]:
    return [conn.recv_frame(timeout=5) for _ in range(count)]


def assert_pong(frame: Frame, payload: bytes) -> None:
    assert (frame.opcode, frame.fin, frame.rsv1, frame.rsv2, frame.rsv3) == (
        Opcode.PONG, True, False, False, False
    )
    assert frame.payload == payload


@pytest.mark.parametrize("kind", ["text", "binary"])
def test_pings_of_0_to_125_bytes_answered_in_order_before_later_data(
    open_client, wire, sized_text, kind
):
    """Ping i then message i, for every payload length: each pong carries its ping's payload,
    pongs come in order, and pong i reaches the server before the echo of message i."""
    conn, client = open_client(echo=True)
    rng = random.Random(2)
    if kind == "text":
        payloads = [sized_text(n).encode() for n in range(126)]
    else:
        payloads = [rng.randbytes(n) for n in range(126)]
    conn.send_raw(b"".join(
        wire.frame(Opcode.PING, p) + wire.frame(Opcode.TEXT, f"after {i}")
        for i, p in enumerate(payloads)
    ))
    frames = read_frames(conn, 2 * len(payloads))
    pongs = [(j, f) for j, f in enumerate(frames) if f.opcode == Opcode.PONG]
    echoes = [(j, f.payload.decode()) for j, f in enumerate(frames) if f.opcode == Opcode.TEXT]
    assert [text for _, text in echoes] == [f"after {i}" for i in range(len(payloads))]
    assert len(pongs) == len(payloads)
    for (pong_at, pong), (echo_at, _), ping_payload in zip(pongs, echoes, payloads):
        assert_pong(pong, ping_payload)
        assert pong_at < echo_at, "a pong came after data the client sent later"
    assert client.types == ["open"] + ["message"] * len(payloads)
    client.close_from_server(conn)


def test_pong_is_sent_before_data_sent_after_the_ping(open_client):
    """The server waits for each pong before sending the next message."""
    conn, client = open_client(echo=True)
    for i in range(5):
        conn.ping(f"p{i}")
        assert_pong(conn.recv_frame(timeout=5), f"p{i}".encode())
        conn.send(f"m{i}")
        assert conn.recv_frame(timeout=5).payload == f"m{i}".encode()
    assert client.messages == [f"m{i}" for i in range(5)]
    client.close_from_server(conn)


def test_ten_pings_in_a_row(open_client, wire):
    conn, client = open_client()
    payloads = [f"ping {i}".encode() for i in range(10)]
    conn.send_raw(b"".join(wire.frame(Opcode.PING, p) for p in payloads))
    for frame, payload in zip(read_frames(conn, 10), payloads):
        assert_pong(frame, payload)
    assert client.types == ["open"]
    client.close_from_server(conn)


@pytest.mark.parametrize("payload", [b"", b"x", b"Hello, ping!" * 10 + b"12345"])
def test_ping_sent_one_byte_at_a_time(open_client, payload):
    conn, client = open_client()
    conn.send_frame(Opcode.PING, payload, chunk_size=1)
    assert_pong(conn.recv_frame(timeout=5), payload)
    assert client.types == ["open"]
    client.close_from_server(conn)


@pytest.mark.parametrize("payload", [b"", b"unsolicited", bytes(range(125))])
def test_unsolicited_pong_is_ignored(open_client, wire, payload):
    conn, client = open_client(echo=True)
    conn.send_raw(wire.frame(Opcode.PONG, payload) + wire.frame(Opcode.TEXT, b"after the pong"))
    frame = conn.recv_frame(timeout=5)  # the echo, with no answer to the pong before it
    assert (frame.opcode, frame.payload) == (Opcode.TEXT, b"after the pong")
    assert client.messages == ["after the pong"]
    assert client.types == ["open", "message"]
    client.close_from_server(conn)


@pytest.mark.parametrize("opcode", [Opcode.PING, Opcode.PONG, Opcode.CLOSE])
def test_control_frame_of_126_bytes_fails_with_1002(open_client, wire, opcode):
    conn, client = open_client()
    payload = b"\x03\xe8" + b"r" * 124 if opcode == Opcode.CLOSE else b"p" * 126
    stream = wire.frame(Opcode.TEXT, "before") + wire.frame(opcode, payload)
    wire.send(conn, stream + wire.frame(Opcode.TEXT, "after"))
    client.expect_failure(conn, 1002, ["before"])
    assert conn.pongs == []
