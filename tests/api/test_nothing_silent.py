"""Nothing fails silently: the standard's lifetime rules, what a script sees when a connection
dies, ``send()`` after close, and the caller's thread never doing a large message's work
(shared/API.md: "Lifetime", "Methods -> send()", "Blocking use for scripts")."""

from __future__ import annotations

import gc
import logging
import os
import random
import threading
import time
import traceback
import weakref
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest

import syncws
from syncws import ConnectionClosed, KeepaliveTimeout, ReadyState, WebSocket
from syncws.protocol.connection import ClientConnection
from syncws.protocol.deflate import server_negotiate
from syncws.protocol.frames import Opcode
from syncws.server import ClientClosed, CloseInfo, ServerConnection

from helpers import OPTS, TIMEOUT, client_close_of, wait_no_syncws_threads

Events = List[Tuple[str, Any]]


def recorder(events: Events, done: threading.Event) -> Dict[str, Callable[[Any], None]]:
    """``on…`` handlers that append ``(type, detail)`` to ``events``; ``done`` is set on close."""

    def on_close(event: Any) -> None:
        events.append(("close", (event.code, event.reason, event.was_clean)))
        done.set()

    return dict(
        onopen=lambda e: events.append(("open", None)),
        onmessage=lambda e: events.append(("message", e.data)),
        onerror=lambda e: events.append(("error", e.error)),
        onclose=on_close,
    )


def collect_until(done: threading.Event, timeout: float = TIMEOUT) -> bool:
    """Run the garbage collector over and over while waiting: a socket nobody references must
    still deliver its events when it has listeners."""
    deadline = time.monotonic() + timeout
    while not done.wait(0.01):
        gc.collect()
        if time.monotonic() > deadline:
            return False
    return True


def wait_state(ws: WebSocket, state: ReadyState) -> None:
    deadline = time.monotonic() + TIMEOUT
    while ws.ready_state is not state:
        assert time.monotonic() < deadline, f"still {ws.ready_state.name}"
        time.sleep(0.005)


# -- lifetime -----------------------------------------------------------------------------


def test_an_unreferenced_socket_with_handlers_delivers_every_event(ws_server) -> None:
    events: Events = []
    done = threading.Event()
    handlers = recorder(events, done)
    on_message = handlers["onmessage"]

    def reply_then_close(event: Any) -> None:
        on_message(event)
        event.target.close(1000)

    handlers["onmessage"] = reply_then_close
    handlers["onopen"] = lambda e: (events.append(("open", None)), e.target.send("hello"))
    syncws.WebSocket(ws_server.url, **handlers, **OPTS)  # no reference kept, as in a page
    assert collect_until(done)
    assert events == [("open", None), ("message", "hello"), ("close", (1000, "", True))]


@pytest.mark.parametrize("style", ["add_event_listener", "handler attributes"])
def test_listeners_added_after_construction_keep_the_socket_alive(ws_server, style) -> None:
    events: Events = []
    done = threading.Event()
    handlers = recorder(events, done)
    handlers["onopen"] = lambda e: (events.append(("open", None)), e.target.send(b"\x01\x02"))
    handlers["onmessage"] = lambda e: (events.append(("message", e.data)), e.target.close())
    ws = WebSocket(ws_server.url, connect=False, binary_type="arraybuffer", **OPTS)
    for name, handler in handlers.items():
        if style == "add_event_listener":
            ws.add_event_listener(name[2:], handler)
        else:
            setattr(ws, name, handler)
    ws.connect()
    del ws
    assert collect_until(done)
    assert events == [("open", None), ("message", b"\x01\x02"), ("close", (1005, "", True))]


def test_a_closing_socket_with_a_close_listener_lives_until_its_close_event(ws_server_factory) -> None:
    def slow_close_reply(conn: ServerConnection) -> None:
        close = conn.expect_close(reply=False)
        conn.sleep(0.3)  # the socket stays CLOSING meanwhile, unreferenced
        conn.close(close.code, close.reason)

    server = ws_server_factory(slow_close_reply)
    closed = threading.Event()
    seen: List[Any] = []
    ws = WebSocket(server.url, **OPTS)
    wait_state(ws, ReadyState.OPEN)
    ws.add_event_listener("close", lambda e: (seen.append((e.code, e.was_clean)), closed.set()))
    ws.close(3000)
    del ws
    assert collect_until(closed)
    assert seen == [(3000, True)]


