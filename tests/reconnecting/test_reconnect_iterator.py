"""``syncws.reconnect()``: an iterator of connected sockets for scripts (shared/API.md,
"Reconnection"), over real loopback servers."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any, Callable, List

import pytest

import syncws
from syncws import Backoff, ConnectionClosed, DOMSyntaxError, HandshakeError, ReadyState
from syncws.server import ClientClosed, HandshakeResponse, ServerConnection

from .test_reconnecting import FAST, OPTS, close_with, free_port

TIMEOUT = 10.0


def later(seconds: float, action: Callable[[], Any]) -> threading.Thread:
    """Run ``action`` on a helper thread after ``seconds`` (the test's own, not syncws's)."""
    thread = threading.Thread(target=lambda: (time.sleep(seconds), action()), name="test-later")
    thread.start()
    return thread


def client_close_codes(codes: List[Any]) -> Callable[[ServerConnection], None]:
    def handler(conn: ServerConnection) -> None:
        try:
            while True:
                conn.send(conn.recv())
        except ClientClosed as closed:
            codes.append(closed.code)

    return handler


def test_refused_then_accepted_later_on_the_same_port(ws_server_factory) -> None:
    port = free_port()
    helper = later(0.3, lambda: ws_server_factory(port=port))
    started = time.monotonic()
    iterator = syncws.reconnect(f"ws://127.0.0.1:{port}/", backoff=FAST, **OPTS)
    with next(iterator) as ws:
        assert time.monotonic() - started >= 0.25
        assert ws.ready_state is ReadyState.OPEN
        ws.send("hi")
        assert ws.recv(timeout=TIMEOUT) == "hi"
    helper.join()


def test_a_final_failure_raises_what_connect_raised(ws_server_factory) -> None:
    server = ws_server_factory(handshake=HandshakeResponse(403, body=b"no"))
    with pytest.raises(HandshakeError) as info:
        next(syncws.reconnect(server.url, backoff=FAST, **OPTS))
    assert info.value.status == 403 and info.value.body == b"no"
    assert len(server.connections) == 1


def test_max_attempts_exhausted_raises_the_last_error() -> None:
    started = time.monotonic()
    backoff = Backoff(initial=0.1, factor=1.0, jitter=False, max_attempts=3)
    with pytest.raises(ConnectionRefusedError):
        next(syncws.reconnect(f"ws://127.0.0.1:{free_port()}/", backoff=backoff, **OPTS))
    assert 0.18 <= time.monotonic() - started < 5.0  # three attempts, two waits of 0.1 s


def test_retry_after_is_honoured(ws_server_factory) -> None:
    answers = iter([HandshakeResponse(503, headers=[("Retry-After", "1")])])
    server = ws_server_factory(handshake=lambda request, default: next(answers, default))
    started = time.monotonic()
    with next(syncws.reconnect(server.url, backoff=FAST, **OPTS)):
        assert 0.9 <= time.monotonic() - started < 5.0


def test_lost_connections_are_reconnected_with_backoff(ws_server_factory) -> None:
    count = itertools.count()

    def send_then_drop(conn: ServerConnection) -> None:
        conn.send(f"connection {next(count)}")
        conn.sleep(0.05)
        conn.abort()

    server = ws_server_factory(send_then_drop)
    seen: List[str] = []
    lost: List[float] = []
    opened: List[float] = []
    backoff = Backoff(initial=0.2, factor=2.0, jitter=False)
    for ws in syncws.reconnect(server.url, backoff=backoff, **OPTS):
        opened.append(time.monotonic())
        try:
            while True:
                seen.append(ws.recv(timeout=TIMEOUT))
        except ConnectionClosed as closed:
            assert closed.code == 1006 and not closed.was_clean
            lost.append(time.monotonic())
            if len(lost) == 3:
                break
            continue
    assert seen == ["connection 0", "connection 1", "connection 2"]
    gaps = [b - a for a, b in zip(lost, opened[1:])]
    assert 0.18 <= gaps[0] < 3.0 and 0.38 <= gaps[1] < 3.0  # 0.2 then 0.4: the count grows


def test_the_previous_socket_is_closed_with_1000_before_the_next(ws_server_factory) -> None:
    codes: List[Any] = []
    server = ws_server_factory(client_close_codes(codes))
    iterator = syncws.reconnect(server.url, backoff=FAST, **OPTS)
    first = next(iterator)
    first.send("a")
    assert first.recv(timeout=TIMEOUT) == "a"  # the body leaves it open
    second = next(iterator)
    try:
        assert first.ready_state is ReadyState.CLOSED
        assert server.connections[0].finished
        assert codes == [1000]
        assert second.ready_state is ReadyState.OPEN and second is not first
    finally:
        second.close()
        assert second.wait(TIMEOUT)


def test_a_final_close_code_raises_from_the_iterator(ws_server_factory) -> None:
    server = ws_server_factory(close_with(1008, "policy"))
    iterator = syncws.reconnect(server.url, backoff=FAST, **OPTS)
    ws = next(iterator)
    with pytest.raises(ConnectionClosed):
        ws.recv(timeout=TIMEOUT)
    with pytest.raises(ConnectionClosed) as info:
        next(iterator)
    assert (info.value.code, info.value.reason) == (1008, "policy")
    assert len(server.connections) == 1


def test_a_clean_server_close_is_reconnected(ws_server_factory) -> None:
    server = ws_server_factory(close_with(1001, "restart"))
    iterator = syncws.reconnect(server.url, backoff=FAST, **OPTS)
    for ws in itertools.islice(iterator, 2):
        assert list(ws) == []  # 1001 ends the loop quietly
    assert len(server.connections) == 2
    ws.close()


def test_url_and_headers_callables_per_attempt(ws_server_factory) -> None:
    a = ws_server_factory(close_with(1000))
    b = ws_server_factory(close_with(1000))
    urls = itertools.cycle([a.url, b.url])
    counter = itertools.count(1)
    iterator = syncws.reconnect(
        lambda: next(urls), backoff=FAST,
        headers=lambda: [("Authorization", f"Bearer {next(counter)}")], **OPTS,
    )
    seen = [ws.url for ws in itertools.islice(iterator, 3)]
    assert seen == [a.url, b.url, a.url]
    # Read from the servers' lists, which hold a connection with its request before its answer
    # goes out: a handler may not have run yet when the client has seen its connection open.
    requests = [a.connections[0].request, b.connections[0].request, a.connections[1].request]
    assert [r.header("Authorization") for r in requests] == ["Bearer 1", "Bearer 2", "Bearer 3"]


def test_a_bad_url_from_a_callable_raises() -> None:
    with pytest.raises(DOMSyntaxError):
        next(syncws.reconnect(lambda: "ftp://x/", backoff=FAST))


def test_reconnect_validates_at_once() -> None:
    with pytest.raises(DOMSyntaxError):
        syncws.reconnect("nope://x")
    with pytest.raises(TypeError):
        syncws.reconnect("ws://x/", backoff=3)
    with pytest.raises(TypeError):
        syncws.reconnect("ws://x/", should_retry="yes")
    with pytest.raises(TypeError):
        syncws.reconnect("ws://x/", connect=False)
    with pytest.raises(TypeError):
        syncws.reconnect("ws://x/", max_queue="3")


def test_break_leaves_the_current_socket_to_the_body(ws_server) -> None:
    for ws in syncws.reconnect(ws_server.url, backoff=FAST, **OPTS):
        break
    try:
        assert ws.ready_state is ReadyState.OPEN  # not closed by the iterator
        ws.send("still here")
        assert ws.recv(timeout=TIMEOUT) == "still here"
    finally:
        ws.close()
        assert ws.wait(TIMEOUT)


def test_a_connection_that_lasted_reset_after_resets_the_backoff(ws_server_factory) -> None:
    lifetimes = iter([0.0, 0.0, 0.6])  # two short connections, then one long one

    def handler(conn: ServerConnection) -> None:
        conn.sleep(next(lifetimes, 0.0))
        conn.abort()

    server = ws_server_factory(handler)
    backoff = Backoff(initial=0.2, factor=2.0, jitter=False, reset_after=0.4)
    opened: List[float] = []
    lost: List[float] = []
    for ws in syncws.reconnect(server.url, backoff=backoff, **OPTS):
        opened.append(time.monotonic())
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=TIMEOUT)
        lost.append(time.monotonic())
        if len(opened) == 4:
            break
    gaps = [b - a for a, b in zip(lost, opened[1:])]
    assert 0.18 <= gaps[0] < 0.38 and 0.38 <= gaps[1] < 0.78  # growing: 0.2, 0.4
    assert 0.18 <= gaps[2] < 0.6  # reset after the long connection: 0.2 again, not 0.8
