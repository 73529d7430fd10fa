"""Byte streams (syncws.streams): TCP and TLS over MemoryBIO, read and written by two threads
at once, with timeouts and shutdown, over real sockets and real certificates."""

from __future__ import annotations

import select
import socket
import ssl
import threading
import time
from typing import Iterator, Tuple

import pytest

from syncws.streams import SocketStream, Stream, TLSStream

trustme = pytest.importorskip("trustme")
TIMEOUT = 5.0


@pytest.fixture
def pair() -> Iterator[Tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


@pytest.fixture(scope="module")
def contexts() -> Tuple[ssl.SSLContext, ssl.SSLContext]:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


def tls_pair(
    pair: Tuple[socket.socket, socket.socket], contexts: Tuple[ssl.SSLContext, ssl.SSLContext]
) -> Tuple[TLSStream, ssl.SSLSocket]:
    client_sock, server_sock = pair
    server_ctx, client_ctx = contexts
    accepted = []
    thread = threading.Thread(
        target=lambda: accepted.append(server_ctx.wrap_socket(server_sock, server_side=True))
    )
    thread.start()
    stream = TLSStream(SocketStream(client_sock), client_ctx, server_hostname="localhost")
    stream.handshake(None)
    thread.join(TIMEOUT)
    return stream, accepted[0]


def recv_exactly(stream: Stream, size: int) -> bytes:
    buf = bytearray(size)
    view = memoryview(buf)
    got = 0
    while got < size:
        n = stream.recv_into(view[got:], TIMEOUT)
        assert n, "stream ended early"
        got += n
    return bytes(buf)


def test_socket_stream_reads_writes_and_times_out(pair) -> None:
    client, peer = pair
    stream = SocketStream(client)
    stream.send_buffers([b"ab", b"", memoryview(b"cd")])
    assert peer.recv(10) == b"abcd"
    view = memoryview(bytearray(8))
    assert stream.recv_into(view, 0.05) is None  # nothing came: the timeout, not an error
    peer.sendall(b"xyz")
    assert stream.recv_into(view, TIMEOUT) == 3 and bytes(view[:3]) == b"xyz"
    peer.shutdown(socket.SHUT_WR)
    assert stream.recv_into(view, TIMEOUT) == 0  # end of stream


@pytest.mark.parametrize(
    "sizes",
    [
        [70] * 5000,  # a burst of small frames: written as one joined buffer
        [3000] * 3000,  # 9 MB in more buffers than one sendmsg takes (IOV_MAX)
        [14, 1 << 20, 6, 200, 14, 3 << 20, 2, 9000] * 3,  # large and small mixed
    ],
    ids=["small", "over-iov-max", "mixed"],
)
def test_socket_stream_writes_every_buffer_in_order(pair, sizes) -> None:
    client, peer = pair
    stream = SocketStream(client)
    buffers = [bytes([i % 251]) * size for i, size in enumerate(sizes)]
    buffers[1] = memoryview(bytearray(buffers[1]))  # any bytes-like object
    expected = b"".join(buffers)
    received = bytearray()

    def read_all() -> None:
        while len(received) < len(expected):
            data = peer.recv(1 << 16)
            if not data:
                return
            received.extend(data)

    reader = threading.Thread(target=read_all)
    reader.start()
    stream.send_buffers(buffers)
    reader.join(TIMEOUT)
    assert len(received) == len(expected) and received == expected


def test_shutdown_wakes_a_blocked_reader(pair) -> None:
    client, _peer = pair
    stream = SocketStream(client)
    results = []
    reader = threading.Thread(target=lambda: results.append(stream.recv_into(memoryview(bytearray(8)))))
    reader.start()
    stream.shutdown()
    stream.shutdown()  # idempotent
    reader.join(TIMEOUT)
    assert results == [0]


def test_tls_stream_carries_bytes_both_ways(pair, contexts) -> None:
    stream, server = tls_pair(pair, contexts)
    stream.send_buffers([b"hello ", b"world"])
    server.settimeout(TIMEOUT)
    assert server.recv(100) == b"hello world"
    server.sendall(b"x" * 100_000)
    assert recv_exactly(stream, 100_000) == b"x" * 100_000
    assert stream.recv_into(memoryview(bytearray(8)), 0.05) is None


def _serve_both_ways(server: ssl.SSLSocket, size: int, got: list) -> None:
    """The peer, on one thread (an SSLSocket must not be used by two): read ``size`` bytes
    while writing ``size`` bytes, whichever the socket allows."""
    server.setblocking(False)
    out = memoryview(b"r" * size)
    received = 0
    deadline = time.monotonic() + 4 * TIMEOUT
    while received < size or out:
        assert time.monotonic() < deadline, "the peer made no progress"
        select.select([server], [server] if out else [], [], 0.1)
        try:
            received += len(server.recv(1 << 20))
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
        if out:
            try:
                out = out[server.send(out[: 1 << 16]) :]
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                pass
    got.append(received)


def test_tls_stream_is_read_and_written_by_two_threads_at_once(pair, contexts) -> None:
    stream, server = tls_pair(pair, contexts)
    size = 8 * 1024 * 1024
    server_got: list = []
    peer = threading.Thread(target=_serve_both_ways, args=(server, size, server_got))
    peer.start()
    writer = threading.Thread(target=lambda: stream.send_buffers([b"w" * size]))
    writer.start()
    assert recv_exactly(stream, size) == b"r" * size  # this thread reads meanwhile
    writer.join(TIMEOUT)
    peer.join(4 * TIMEOUT)
    assert server_got == [size]
    server.setblocking(True)


def test_tls_end_of_stream_reads_as_zero(pair, contexts) -> None:
    stream, server = tls_pair(pair, contexts)
    server.settimeout(1.0)
    closer = threading.Thread(target=lambda: pytest.raises(Exception, server.unwrap))
    closer.start()  # sends close_notify, then waits (in vain) for ours
    assert stream.recv_into(memoryview(bytearray(8)), TIMEOUT) == 0
    closer.join(TIMEOUT)
