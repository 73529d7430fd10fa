"""The read loop's receive buffer: it grows while a burst fills every read, and an idle
connection goes back to holding little memory once the burst is over."""

from __future__ import annotations

import tracemalloc
from typing import List

import pytest

from syncws.engine import reader
from syncws.server import ServerConnection

from helpers import TIMEOUT, record, types, wait_until

BURST = 4000  # messages of 100 bytes, 408 KB on the wire: more than the largest buffer
PAYLOAD = b"b" * 100


def burst_then_one_more(conn: ServerConnection) -> None:
    # One write of many small frames, so the client's reads find their buffer full.
    conn.send_raw((b"\x82\x64" + PAYLOAD) * BURST)
    assert conn.recv() == "got them"
    conn.send("last")
    conn.expect_close()


def memory_of_reader_module() -> int:
    """Bytes allocated by syncws.engine.reader and still alive (its receive buffers)."""
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(True, reader.__file__)]
    )
    return sum(stat.size for stat in snapshot.statistics("filename"))


def test_the_receive_buffer_grows_in_a_burst_and_shrinks_after_it(
    ws_server_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: List[int] = []
    fit = reader.ReadLoop._fit_buffer

    def recording_fit(loop: reader.ReadLoop, received: int) -> None:
        fit(loop, received)
        sizes.append(len(loop._view))

    monkeypatch.setattr(reader.ReadLoop, "_fit_buffer", recording_fit)
    server = ws_server_factory(burst_then_one_more)
    tracemalloc.start()
    try:
        ws, events = record(server.url, binary_type="arraybuffer")
        wait_until(lambda: types(events).count("message") == BURST)
        assert all(e.data == PAYLOAD for kind, e in events if kind == "message")
        assert max(sizes) > reader._RECV_BUFFER_MIN  # reads that filled it made it grow
        ws.send("got them")
        wait_until(lambda: types(events).count("message") == BURST + 1)
        # The burst is over: the next read (the last message) gave the big buffer back.
        assert sizes[-1] == reader._RECV_BUFFER_MIN
        assert memory_of_reader_module() < reader._RECV_BUFFER_MIN + 4096
    finally:
        tracemalloc.stop()
    ws.close()
    assert ws.wait(TIMEOUT)
