"""The send side (syncws.engine.writer.Writer) over a real socket pair: direct writes, the
on-demand writer thread, order, partial writes, flush and drain notification."""

from __future__ import annotations

import socket
import threading
import time
from typing import Iterator, List, Tuple

import pytest

from syncws.blob import Blob
from syncws.engine.writer import Writer
from syncws.protocol.connection import ClientConnection
from syncws.protocol.frames import FrameParser
from syncws.streams import SocketStream

TIMEOUT = 5.0


def writer_threads() -> List[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("syncws-writer-test")]


@pytest.fixture
def pair() -> Iterator[Tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def make_writer(sock: socket.socket) -> Tuple[Writer, threading.Condition, List[object]]:
    cond = threading.Condition(threading.Lock())
    events: List[object] = []
    writer = Writer(
        SocketStream(sock),
        ClientConnection(),
        cond,
        name="syncws-writer-test",
        on_failed=events.append,
        on_drained=lambda: events.append("drained"),
    )
    return writer, cond, events


def read_messages(sock: socket.socket, count: int) -> List[bytes]:
    """Read ``count`` masked client frames from the peer side and return their payloads."""
    parser = FrameParser(expect_masked=True)
    frames: List[bytes] = []
    sock.settimeout(TIMEOUT)
    while len(frames) < count:
        frames += [bytes(f.payload) for f in parser.feed(sock.recv(1 << 20))]
    return frames


def send(writer: Writer, cond: threading.Condition, data: bytes) -> None:
    with cond:
        writer.send_message(data, False, len(data))


def test_a_small_message_is_written_on_the_senders_thread(pair) -> None:
    client, peer = pair
    writer, cond, _ = make_writer(client)
    send(writer, cond, b"hello")
    assert writer.unwritten == 0  # written before send_message returned
    assert writer_threads() == []  # no thread was needed
    assert read_messages(peer, 1) == [b"hello"]


def test_a_large_message_is_framed_by_a_writer_thread_that_ends_when_idle(pair) -> None:
    client, peer = pair
    writer, cond, _ = make_writer(client)
    data = bytes(range(256)) * 4096  # 1 MiB: over the direct-write limit
    send(writer, cond, data)
    assert writer_threads() != []  # the writer frames it, not the sender
    got = read_messages(peer, 1)
    assert got == [data]
    deadline = time.monotonic() + TIMEOUT
    while writer_threads():
        assert time.monotonic() < deadline, "an idle writer thread should end"
        time.sleep(0.02)
    assert writer.unwritten == 0


def test_messages_keep_their_order_whatever_path_they_take(pair) -> None:
    client, peer = pair
    writer, cond, _ = make_writer(client)
    sent = [bytes([i]) * (70_000 if i % 5 == 0 else i + 1) for i in range(40)]
    for data in sent:
        send(writer, cond, data)
    assert read_messages(peer, len(sent)) == sent


def test_a_blob_is_read_on_the_writer(pair) -> None:
    client, peer = pair
    writer, cond, _ = make_writer(client)
    blob = Blob([b"x" * 100_000])
    with cond:
        writer.send_message(blob, False, blob.size)
    assert read_messages(peer, 1) == [b"x" * 100_000]


def test_flush_waits_for_a_slow_peer_and_drain_is_reported(pair) -> None:
    client, peer = pair
    client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024)
    writer, cond, events = make_writer(client)
    writer.watch_drain = True
    data = b"y" * (4 * 1024 * 1024)
    send(writer, cond, data)
    assert writer.unwritten == len(data)
    assert writer.flush(time.monotonic() + 0.1, lambda: False, control=False) is False
    reader = threading.Thread(target=lambda: events.append(read_messages(peer, 1)))
    reader.start()
    assert writer.flush(time.monotonic() + TIMEOUT, lambda: False, control=True) is True
    reader.join(TIMEOUT)
    assert writer.unwritten == 0
    deadline = time.monotonic() + TIMEOUT
    while "drained" not in events and time.monotonic() < deadline:
        time.sleep(0.01)  # reported by the writer thread once its last write returned
    # The report and the peer's read come from two threads, in either order.
    assert len(events) == 2 and "drained" in events and [data] in events


def test_a_write_error_is_reported_and_the_thread_ends(pair) -> None:
    client, peer = pair
    writer, cond, events = make_writer(client)
    peer.close()
    for _ in range(3):
        send(writer, cond, b"z" * 100_000)
        time.sleep(0.05)
    deadline = time.monotonic() + TIMEOUT
    while not events or writer_threads():
        assert time.monotonic() < deadline, (events, writer_threads())
        time.sleep(0.01)
    assert isinstance(events[0], OSError)


def test_after_stop_nothing_more_is_written(pair) -> None:
    client, peer = pair
    writer, cond, _ = make_writer(client)
    with cond:
        writer.send_control([b"\x89\x80abcd"])  # a masked empty ping, written directly
    writer.stop(TIMEOUT)
    with cond:
        writer.send_message(b"q" * 100_000, False, 100_000)  # queued, but no thread starts
    assert writer_threads() == []
    peer.settimeout(0.2)
    assert peer.recv(100) == b"\x89\x80abcd"
    with pytest.raises(socket.timeout):
        peer.recv(100)
