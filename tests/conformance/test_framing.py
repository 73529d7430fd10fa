"""Framing (CONFORMANCE.md groups 1, 9 and 10, and "Masking"): message sizes across the 7-,
16- and 64-bit length forms, large messages in one or many frames, long runs of messages, a
64 KiB message in frames of 1..N bytes; the client echoes everything and the server checks the
echo. Every client frame is masked with a fresh key; a masked server frame is an error."""

from __future__ import annotations

import random
import select
import threading
import time
from typing import List, Tuple, Union

import pytest

from syncws.protocol.frames import Opcode

MiB = 1024 * 1024
SIZES = [0, 125, 126, 127, 128, 65535, 65536]


def payload(kind: str, size: int, sized_text, seed: int = 0) -> Union[str, bytes]:
    if kind == "text":
        return sized_text(size)
    return random.Random(size + seed).randbytes(size)


def wire_bytes(data: Union[str, bytes]) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else data


def opcode(data: Union[str, bytes]) -> Opcode:
    return Opcode.TEXT if isinstance(data, str) else Opcode.BINARY


def expect_echo(conn, data: Union[str, bytes], timeout: float = 10.0) -> None:
    """The client's next frame is ``data`` echoed whole, with its type, in one final frame."""
    frame = conn.recv_frame(timeout)
    assert (frame.opcode, frame.fin, frame.rsv1, frame.rsv2, frame.rsv3) == (
        opcode(data), True, False, False, False
    )
    assert len(frame.payload) == len(wire_bytes(data))
    assert frame.payload == wire_bytes(data)


def timed(label: str, started: float, limit: float) -> None:
    elapsed = time.monotonic() - started
    print(f"{label}: {elapsed:.3f} s")
    assert elapsed < limit, f"{label} took {elapsed:.1f} s (limit {limit} s)"


# -- group 1 --------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [None, 1], ids=["whole", "1-byte-chunks"])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", ["text", "binary"])
def test_message_of_size_delivered_and_echoed(open_client, sized_text, kind, size, chunk_size):
    conn, client = open_client(echo=True)
    data = payload(kind, size, sized_text)
    conn.send(data, chunk_size=chunk_size)
    (received,) = client.wait_messages(1)
    assert type(received) is type(data)
    assert received == data
    expect_echo(conn, data)
    assert client.types == ["open", "message"]
    client.close_from_server(conn)


@pytest.mark.parametrize("kind", ["text", "binary"])
def test_16_mib_message_in_one_frame(open_client, sized_text, kind):
    conn, client = open_client(echo=True)
    data = payload(kind, 16 * MiB, sized_text)
    started = time.monotonic()
    conn.send(data)
    expect_echo(conn, data, timeout=20)
    timed(f"16 MiB {kind} round trip", started, 10)
    assert client.messages == [data]
    client.close_from_server(conn)


def test_several_sizes_back_to_back_on_one_connection(open_client, wire, sized_text):
    """Every length form in a row: a parser that mis-consumes a header desynchronizes here."""
    conn, client = open_client(echo=True)
    datas = [payload(kind, size, sized_text) for size in SIZES for kind in ("text", "binary")]
    conn.send_raw(b"".join(wire.frame(opcode(d), d) for d in datas), chunk_size=7)
    for data in datas:
        expect_echo(conn, data)
    assert client.wait_messages(len(datas)) == datas
    client.close_from_server(conn)


def test_64_bit_length_with_the_top_bit_set_fails_with_1002(open_client, wire):
    conn, client = open_client()
    bad = b"\x82\x7f" + (1 << 63 | 5).to_bytes(8, "big") + b"hello"
    wire.send(conn, wire.frame(Opcode.TEXT, "before") + bad)
    client.expect_failure(conn, 1002, ["before"])


# -- group 9 --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size, frame_size",
    [
        (1 * MiB, 64),
        (1 * MiB, 256),
        (1 * MiB, 1024),
        (16 * MiB, 4096),
        (16 * MiB, 64 * 1024),
        (16 * MiB, 1 * MiB),
        (16 * MiB, 4 * MiB),
    ],
    ids=lambda v: f"{v // MiB}MiB" if v >= MiB else f"{v}B",
)
@pytest.mark.parametrize("kind", ["text", "binary"])
def test_large_message_in_many_frames(open_client, sized_text, kind, size, frame_size):
    conn, client = open_client(echo=True)
    data = payload(kind, size, sized_text)
    started = time.monotonic()
    conn.send(data, fragment_size=frame_size)
    expect_echo(conn, data, timeout=20)
    timed(f"{size // MiB} MiB {kind} in {frame_size}-byte frames", started, 10)
    assert client.messages == [data]
    client.close_from_server(conn)


