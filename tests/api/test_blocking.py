"""The blocking helpers for scripts: ``syncws.connect``, ``recv``, iteration, the context
manager, ``wait()`` and ``flush()`` (the documented "blocking use for scripts")."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, Iterator, List, Optional

import pytest

import syncws
from syncws import ConnectionClosed, HandshakeError, InvalidStateError, ReadyState, WebSocket
from syncws.protocol.frames import Opcode, serialize_frame
from syncws.server import CloseInfo, HandshakeResponse, ServerConnection, hold

from helpers import OPTS, TIMEOUT, client_close_of



def connect(url: str, protocols: Any = None, **options: Any) -> WebSocket:
    return syncws.connect(url, protocols, **{**OPTS, **options})


@pytest.fixture
def closing() -> Iterator[List[WebSocket]]:
    """Append sockets to this list to have them closed (and waited for) at teardown."""
    sockets: List[WebSocket] = []
    yield sockets
    for ws in sockets:
        ws.close()
    for ws in sockets:
        assert ws.wait(TIMEOUT)


def frame(opcode: int, payload: bytes) -> bytes:
    return b"".join(serialize_frame(opcode, payload, mask=False))


# -- connect() -------------------------------------------------------------------------------


def test_connect_returns_an_open_socket(ws_server, closing) -> None:
    ws = connect(ws_server.url)
    closing.append(ws)
    assert isinstance(ws, WebSocket)
    assert ws.ready_state is ReadyState.OPEN
    ws.send("hello")
    assert ws.recv(timeout=TIMEOUT) == "hello"
    ws.send(b"\x00\xff")
    assert ws.recv(timeout=TIMEOUT) == b"\x00\xff"


def test_connect_passes_options_and_protocols(ws_server_factory, closing) -> None:
    server = ws_server_factory(subprotocols=["v2"])
    opened: List[str] = []
    ws = connect(server.url, ["v1", "v2"], onopen=lambda e: opened.append(e.type), binary_type="arraybuffer")
    closing.append(ws)
    assert ws.protocol == "v2" and ws.binary_type == "arraybuffer"
    assert opened == ["open"]  # handlers passed to connect() see the open event


def test_connect_rejects_the_connect_option() -> None:
    with pytest.raises(TypeError):
        syncws.connect("ws://127.0.0.1:1/", connect=False)


def test_handshake_error_carries_the_answer(ws_server_factory) -> None:
    refusal = HandshakeResponse(403, headers=[("X-Reason", "not today"), ("Content-Type", "text/plain")], body=b"go away")
    server = ws_server_factory(handshake=refusal)
    with pytest.raises(HandshakeError) as info:
        connect(server.url)
    error = info.value
    assert isinstance(error, syncws.WebSocketError)
    assert error.status == 403
    assert ("X-Reason", "not today") in error.headers
    assert error.header("x-reason") == "not today"
    assert error.body == b"go away"


def test_timeout_on_a_hanging_handshake(ws_server_factory) -> None:
    server = ws_server_factory(handshake=HandshakeResponse.hang())
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        connect(server.url, timeout=0.3)
    assert 0.25 < time.monotonic() - started < 2.0


def test_refused_port_raises_os_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        port = sock.getsockname()[1]
        with pytest.raises(OSError) as info:
            connect(f"ws://127.0.0.1:{port}/")
    assert isinstance(info.value, ConnectionRefusedError)


# Longer than DNS allows (255 bytes): the C library's resolver fails it without sending a query,
# so this DNS failure stays on this machine.
UNRESOLVABLE = ".".join(["a" * 60] * 5) + ".invalid"


@pytest.mark.parametrize("host", [UNRESOLVABLE, "b" * 64 + ".invalid"])
def test_dns_failure_names_the_host_and_stays_a_gaierror(host: str) -> None:
    with pytest.raises(socket.gaierror) as info:
        connect(f"ws://{host}:9/", proxy=None)
    assert isinstance(info.value, OSError)
    assert f"cannot resolve host {host!r}" in str(info.value)
    assert info.value.__cause__ is not None  # the resolver's own error, chained


def test_server_closing_right_after_open(ws_server_factory) -> None:
    def script(conn: ServerConnection) -> None:
        conn.send("one")
        conn.send(b"two")
        conn.close(4001, "bye")
        conn.expect_close()

    server = ws_server_factory(script)
    ws = connect(server.url)
    assert ws.recv(TIMEOUT) == "one"
    assert ws.recv(TIMEOUT) == b"two"
    for _ in range(2):  # and again: the socket stays closed
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(TIMEOUT)
        assert (info.value.code, info.value.reason, info.value.was_clean) == (4001, "bye", True)
    assert ws.wait(TIMEOUT) and ws.ready_state is ReadyState.CLOSED


def test_frames_in_the_same_segment_as_the_101(ws_server_factory) -> None:
    """The 101, two messages and a Close in one write: open first, nothing lost."""
    extra = frame(Opcode.TEXT, b"first") + frame(Opcode.BINARY, b"second") + frame(Opcode.CLOSE, b"\x03\xe8")

    def handshake(request, response: HandshakeResponse) -> HandshakeResponse:
        response.extra = extra
        return response

    server = ws_server_factory(client_close_of, handshake=handshake)
    order: List[str] = []
    ws = connect(server.url, onopen=lambda e: order.append("open"), onmessage=lambda e: order.append("message"))
    assert [ws.recv(TIMEOUT), ws.recv(TIMEOUT)] == ["first", b"second"]
    with pytest.raises(ConnectionClosed) as info:
        ws.recv(TIMEOUT)
    assert (info.value.code, info.value.was_clean) == (1000, True)
    assert ws.wait(TIMEOUT)
    assert order == ["open", "message", "message"]


def test_abrupt_end_raises_connection_closed_1006(ws_server_factory) -> None:
    def script(conn: ServerConnection) -> None:
        conn.send("only")
        # returning closes TCP without a Close frame

    server = ws_server_factory(script)
    ws = connect(server.url)
    assert ws.recv(TIMEOUT) == "only"
    with pytest.raises(ConnectionClosed) as info:
        ws.recv(TIMEOUT)
    assert (info.value.code, info.value.was_clean) == (1006, False)
    assert isinstance(info.value.__cause__, OSError)  # the underlying failure is chained
    assert ws.wait(TIMEOUT)


# -- recv() and iteration --------------------------------------------------------------------


def test_recv_timeout(ws_server, closing) -> None:
    ws = connect(ws_server.url)
    closing.append(ws)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        ws.recv(timeout=0.2)
    assert 0.15 < time.monotonic() - started < 2.0
    ws.send("late")
    assert ws.recv(TIMEOUT) == "late"  # a timeout loses nothing


def test_iteration_yields_messages_until_close(ws_server_factory) -> None:
    def script(conn: ServerConnection) -> None:
        for i in range(50):
            conn.send(f"#{i}")
        conn.close(1000)
        conn.expect_close()

    server = ws_server_factory(script)
    ws = connect(server.url)
    assert list(ws) == [f"#{i}" for i in range(50)]
    assert list(ws) == []  # closed: iteration ends at once
    assert ws.wait(TIMEOUT)


def test_messages_are_also_dispatched_to_handlers(ws_server, closing) -> None:
    ws = connect(ws_server.url)
    closing.append(ws)
    seen: List[str] = []
    ws.onmessage = lambda e: seen.append(e.data)
    ws.send("both")
    assert ws.recv(TIMEOUT) == "both"
    deadline = time.monotonic() + TIMEOUT
    while not seen and time.monotonic() < deadline:
        time.sleep(0.005)
    assert seen == ["both"]


def test_recv_on_a_socket_not_made_by_connect(ws_server) -> None:
    ws = WebSocket(ws_server.url, **OPTS)
    try:
        with pytest.raises(InvalidStateError):
            ws.recv(0.1)
        with pytest.raises(InvalidStateError):
            next(iter(ws))
    finally:
        ws.close()
        assert ws.wait(TIMEOUT)


# -- context manager -------------------------------------------------------------------------


def test_context_manager_closes_with_1000_and_waits(ws_server_factory) -> None:
    closes: List[Optional[CloseInfo]] = []
    server = ws_server_factory(lambda conn: closes.append(client_close_of(conn)))
    with connect(server.url) as ws:
        ws.send("x")
    assert ws.ready_state is ReadyState.CLOSED  # the close event was delivered before exit
    server.accepted().join(TIMEOUT)
    assert closes == [CloseInfo(1000, "")]


def test_context_manager_closes_on_exception(ws_server_factory) -> None:
    closes: List[Optional[CloseInfo]] = []
    server = ws_server_factory(lambda conn: closes.append(client_close_of(conn)))
    events: List[int] = []
    with pytest.raises(KeyError):
        with connect(server.url, onclose=lambda e: events.append(e.code)) as ws:
            raise KeyError("boom")
    assert ws.ready_state is ReadyState.CLOSED and events == [1000]
    server.accepted().join(TIMEOUT)
    assert closes == [CloseInfo(1000, "")]


def test_context_manager_waits_at_most_close_timeout(ws_server_factory) -> None:
    server = ws_server_factory(hold)  # never reads, never answers the Close
    with connect(server.url, close_timeout=0.5) as ws:
        started = time.monotonic()
    assert ws.ready_state is ReadyState.CLOSED  # the close event was delivered before exit
    assert 0.4 < time.monotonic() - started < 2.0  # after close_timeout, not much later


def test_context_manager_on_a_plain_websocket(ws_server) -> None:
    events: List[str] = []
    with WebSocket(ws_server.url, onopen=lambda e: e.target.send("hi"), onmessage=lambda e: e.target.close(), **OPTS) as ws:
        ws.add_event_listener("close", lambda e: events.append("close"))
    # Exiting closes at once (while CONNECTING, probably) and waits for the close event.
    assert ws.ready_state is ReadyState.CLOSED and events == ["close"]


# -- wait() ----------------------------------------------------------------------------------


def test_wait(ws_server) -> None:
    ws = connect(ws_server.url)
    started = time.monotonic()
    assert ws.wait(0.1) is False
    assert time.monotonic() - started >= 0.09
    ws.close()
    assert ws.wait(TIMEOUT) is True
    assert ws.wait(0) is True  # stays true
    assert ws.wait() is True


def test_wait_returns_after_the_close_handlers(ws_server) -> None:
    done: List[str] = []
    release = threading.Event()

    def onclose(event: Any) -> None:
        release.wait(TIMEOUT)
        done.append("onclose")

    ws = connect(ws_server.url, onclose=onclose)
    ws.close()
    assert ws.wait(0.2) is False  # the close handler is still running
    release.set()
    assert ws.wait(TIMEOUT) and done == ["onclose"]


@pytest.mark.parametrize("where", ["onmessage", "onclose"])
def test_wait_from_a_handler_of_the_same_socket_raises(where: str, ws_server) -> None:
    results: List[Any] = []

    def handler(event: Any) -> None:
        started = time.monotonic()
        try:
            results.append(ws.wait(1))
        except InvalidStateError as exc:
            results.append(exc)
        results.append(time.monotonic() - started)

    ws = WebSocket(ws_server.url, connect=False, **OPTS)
    setattr(ws, where, handler)
    ws.onopen = lambda e: ws.send("ping")
    ws.add_event_listener("message", lambda e: ws.close())
    ws.connect()
    assert ws.wait(TIMEOUT)
    error, elapsed = results
    assert isinstance(error, InvalidStateError) and elapsed < 0.5  # raised at once


def test_wait_from_a_handler_of_another_socket_works(ws_server) -> None:
    first = connect(ws_server.url)
    results: List[bool] = []

    def onmessage(event: Any) -> None:
        first.close()
        results.append(first.wait(TIMEOUT))
        event.target.close()

    second = WebSocket(ws_server.url, onopen=lambda e: e.target.send("go"), onmessage=onmessage, **OPTS)
    assert second.wait(TIMEOUT)
    assert results == [True]


# -- flush() ---------------------------------------------------------------------------------


def test_flush_while_open(ws_server, closing) -> None:
    ws = connect(ws_server.url)
    closing.append(ws)
    chunk = b"\xab" * (1024 * 1024)
    for _ in range(8):
        ws.send(chunk)
    assert ws.flush(TIMEOUT) is True
    assert ws.buffered_amount == 0
    assert [len(ws.recv(TIMEOUT)) for _ in range(8)] == [len(chunk)] * 8


def test_flush_times_out_while_the_peer_does_not_read(ws_server_factory, closing) -> None:
    server = ws_server_factory(hold)
    ws = connect(server.url, close_timeout=0.5)
    closing.append(ws)
    ws.send(bytes(32 * 1024 * 1024))  # more than the socket buffers take
    started = time.monotonic()
    assert ws.flush(0.2) is False
    assert time.monotonic() - started < 2.0
    assert ws.buffered_amount > 0


def test_flush_after_close(ws_server) -> None:
    ws = connect(ws_server.url)
    ws.send("sent while open")
    ws.close()
    ws.send("abc")  # CLOSING: counted, never sent
    assert ws.wait(TIMEOUT)
    assert ws.flush(TIMEOUT) is True
    assert ws.flush(0) is True
    assert ws.buffered_amount == 3  # drained to what it was when the connection closed


def test_flush_before_connect_returns_true() -> None:
    ws = WebSocket("ws://127.0.0.1:1/", connect=False, **OPTS)
    assert ws.flush(0.1) is True


def test_max_queue_makes_a_script_that_does_not_recv_push_back(ws_server_factory) -> None:
    """Messages wait for recv() up to max_queue; then the reader stops reading, TCP fills up
    and the server's sends block, until the script reads again. Nothing is lost."""
    count, size = 400, 64 * 1024
    all_sent = threading.Event()

    def flood(conn: ServerConnection) -> None:
        for i in range(count):
            conn.send(bytes([i % 256]) * size)
        all_sent.set()
        client_close_of(conn)

    server = ws_server_factory(flood)
    ws = syncws.connect(server.url, max_queue=2, **OPTS)
    assert not all_sent.wait(1.0)  # 25 MiB cannot all be on their way: the server is held up
    for i in range(count):
        assert ws.recv(timeout=TIMEOUT) == bytes([i % 256]) * size
    assert all_sent.wait(TIMEOUT)
    ws.close()
    assert ws.wait(TIMEOUT)


def test_close_releases_a_reader_held_by_max_queue(ws_server_factory) -> None:
    def flood(conn: ServerConnection) -> None:
        for i in range(8):
            conn.send(f"message {i}")
        client_close_of(conn)

    server = ws_server_factory(flood)
    ws = syncws.connect(server.url, max_queue=2, **OPTS)
    assert ws.recv(timeout=TIMEOUT) == "message 0"
    time.sleep(0.2)  # the reader fills the queue again and waits for room
    ws.close(1000, "enough")
    assert ws.wait(TIMEOUT)  # well before close_timeout (10 s): the reader did not stay held
