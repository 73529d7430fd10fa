"""What the chaos soak (bench/soak.py) found about memory: a closed connection must let go.

Over 10 minutes of reconnects (1,700 connections), the soak's resident memory grew from 160 to
765 MiB while only 100 connections were open at any time, and fell back to 165 MiB on
``gc.collect()``: every closed ``WebSocket`` waited for the cyclic garbage collector, with its
engine, zlib streams and receive buffer, whose native memory the collector does not see (so it
does not hurry). The cycle was ``WebSocket._close_info`` -> ``CloseEvent.target`` -> the socket;
the core rework ("One socket state") no longer keeps it. The first test keeps it that way.

On the reworked core the soak found the next one: after 1 minute, 2 closed sockets (with
engine, buffers and zlib state) survived ``gc.collect()`` for good: those whose connection was
lost while a message was still being written (the second test).

With ``ReconnectingWebSocket`` (reconnect branch, before its merge) every inner socket lived for
ever: an ``_Attempt`` kept its ``inner`` socket and was reachable from that socket's own
collection finalizer (through the engine, sink, dispatcher and its executor ``_Attempt.route``).
The merged class frees them; the third test keeps it that way.

The 30-minute soak then showed the ended connections of a ``ReconnectingWebSocket`` waiting
for the cyclic collector: 576 inner sockets alive after 7 minutes for 100 open, and 770 MiB of
resident memory. Each ended attempt and its inner socket referred to each other (the socket's
forwarding listeners are the attempt's bound method). An attempt now lets its socket go at the
socket's close event; the fourth test checks it with the collector off.
"""

from __future__ import annotations

import gc
import threading
import time
import weakref
from typing import List

import pytest

import syncws
from syncws.protocol.deflate import server_negotiate


@pytest.fixture
def gc_disabled():
    """Only reference counting frees objects during the test (as between two full collections)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def test_closed_socket_is_freed_without_the_cyclic_collector(ws_server_factory, gc_disabled):
    server = ws_server_factory(extensions=[server_negotiate])
    echoed = threading.Event()
    ws = syncws.WebSocket(
        server.url,
        onopen=lambda event: event.target.send("x" * 1000),
        onmessage=lambda event: echoed.set(),
    )
    assert echoed.wait(5)
    ws.close(1000)
    assert ws.wait(5)
    assert ws.extensions.startswith("permessage-deflate")
    socket_ref = weakref.ref(ws)
    del ws

    # The close event was delivered and its handlers returned: nothing can reach the socket
    # any more, so once syncws's threads have let go (they end with the connection), dropping
    # the last reference frees it (and its engine) by reference counting alone.
    deadline = time.monotonic() + 3.0
    while socket_ref() is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert socket_ref() is None


def test_socket_lost_with_unwritten_data_is_freed_after_its_close_event(ws_server_factory):
    from syncws.server import hold

    server = ws_server_factory(hold)  # never reads: what the client sends stays queued
    closed = threading.Event()
    ws = syncws.WebSocket(server.url, compression=False, onclose=lambda event: closed.set())
    conn = server.accepted()
    deadline = time.monotonic() + 5.0
    while ws.ready_state != syncws.OPEN and time.monotonic() < deadline:
        time.sleep(0.01)
    ws.send(b"x" * (32 * 1024 * 1024))  # more than the socket buffers take
    conn.abort()  # the connection is reset while most of it is unwritten
    assert ws.wait(5) and closed.is_set()
    assert ws.buffered_amount > 0  # those bytes will never be written
    socket_ref = weakref.ref(ws)
    del ws

    # After its close event, nothing can be heard from the socket and nothing it holds can be
    # written any more: once the caller lets go, it must be freed.
    deadline = time.monotonic() + 3.0
    while socket_ref() is not None and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.05)
    assert socket_ref() is None


def test_reconnecting_socket_frees_its_connections_after_the_final_close(ws_server):
    if not hasattr(syncws, "ReconnectingWebSocket"):
        pytest.skip("syncws has no ReconnectingWebSocket yet")
    earlier = weakref.WeakSet(o for o in gc.get_objects() if type(o) is syncws.WebSocket)
    echoed = threading.Event()
    rws = syncws.ReconnectingWebSocket(
        ws_server.url,
        onopen=lambda event: event.target.send("hi"),
        onmessage=lambda event: echoed.set(),
    )
    assert echoed.wait(5)
    rws.close(1000)
    assert rws.wait(5)
    del rws

    # The final close event was delivered: neither the socket nor any of its connections can
    # be heard from any more, so nothing of theirs may stay alive.
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        gc.collect()
        alive = [o for o in gc.get_objects() if type(o) is syncws.WebSocket and o not in earlier]
        if not alive:
            break
        time.sleep(0.05)
    assert alive == []


def test_reconnecting_socket_frees_each_ended_connection_without_the_cyclic_collector(
    ws_server_factory, gc_disabled
):
    def serve_briefly(conn) -> None:
        conn.send("hi")
        conn.close(1012)  # "service restart": the socket reconnects at once

    server = ws_server_factory(serve_briefly)
    opened: List[int] = []
    earlier = weakref.WeakSet(o for o in gc.get_objects() if type(o) is syncws.WebSocket)
    rws = syncws.ReconnectingWebSocket(
        server.url,
        onopen=lambda event: opened.append(1),
        onmessage=lambda event: None,
        backoff=syncws.Backoff(initial=0.01, max_delay=0.02, jitter=False),
        proxy=None,
    )
    try:
        deadline = time.monotonic() + 10.0
        while len(opened) < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(opened) >= 20
        alive = [o for o in gc.get_objects() if type(o) is syncws.WebSocket and o not in earlier]
        # The current connection, and perhaps the one that just ended: not 20.
        assert len(alive) <= 2
    finally:
        rws.close()
        assert rws.wait(5)