def _mixed_messages(count: int) -> List[Union[str, bytes]]:
    rng = random.Random(9)
    sizes = [64 << (i % 11) for i in range(count)]  # 64 B .. 64 KiB
    return [
        rng.randbytes(size) if i % 2 else "ü" * (size // 2)
        for i, size in enumerate(sizes)
    ]


def test_1000_messages_in_a_row(open_client):
    conn, client = open_client(echo=True)
    messages = _mixed_messages(1000)
    started = time.monotonic()
    sender = threading.Thread(target=lambda: [conn.send(m) for m in messages])
    sender.start()
    try:
        echoed = [conn.recv(timeout=10) for _ in messages]
    finally:
        sender.join()
    timed("1000 messages of 64 B..64 KiB streamed", started, 15)
    assert echoed == messages
    assert client.messages == messages
    client.close_from_server(conn)


def test_1000_round_trips(open_client):
    conn, client = open_client(echo=True)
    messages = _mixed_messages(1000)
    started = time.monotonic()
    for message in messages:
        conn.send(message)
        assert conn.recv(timeout=5) == message
    timed("1000 round trips of 64 B..64 KiB", started, 15)
    assert client.messages == messages
    client.close_from_server(conn)


# -- group 10 -------------------------------------------------------------------------------


@pytest.mark.parametrize("frame_size", [1, 2, 3, 7, 125, 126, 1000, 65535, 65536])
@pytest.mark.parametrize("kind", ["text", "binary"])
def test_64_kib_message_in_frames_of_n_bytes(open_client, sized_text, kind, frame_size):
    conn, client = open_client(echo=True)
    data = payload(kind, 65536, sized_text, seed=frame_size)
    started = time.monotonic()
    conn.send(data, fragment_size=frame_size)
    expect_echo(conn, data)
    timed(f"64 KiB {kind} in {frame_size}-byte frames", started, 10)
    assert client.messages == [data]
    client.close_from_server(conn)


# -- masking --------------------------------------------------------------------------------


def read_raw_frames(conn, count: int) -> List[Tuple[int, bool, bytes, bytes]]:
    """``count`` frames read straight from the socket: (opcode, mask bit, key, unmasked
    payload), parsed here rather than by the server's parser so the keys can be seen."""
    buffer = b""
    frames = []
    while len(frames) < count:
        if len(buffer) >= 2:
            length = buffer[1] & 0x7F
            offset = 2 + {126: 2, 127: 8}.get(length, 0)
            if len(buffer) >= offset:
                if length >= 126:
                    length = int.from_bytes(buffer[2:offset], "big")
                masked = bool(buffer[1] & 0x80)
                key = buffer[offset : offset + 4] if masked else b"\0\0\0\0"
                end = offset + (4 if masked else 0) + length
                if len(buffer) >= end:
                    body = buffer[end - length : end]
                    payload = bytes(b ^ key[i % 4] for i, b in enumerate(body))
                    frames.append((buffer[0] & 0x0F, masked, key, payload))
                    buffer = buffer[end:]
                    continue
        assert select.select([conn.sock], [], [], 5)[0], "no frame from the client in time"
        data = conn.sock.recv(65536)
        assert data, "the client closed TCP"
        buffer += data
    assert buffer == b""
    return frames


def test_every_client_frame_is_masked_with_a_fresh_key(open_client, wire):
    conn, client = open_client(echo=True)
    messages = ["same", b"same", "", b"", "κόσμε" * 30, bytes(300)] * 4
    # The pings go first: the client answers a ping as it reads it, so once the last
    # message has been delivered every pong is queued ahead of the Close below.
    conn.send_raw(b"".join(wire.frame(Opcode.PING, f"ping {i}") for i in range(5)))
    conn.send_raw(b"".join(wire.frame(opcode(m), m) for m in messages))
    client.wait_messages(len(messages))
    client.ws.close(1000, "bye")
    frames = read_raw_frames(conn, len(messages) + 6)
    assert all(masked for _, masked, _, _ in frames)
    keys = [key for _, _, key, _ in frames]
    assert len(set(keys)) == len(keys), "a mask key was reused"
    assert [(op, payload) for op, _, _, payload in frames if op != Opcode.PONG] == [
        (opcode(m), wire_bytes(m)) for m in messages
    ] + [(Opcode.CLOSE, b"\x03\xe8bye")]
    pongs = [payload for op, _, _, payload in frames if op == Opcode.PONG]
    assert pongs == [f"ping {i}".encode() for i in range(5)]
    conn.close(1000)
    conn.release()
    client.assert_clean_close(1000)


@pytest.mark.parametrize(
    "opcode_, payload",
    [(Opcode.TEXT, b"masked"), (Opcode.BINARY, b""), (Opcode.PING, b"masked"),
     (Opcode.CLOSE, b"\x03\xe8")],
    ids=["text", "empty-binary", "ping", "close"],
)
def test_masked_server_frame_fails_with_1002(open_client, wire, opcode_, payload):
    conn, client = open_client()
    conn.send("before")
    client.wait_messages(1)
    conn.send_frame(opcode_, payload, mask=True)
    client.expect_failure(conn, 1002, ["before"])
    assert conn.pongs == []