def test_an_open_socket_with_only_an_open_handler_is_collected_with_an_empty_close(
    ws_server_factory,
) -> None:
    closes: List[Optional[CloseInfo]] = []
    server = ws_server_factory(lambda conn: closes.append(client_close_of(conn)))
    opened = threading.Event()
    ws = WebSocket(server.url, onopen=lambda e: opened.set(), **OPTS)
    assert opened.wait(TIMEOUT)
    ref = weakref.ref(ws)
    del ws
    gc.collect()
    assert ref() is None  # nothing can hear from it any more: collected
    assert server.accepted().join(TIMEOUT)
    assert closes == [CloseInfo(None, "")]


def test_a_socket_collected_on_its_own_reader_thread_still_closes(
    ws_server_factory, monkeypatch
) -> None:
    """The collector runs at any allocation, on any thread: also on the socket's own reader
    while it holds the connection's lock to parse a frame. A socket in a reference cycle (a
    handler that refers back to it, the usual case) is collected there when the collection
    happens to start on that thread. It must still send its empty Close, and its threads end.
    The collection is made to start exactly there, by a collecting ``receive_data``."""
    closes: List[Optional[CloseInfo]] = []
    go_on = threading.Event()

    def send_after_drop(conn: ServerConnection) -> None:
        go_on.wait(TIMEOUT)
        conn.send("collect me now")
        closes.append(client_close_of(conn))

    armed = threading.Event()
    collected_on: List[str] = []
    receive_data = ClientConnection.receive_data

    def collecting_receive_data(self: ClientConnection, data: Any) -> Any:
        if armed.is_set():
            armed.clear()
            collected_on.append(threading.current_thread().name)
            gc.collect()  # as if this allocation had started a collection
        return receive_data(self, data)

    monkeypatch.setattr(ClientConnection, "receive_data", collecting_receive_data)
    server = ws_server_factory(send_after_drop)
    opened = threading.Event()

    class App:
        def __init__(self) -> None:
            self.ws = WebSocket(server.url, onopen=self.on_open, **OPTS)

        def on_open(self, event: Any) -> None:
            opened.set()

    app = App()
    assert opened.wait(TIMEOUT)
    ref = weakref.ref(app.ws)
    gc.disable()  # from here, only the reader collects
    try:
        del app  # only the cycle app -> socket -> handler (a bound method) -> app is left
        assert ref() is not None
        armed.set()
        go_on.set()
        assert server.accepted().join(TIMEOUT)
    finally:
        gc.enable()
    assert collected_on and collected_on[0].startswith(("syncws-reader-", "syncws-dispatch-"))
    assert ref() is None
    assert closes == [CloseInfo(None, "")]
    assert wait_no_syncws_threads() == []


def test_removing_the_last_listener_lets_an_open_socket_go(ws_server_factory) -> None:
    closes: List[Optional[CloseInfo]] = []
    server = ws_server_factory(lambda conn: closes.append(client_close_of(conn)))
    ws = WebSocket(server.url, **OPTS)
    listener = lambda e: None  # noqa: E731
    ws.add_event_listener("message", listener)
    wait_state(ws, ReadyState.OPEN)
    ref = weakref.ref(ws)
    del ws
    gc.collect()
    sock = ref()
    assert sock is not None  # a message listener: kept alive while OPEN
    sock.remove_event_listener("message", listener)
    del sock
    gc.collect()
    assert ref() is None
    assert server.accepted().join(TIMEOUT)
    assert closes == [CloseInfo(None, "")]


def test_data_still_queued_keeps_an_unreferenced_socket_until_written(ws_server_factory) -> None:
    received: List[Any] = []

    def slow_reader(conn: ServerConnection) -> None:
        conn.sleep(0.3)  # the client's 8 MiB wait in its queue meanwhile
        received.append(conn.recv())
        received.append(client_close_of(conn))

    server = ws_server_factory(slow_reader)
    payload = os.urandom(8 * 1024 * 1024)
    ws = syncws.connect(server.url, **OPTS)
    ws.send(payload)
    ref = weakref.ref(ws)
    del ws
    gc.collect()
    assert server.accepted().join(TIMEOUT)
    assert len(received) == 2 and received[0] == payload  # every byte, then the empty Close
    assert received[1] == CloseInfo(None, "")
    gc.collect()
    assert ref() is None


