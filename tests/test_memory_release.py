"""What the chaos soak (bench/soak.py) found about memory: a closed connection must let go.

Over 10 minutes of reconnects (1,700 connections), the soak's resident memory grew from 160 to
765 MiB while only 100 connections were open at any time, and fell back to 165 MiB on
``gc.collect()``: every closed ``WebSocket`` waited for the cyclic garbage collector, with its
engine, zlib streams and receive buffer, whose native memory the collector does not see (so it
does not hurry). The cycle was ``WebSocket._close_info`` -> ``CloseEvent.target`` -> the socket;
the core rework ("One socket state") no longer keeps it. This test keeps it that way.
"""

from __future__ import annotations

import gc
import threading
import time
import weakref

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
