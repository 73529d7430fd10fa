"""Executors and inbound flow control (the manual's "Executors"): one socket's events run one
at a time and in order whatever runs them, sockets sharing a pool still run in parallel, and a
slow handler makes the reader stop reading so that TCP pushes back and memory stays bounded."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import pytest

from syncws import KeepaliveTimeout, WebSocket
from syncws.executors import InlineExecutor
from syncws.server import ClientClosed, ServerConnection

from helpers import wait_until

OPTS: Dict[str, Any] = dict(compression=False, proxy=None)
TIMEOUT = 10.0
MiB = 1024 * 1024


def read_until_closed(conn: ServerConnection) -> None:
    """Keep reading (answering pings) until the client ends the connection."""
    try:
        while True:
            conn.recv()
    except ClientClosed:
        pass


def burst(count: int, size: int = 0) -> Callable[[ServerConnection], None]:
    """A server handler sending ``count`` messages "<i>" (padded to ``size`` bytes) at once."""

    def handler(conn: ServerConnection) -> None:
        for i in range(count):
            conn.send(str(i).ljust(size, "."))
        read_until_closed(conn)

    return handler


def close_all(sockets: List[WebSocket]) -> None:
    for ws in sockets:
        ws.close()
    for ws in sockets:
        assert ws.wait(TIMEOUT)


def test_shared_pool_keeps_each_socket_serial_and_ordered(ws_server_factory) -> None:
    sockets_n, messages_n = 16, 1000
    server = ws_server_factory(burst(messages_n))
    lock = threading.Lock()
    in_handler = [0] * sockets_n
    received: List[List[str]] = [[] for _ in range(sockets_n)]
    overlaps: List[int] = []
    threads = set()
    active = 0
    peak = 0

    def handler_for(k: int) -> Callable[[Any], None]:
        def onmessage(event: Any) -> None:
            nonlocal active, peak
            with lock:
                if in_handler[k]:
                    overlaps.append(k)
                in_handler[k] += 1
                active += 1
                peak = max(peak, active)
                threads.add(threading.current_thread().name)
            time.sleep(0.0002)  # a little work that lets other threads run
            received[k].append(event.data)
            with lock:
                in_handler[k] -= 1
                active -= 1

        return onmessage

    before = {t.name for t in threading.enumerate()}
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="pool") as pool:
        sockets = [
            WebSocket(server.url, executor=pool, onmessage=handler_for(k), **OPTS) for k in range(sockets_n)
        ]
        try:
            wait_until(lambda: all(len(r) == messages_n for r in received), timeout=30)
            assert not [t.name for t in threading.enumerate() if t.name.startswith("syncws-dispatch-")
                        and t.name not in before]
        finally:
            close_all(sockets)
    assert overlaps == []  # never two handlers of one socket at once
    expected = [str(i) for i in range(messages_n)]
    assert all(r == expected for r in received)  # in order
    assert peak > 1  # but sockets did run in parallel with each other
    assert threads and all(name.startswith("pool") for name in threads)


def test_raising_handler_on_a_pool_is_logged_and_delivery_goes_on(ws_server_factory, caplog) -> None:
    server = ws_server_factory(burst(30))
    received: List[str] = []

    def onmessage(event: Any) -> None:
        received.append(event.data)
        if int(event.data) % 10 == 0:
            raise RuntimeError(f"handler failed on {event.data}")

    with ThreadPoolExecutor(max_workers=4) as pool:
        ws = WebSocket(server.url, executor=pool, onmessage=onmessage, **OPTS)
        try:
            wait_until(lambda: len(received) == 30)
        finally:
            close_all([ws])
    assert received == [str(i) for i in range(30)]
    failures = [r for r in caplog.records if r.name.startswith("syncws") and r.exc_info
                and r.exc_info[0] is RuntimeError]
    assert len(failures) == 3


def test_inline_executor_runs_on_the_reader_thread(ws_server_factory) -> None:
    server = ws_server_factory(burst(20))
    seen: List[tuple] = []

    def log(event: Any) -> None:
        seen.append((event.type, threading.current_thread().name))

    ws = WebSocket(server.url, executor=InlineExecutor(), onopen=log, onmessage=log, onclose=log, **OPTS)
    wait_until(lambda: len(seen) == 21)
    ws.close()
    assert ws.wait(TIMEOUT)
    assert [t for t, _ in seen] == ["open"] + ["message"] * 20 + ["close"]
    assert all(name.startswith("syncws-reader-") for _, name in seen), seen


def test_callable_post_executor(ws_server_factory) -> None:
    server = ws_server_factory(burst(200))
    tasks: "queue.Queue[Optional[Callable[[], None]]]" = queue.Queue()

    def loop() -> None:  # an application's own event loop
        while True:
            task = tasks.get()
            if task is None:
                return
            task()

    loop_thread = threading.Thread(target=loop, name="app-loop")
    loop_thread.start()
    seen: List[tuple] = []

    def log(event: Any) -> None:
        seen.append((event.type, getattr(event, "data", None), threading.current_thread().name))

    try:
        ws = WebSocket(server.url, executor=tasks.put, onopen=log, onmessage=log, onclose=log, **OPTS)
        wait_until(lambda: len(seen) == 201)
        ws.close()
        assert ws.wait(TIMEOUT)
    finally:
        tasks.put(None)
        loop_thread.join(TIMEOUT)
    assert [d for t, d, _ in seen if t == "message"] == [str(i) for i in range(200)]
    assert seen[0][0] == "open" and seen[-1][0] == "close"
    assert all(name == "app-loop" for _, _, name in seen)


def test_slow_handler_pushes_back_on_the_server(ws_server_factory) -> None:
    """With max_queue=4 and a handler that blocks, the reader stops reading: the server's sends
    stall long before it has sent everything (96 MiB is more than the socket buffers, a 256 KiB
    read buffer and 4 queued 1 MiB events can hold), then every message arrives in order."""
    count, size = 96, MiB
    progress = {"sent": 0, "done": False}

    def flood(conn: ServerConnection) -> None:
        payload = bytearray(size)
        for i in range(count):
            payload[:8] = i.to_bytes(8, "big")
            conn.send(payload)
            progress["sent"] = i + 1
        progress["done"] = True
        read_until_closed(conn)

    server = ws_server_factory(flood)
    release = threading.Event()
    received: List[int] = []
    intact: List[bool] = []

    def onmessage(event: Any) -> None:
        if not received:
            release.wait(TIMEOUT)
        data = event.data
        received.append(int.from_bytes(data[:8], "big"))
        intact.append(len(data) == size and not any(data[8:]))

    ws = WebSocket(server.url, executor=None, max_queue=4, binary_type="arraybuffer", onmessage=onmessage, **OPTS)
    try:
        # Wait until the server's progress stops moving (it is blocked in send).
        last, still_since = -1, time.monotonic()
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() - still_since < 0.3:
            assert time.monotonic() < deadline, "the server never stalled"
            if progress["sent"] != last:
                last, still_since = progress["sent"], time.monotonic()
            time.sleep(0.01)
        assert not progress["done"] and progress["sent"] < count, progress
        release.set()
        wait_until(lambda: len(received) == count)
        assert progress["done"]
    finally:
        release.set()
        ws.close()
        assert ws.wait(TIMEOUT)
    assert received == list(range(count)) and all(intact)


def test_keepalive_is_not_fooled_by_a_paused_reader(ws_server_factory) -> None:
    """The reader stops reading while the handler sleeps much longer than ping_timeout: pongs
    wait unread in the socket, and that must not count as a dead peer."""
    server = ws_server_factory(burst(10))
    events: List[Any] = []

    def onmessage(event: Any) -> None:
        if event.data == "0":
            time.sleep(0.6)  # slow work: the queue fills and the reader pauses
        events.append(event)

    ws = WebSocket(
        server.url, max_queue=2, ping_interval=0.05, ping_timeout=0.1,
        onmessage=onmessage, onerror=events.append, **OPTS,
    )
    try:
        wait_until(lambda: len(events) >= 10)
        assert ws.wait(0.3) is False  # still open after the pause
    finally:
        ws.close()
        assert ws.wait(TIMEOUT)
    assert not [e for e in events if e.type == "error"], [getattr(e, "error", None) for e in events]
    assert [e.data for e in events] == [str(i) for i in range(10)]
    assert not any(isinstance(getattr(e, "error", None), KeepaliveTimeout) for e in events)


_FLOOD_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys, threading, time
    from syncws import WebSocket
    from syncws.protocol.frames import Opcode, serialize_frame
    from syncws.server import ClientClosed, WebSocketServer

    SIZE, COUNT, MAX_QUEUE = 64 * 1024, 16 * 1024, 16   # 1 GiB in 64 KiB messages
    frame = b"".join(serialize_frame(Opcode.BINARY, bytes(SIZE), mask=False))
    go = threading.Event()
    page = 4096

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * page

    def flood(conn):
        go.wait(30)
        for _ in range(COUNT):
            conn.send_raw(frame)
        try:
            while True:
                conn.recv()
        except ClientClosed:
            pass

    peak = [0]
    done = threading.Event()
    received = [0]

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.002)

    def onmessage(event):
        if received[0] == 0:
            time.sleep(1.0)   # sleeping at first: the flood must wait in the server
        received[0] += 1
        if received[0] == COUNT:
            event.target.close()

    with WebSocketServer(flood) as server:
        opened = threading.Event()
        ws = WebSocket(server.url, compression=False, proxy=None, max_queue=MAX_QUEUE,
                       binary_type="arraybuffer", onopen=lambda e: opened.set(), onmessage=onmessage)
        assert opened.wait(10)
        time.sleep(0.1)  # let the reader allocate its buffers before the baseline
        base_rss = rss()
        base_maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        sampler = threading.Thread(target=sample)
        sampler.start()
        started = time.monotonic()
        go.set()
        assert ws.wait(60)
        elapsed = time.monotonic() - started
        done.set()
        sampler.join()
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({
        "received": received[0], "count": COUNT, "elapsed": elapsed,
        "peak_growth": peak[0] - base_rss, "maxrss_growth": maxrss - base_maxrss,
        "queue_bytes": MAX_QUEUE * SIZE,
    }))
    """
)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_memory_stays_bounded_under_a_1_gib_flood(tmp_path: Path) -> None:
    """1 GiB in 64 KiB messages at a handler that sleeps for a second, then keeps up.

    Bound asserted: peak RSS growth <= max_queue x 64 KiB (1 MiB) + 8 MiB of margin for the
    reader's 256 KiB buffer, frames being parsed, allocator slack and the sampler itself. Without
    flow control the second of sleep alone would pile up hundreds of MiB of messages.
    The peak is sampled from /proc/self/statm every 2 ms; ru_maxrss's growth is checked too.
    """
    script = tmp_path / "flood.py"
    script.write_text(_FLOOD_SCRIPT)
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=55, env=env, cwd=root
    )
    assert result.returncode == 0, result.stderr[-3000:]
    stats = json.loads(result.stdout.strip().splitlines()[-1])
    assert stats["received"] == stats["count"]
    assert stats["elapsed"] < 30, stats
    bound = stats["queue_bytes"] + 8 * MiB
    assert stats["peak_growth"] <= bound, stats
    assert stats["maxrss_growth"] <= bound, stats