def test_a_closed_socket_is_not_kept_alive(ws_server) -> None:
    events: Events = []
    done = threading.Event()
    ws = WebSocket(ws_server.url, **recorder(events, done), **OPTS)
    wait_state(ws, ReadyState.OPEN)
    ws.close()
    assert ws.wait(TIMEOUT)
    ref = weakref.ref(ws)
    del ws
    gc.collect()
    assert ref() is None


# -- iteration and recv() on a lost connection ----------------------------------------------


def _abort(conn: ServerConnection) -> None:
    conn.send("last")
    conn.sleep(0.1)
    conn.abort()


def _eof(conn: ServerConnection) -> None:
    conn.send("last")
    conn.sleep(0.1)
    conn.shutdown_write()
    conn.wait_eof()


def _close_with(code: Optional[int]) -> Callable[[ServerConnection], None]:
    def script(conn: ServerConnection) -> None:
        conn.send("last")
        conn.close(code, "" if code is None else "why")
        conn.expect_close(reply=False)

    return script


@pytest.mark.parametrize(
    "script, code",
    [
        (_abort, 1006),
        (_eof, 1006),
        (_close_with(1011), 1011),
        (_close_with(4001), 4001),
        (_close_with(1008), 1008),
    ],
    ids=["reset", "eof-without-close", "1011", "4001", "1008"],
)
def test_iteration_raises_when_the_connection_is_lost_or_fails(ws_server_factory, script, code) -> None:
    server = ws_server_factory(script)
    ws = syncws.connect(server.url, **OPTS)
    seen: List[Any] = []
    with pytest.raises(ConnectionClosed) as info:
        for data in ws:
            seen.append(data)
    assert seen == ["last"]
    assert info.value.code == code
    assert ws.wait(TIMEOUT)


@pytest.mark.parametrize("code", [1000, 1001, None])
def test_iteration_ends_quietly_on_a_clean_normal_close(ws_server_factory, code) -> None:
    server = ws_server_factory(_close_with(code))
    ws = syncws.connect(server.url, **OPTS)
    assert list(ws) == ["last"]
    assert ws.wait(TIMEOUT)


def test_iteration_ends_quietly_when_this_side_closes(ws_server) -> None:
    ws = syncws.connect(ws_server.url, **OPTS)
    ws.send("one")
    seen = []
    for data in ws:
        seen.append(data)
        ws.close(4000)  # this side ends the stream: not an error, whatever code it chose
    assert seen == ["one"]


def test_iteration_raises_on_a_keepalive_timeout(ws_server_factory) -> None:
    def deaf(conn: ServerConnection) -> None:
        conn.sleep(3.0)  # reads nothing, so never answers the keepalive ping

    server = ws_server_factory(deaf)
    ws = syncws.connect(server.url, ping_interval=0.1, ping_timeout=0.2, **OPTS)
    with pytest.raises(ConnectionClosed) as info:
        for _ in ws:
            pass
    assert info.value.code == 1006 and not info.value.was_clean
    assert isinstance(info.value.__cause__, KeepaliveTimeout)
    server.accepted().abort()


def test_recv_after_close_raises_a_fresh_exception_each_time(ws_server) -> None:
    ws = syncws.connect(ws_server.url, **OPTS)
    ws.close()
    assert ws.wait(TIMEOUT)
    raised = []
    for _ in range(200):
        try:
            ws.recv(timeout=TIMEOUT)
        except ConnectionClosed as exc:
            raised.append(exc)
    assert len(raised) == 200
    assert len({id(exc) for exc in raised}) == 200
    depths = {len(traceback.extract_tb(exc.__traceback__)) for exc in raised}
    assert len(depths) == 1  # the traceback does not grow from call to call
    assert {(exc.code, exc.was_clean) for exc in raised} == {(1005, True)}


# -- send() after close ---------------------------------------------------------------------


def test_send_after_close_sends_nothing_grows_buffered_amount_and_warns_once(
    ws_server_factory, caplog
) -> None:
    frames: List[Any] = []

    def record_all(conn: ServerConnection) -> None:
        while True:
            frames.append(conn.recv_frame(timeout=TIMEOUT))
            if frames[-1].opcode == Opcode.CLOSE:
                conn.close()
                return

    server = ws_server_factory(record_all)
    ws = WebSocket(server.url, **OPTS)
    wait_state(ws, ReadyState.OPEN)
    ws.close()
    with caplog.at_level(logging.WARNING, logger="syncws"):
        ws.send("å")  # 2 bytes of UTF-8
        ws.send(b"xyz")
    assert ws.buffered_amount == 5
    warnings = [r for r in caplog.records if "CLOSING or CLOSED" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert ws.wait(TIMEOUT)
    assert ws.buffered_amount == 5  # keeps growing after the connection closed
    assert server.accepted().join(TIMEOUT)
    assert [f.opcode for f in frames] == [Opcode.CLOSE]


def test_close_before_connect_then_send_does_nothing(caplog) -> None:
    ws = WebSocket("ws://127.0.0.1:9/", connect=False, **OPTS)
    ws.close()
    with caplog.at_level(logging.WARNING, logger="syncws"):
        ws.send("x")  # was an AssertionError
    # The close event (1006) is on its way, on another thread: it may have come already.
    assert ws.ready_state in (ReadyState.CLOSING, ReadyState.CLOSED)
    assert ws.buffered_amount == 1
    assert any("CLOSING or CLOSED" in r.getMessage() for r in caplog.records)
    assert ws.wait(TIMEOUT)


# -- the caller's thread does no work proportional to the message ------------------------------


@pytest.mark.parametrize("compression", [True, False])
def test_sending_16_mib_returns_at_once_on_the_callers_thread(ws_server_factory, compression) -> None:
    server = ws_server_factory(extensions=[server_negotiate])
    payload = os.urandom(16 * 1024 * 1024)
    ws = syncws.connect(server.url, proxy=None, compression=compression)
    assert ws.extensions.startswith("permessage-deflate") is compression
    try:
        started = time.perf_counter()
        ws.send(payload)
        elapsed = time.perf_counter() - started
        assert ws.buffered_amount == len(payload)
        assert elapsed < 0.020, f"send() took {elapsed * 1000:.1f} ms on the caller's thread"
        assert ws.recv(timeout=30) == payload  # framed on the writer, intact, in order
    finally:
        ws.close()
        assert ws.wait(TIMEOUT)


def test_large_and_small_sends_keep_their_order(ws_server_factory) -> None:
    server = ws_server_factory(extensions=[server_negotiate])
    ws = syncws.connect(server.url, proxy=None)  # compression on: one shared context
    assert ws.extensions.startswith("permessage-deflate")
    try:
        sent: List[bytes] = []
        for i in range(60):
            size = 300_000 if i % 7 == 0 else i
            data = bytes([i]) * size
            sent.append(data)
            ws.send(data)
        received = [ws.recv(timeout=TIMEOUT) for _ in sent]
        assert received == sent
    finally:
        ws.close()
        assert ws.wait(TIMEOUT)


# -- one Close, whoever starts the closing handshake ------------------------------------------


def test_a_close_racing_the_servers_close_sends_exactly_one_close(ws_server_factory) -> None:
    counts: List[int] = []

    def close_on_go(conn: ServerConnection) -> None:
        assert conn.recv() == "go"
        conn.close(1000, "server")
        closes = 0
        timeout = TIMEOUT
        try:
            while True:  # after the first Close, a second would follow right behind it
                if conn.recv_frame(timeout=timeout).opcode == Opcode.CLOSE:
                    closes += 1
                    timeout = 0.03
        except (ClientClosed, TimeoutError):
            pass
        counts.append(closes)

    server = ws_server_factory(close_on_go)
    rounds = 100
    rng = random.Random(7)
    for _ in range(rounds):
        ws = WebSocket(server.url, **OPTS)
        wait_state(ws, ReadyState.OPEN)
        ws.send("go")
        spin = rng.randrange(0, 4000)
        while spin:  # a varying few microseconds, so the two closes cross at every moment
            spin -= 1
        ws.close(1000, "client")
        assert ws.wait(TIMEOUT)
    deadline = time.monotonic() + TIMEOUT
    while len(counts) < rounds and time.monotonic() < deadline:
        time.sleep(0.01)
    assert counts == [1] * rounds
