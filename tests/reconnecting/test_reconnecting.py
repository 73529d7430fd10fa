"""``syncws.ReconnectingWebSocket`` over real loopback servers (shared/API.md, "Reconnection").

Servers refuse (a port bound then closed), accept later on that same port, answer 503 with
Retry-After, 403/404, drop TCP, close with each class of code and ignore pings. Delays use a
fast ``Backoff`` without jitter so the schedule can be checked with generous bounds.
"""

from __future__ import annotations

import gc
import itertools
import logging
import socket
import threading
import time
import weakref
from typing import Any, Callable, Dict, List, Optional

import pytest

import syncws
from syncws import (
    Backoff,
    Blob,
    BufferFull,
    CloseEvent,
    DOMSyntaxError,
    HandshakeError,
    InvalidAccessError,
    InvalidStateError,
    KeepaliveTimeout,
    ReconnectingCloseEvent,
    ReconnectingWebSocket,
    ReadyState,
)
from syncws.server import ClientClosed, HandshakeResponse, ServerConnection, hold

from helpers import wait_until

from helpers import wait_no_syncws_threads

OPTS: Dict[str, Any] = dict(compression=False, proxy=None)
FAST = Backoff(initial=0.05, factor=2.0, max_delay=1.0, jitter=False, reset_after=0.5)
TIMEOUT = 10.0


def free_port() -> int:
    """A loopback port nobody listens on (bound, then closed: connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Recorder:
    """Collects events with what the socket looked like while each was being dispatched."""

    def __init__(self) -> None:
        self.events: List[Any] = []
        self.states: List[ReadyState] = []
        self.times: List[float] = []
        self.threads: List[int] = []
        self.lock = threading.Lock()

    def __call__(self, event: Any) -> None:
        with self.lock:
            self.events.append(event)
            self.states.append(event.target.ready_state)
            self.times.append(time.monotonic())
            self.threads.append(threading.get_ident())

    def handlers(self) -> Dict[str, Any]:
        return dict(onopen=self, onmessage=self, onerror=self, onclose=self)

    def of(self, type: str) -> List[Any]:
        with self.lock:
            return [e for e in self.events if e.type == type]

    def types(self) -> List[str]:
        with self.lock:
            return [e.type for e in self.events]

    def count(self, type: str) -> int:
        return len(self.of(type))


def echo_and_collect(received: List[Any]) -> Callable[[ServerConnection], None]:
    def handler(conn: ServerConnection) -> None:
        try:
            while True:
                data = conn.recv()
                received.append(data)
                conn.send(data)
        except ClientClosed:
            pass

    return handler


def close_with(code: int, reason: str = "bye") -> Callable[[ServerConnection], None]:
    def handler(conn: ServerConnection) -> None:
        conn.close(code, reason)
        try:
            conn.expect_close(timeout=5)
        except (ClientClosed, OSError):
            pass

    return handler


def make(url: Any, rec: Optional[Recorder] = None, **kwargs: Any) -> ReconnectingWebSocket:
    options = dict(OPTS)
    options.setdefault("backoff", FAST)
    options.update(kwargs)
    if rec is not None:
        options.update(rec.handlers())
    return ReconnectingWebSocket(url, **options)


@pytest.fixture
def sockets():
    """Sockets made by a test are closed at its end, even when it fails."""
    made: List[ReconnectingWebSocket] = []
    yield made
    for ws in made:
        ws.close()
        assert ws.wait(TIMEOUT)


# -- refuse, then accept later on the same port -------------------------------------------------


def test_refused_attempts_are_retried_until_the_server_accepts_on_that_port(ws_server_factory) -> None:
    port = free_port()
    rec = Recorder()
    ws = make(f"ws://127.0.0.1:{port}/", rec)
    try:
        wait_until(lambda: rec.count("close") >= 3)
        server = ws_server_factory(port=port)
        wait_until(lambda: rec.count("open") == 1)
        assert ws.ready_state is ReadyState.OPEN and ws.url == f"ws://127.0.0.1:{port}/"
        ws.send("hello")
        wait_until(lambda: rec.count("message") == 1)
        assert rec.of("message")[0].data == "hello"
    finally:
        ws.close()
        assert ws.wait(TIMEOUT)
    types = rec.types()
    failures = types[: types.index("open")]
    assert failures == ["error", "close"] * (len(failures) // 2) and len(failures) >= 6
    for event in rec.of("error")[:3]:
        assert isinstance(event.error, ConnectionRefusedError)
        assert event.target is ws and event.current_target is None  # dispatch finished
    closes = rec.of("close")
    for close in closes[:-1]:
        assert isinstance(close, CloseEvent) and isinstance(close, ReconnectingCloseEvent)
        assert (close.code, close.was_clean, close.reconnecting) == (1006, False, True)
        assert close.retry_delay is not None and close.retry_delay > 0
    final = closes[-1]
    assert final.reconnecting is False and final.retry_delay is None
    assert types[-1] == "close" and ws.ready_state is ReadyState.CLOSED
    assert server.connections and server.connections[0].upgraded


def test_ready_state_inside_handlers(ws_server_factory) -> None:
    port = free_port()
    rec = Recorder()
    ws = make(f"ws://127.0.0.1:{port}/", rec)
    wait_until(lambda: rec.count("close") >= 2)
    assert ws.ready_state is ReadyState.CONNECTING  # between connections
    ws_server_factory(port=port)
    wait_until(lambda: rec.count("open") == 1)
    ws.close()
    assert ws.wait(TIMEOUT)
    expected = {"open": ReadyState.OPEN}
    for event, state in zip(rec.events[:-1], rec.states[:-1]):
        assert state is expected.get(event.type, ReadyState.CONNECTING), (event, state)
    assert rec.states[-1] is ReadyState.CLOSED  # only with the final close


def test_connections_that_end_bring_a_new_connection_and_handlers_stay(ws_server_factory) -> None:
    """Three connections in a row, each dropped by the server: one socket, one set of handlers."""
    count = itertools.count()

    def drop_after_hello(conn: ServerConnection) -> None:
        conn.send(f"hello {next(count)}")
        conn.sleep(0.1)
        conn.abort()  # TCP reset: no Close frame

    server = ws_server_factory(drop_after_hello)
    rec = Recorder()
    ws = make(server.url, rec)
    try:
        wait_until(lambda: rec.count("message") >= 3)  # close() would drop an undelivered one
    finally:
        ws.close()
        assert ws.wait(TIMEOUT)
    assert [e.data for e in rec.of("message")][:3] == ["hello 0", "hello 1", "hello 2"]
    for error in rec.of("error"):
        assert isinstance(error.error, (ConnectionError, OSError))
    assert all(e.reconnecting for e in rec.of("close")[:-1])


# -- what the server answers ---------------------------------------------------------------------


def test_503_with_retry_after_sets_the_minimum_delay(ws_server_factory) -> None:
    answers = iter([HandshakeResponse(503, headers=[("Retry-After", "1")], body=b"busy")])

    def handshake(request: Any, default: HandshakeResponse) -> HandshakeResponse:
        return next(answers, default)

    server = ws_server_factory(handshake=handshake)
    rec = Recorder()
    ws = make(server.url, rec)
    try:
        wait_until(lambda: rec.count("open") == 1)
    finally:
        ws.close()
        assert ws.wait(TIMEOUT)
    error = rec.of("error")[0].error
    assert isinstance(error, HandshakeError) and error.status == 503
    assert error.header("Retry-After") == "1" and error.body == b"busy"
    first_close = rec.of("close")[0]
    assert first_close.reconnecting and first_close.retry_delay == 1.0  # not FAST's 0.05
    gap = rec.times[rec.types().index("open")] - rec.times[1]
    assert 0.9 <= gap < 5.0


def test_retry_after_is_capped_at_max_delay(ws_server_factory) -> None:
    answers = iter([HandshakeResponse(429, headers=[("Retry-After", "3600")])])
    server = ws_server_factory(handshake=lambda request, default: next(answers, default))
    rec = Recorder()
    ws = make(server.url, rec, backoff=Backoff(initial=0.05, max_delay=0.3, jitter=False))
    try:
        wait_until(lambda: rec.count("open") == 1, timeout=5)
    finally:
        ws.close()
        assert ws.wait(TIMEOUT)
    assert rec.of("close")[0].retry_delay == 0.3


@pytest.mark.parametrize("status", [401, 403, 404])
def test_client_error_statuses_end_the_socket(ws_server_factory, status: int) -> None:
    server = ws_server_factory(handshake=HandshakeResponse(status, body=b"go away"))
    rec = Recorder()
    ws = make(server.url, rec)
    assert ws.wait(TIMEOUT)
    assert rec.types() == ["error", "close"]
    error = rec.of("error")[0].error
    assert isinstance(error, HandshakeError) and error.status == status and error.body == b"go away"
    close = rec.of("close")[0]
    assert (close.code, close.was_clean, close.reconnecting, close.retry_delay) == (1006, False, False, None)
    assert rec.states == [ReadyState.CLOSED, ReadyState.CLOSED]
    time.sleep(0.3)  # FAST would have retried several times by now
    assert len(server.connections) == 1


@pytest.mark.parametrize("status", [500, 502, 504, 408])
def test_transient_statuses_are_retried(ws_server_factory, status: int) -> None:
    answers = iter([HandshakeResponse(status), HandshakeResponse(status)])
    server = ws_server_factory(handshake=lambda request, default: next(answers, default))
    rec = Recorder()
    ws = make(server.url, rec)
    try:
        wait_until(lambda: rec.count("open") == 1)
    finally:
        ws.close()
        assert ws.wait(TIMEOUT)
    assert [e.error.status for e in rec.of("error")] == [status, status]
    assert len(server.connections) == 3


def test_dropped_handshakes_are_retried(ws_server_factory) -> None:
    answers = iter([HandshakeResponse.drop(), HandshakeResponse.reset()])
    server = ws_server_factory(handshake=lambda request, default: next(answers, default))
    rec = Recorder()
    ws = make(server.url, rec)
    try:
        wait_until(lambda: rec.count("open") == 1)
    finally:
        ws.close()
        assert ws.wait(TIMEOUT)
    assert all(isinstance(e.error, OSError) for e in rec.of("error"))
    assert rec.count("error") == 2


def test_subprotocol_mismatch_is_final(ws_server_factory) -> None:
    server = ws_server_factory()  # selects no subprotocol
    rec = Recorder()
    ws = make(server.url, rec, protocols=["chat"])
    assert ws.wait(TIMEOUT)
    assert rec.types() == ["error", "close"] and not rec.of("close")[0].reconnecting
    assert isinstance(rec.of("error")[0].error, HandshakeError)


def test_tls_certificate_failure_is_final(ws_server_factory, ws_tls) -> None:
    server = ws_server_factory(ssl_context=ws_tls.server)
    rec = Recorder()
    ws = make(server.url, rec)  # default context: certifi's CAs do not know the test CA
    assert ws.wait(TIMEOUT)
    assert rec.types() == ["error", "close"]
    assert isinstance(rec.of("error")[0].error, __import__("ssl").SSLCertVerificationError)
    assert rec.of("close")[0].reconnecting is False
    ok = make(server.url, Recorder(), ssl=ws_tls.client)  # the right CA: it connects
    try:
        wait_until(lambda: ok.ready_state is ReadyState.OPEN)
    finally:
        ok.close()
        assert ok.wait(TIMEOUT)


RETRIED_CODES = [1000, 1001, 1011, 1012, 1013, 3000, 4000, 4999]
FINAL_CODES = [1002, 1003, 1007, 1008, 1009, 1010]


@pytest.mark.parametrize("code", RETRIED_CODES)
def test_server_closes_with_retried_codes(ws_server_factory, code: int) -> None:
    server = ws_server_factory(close_with(code))
    rec = Recorder()
    ws = make(server.url, rec)
    try:
        wait_until(lambda: rec.count("open") >= 2)
    finally:
        ws.close()
        assert ws.wait(TIMEOUT)
    first = rec.of("close")[0]
    assert (first.code, first.reason, first.was_clean, first.reconnecting) == (code, "bye", True, True)
    assert rec.types()[:3] == ["open", "close", "open"]  # a clean close: no error event


def test_server_close_without_code_is_retried(ws_server_factory) -> None:
    def empty_close(conn: ServerConnection) -> None:
        conn.close()
        conn.expect_close(timeout=5)

    server = ws_server_factory(empty_close)
    rec = Recorder()
    ws = make(server.url, rec)
    try:
        wait_until(lambda: rec.count("open") >= 2)
    finally:
        ws.close()
        assert ws.wait(TIMEOUT)
    assert rec.of("close")[0].code == 1005 and rec.of("close")[0].reconnecting


@pytest.mark.parametrize("code", FINAL_CODES)
def test_server_closes_with_final_codes(ws_server_factory, code: int) -> None:
    server = ws_server_factory(close_with(code, "no"))
    rec = Recorder()
    ws = make(server.url, rec)
    assert ws.wait(TIMEOUT)
    assert rec.types() == ["open", "close"]
    close = rec.of("close")[0]
    assert (close.code, close.reason, close.was_clean, close.reconnecting) == (code, "no", True, False)
    time.sleep(0.2)
    assert len(server.connections) == 1


def test_keepalive_timeout_leads_to_a_new_connection(ws_server_factory) -> None:
    server = ws_server_factory(hold)  # reads nothing: pings go unanswered
    rec = Recorder()
    ws = make(server.url, rec, ping_interval=0.1, ping_timeout=0.2)
    try:
        wait_until(lambda: rec.count("open") >= 2)
    finally:
        ws.close()
        for conn in server.connections:
            conn.release()
        assert ws.wait(TIMEOUT)
    assert isinstance(rec.of("error")[0].error, KeepaliveTimeout)
    assert rec.types()[:4] == ["open", "error", "close", "open"]
    assert rec.of("close")[0].code == 1006 and rec.of("close")[0].reconnecting


# -- the backoff schedule ------------------------------------------------------------------------


def test_delays_grow_and_attempts_follow_them(caplog) -> None:
    caplog.set_level(logging.INFO, logger="syncws")
    rec = Recorder()
    backoff = Backoff(initial=0.1, factor=2.0, max_delay=0.3, jitter=False, max_attempts=5)
    ws = make(f"ws://127.0.0.1:{free_port()}/", rec, backoff=backoff)
    assert ws.wait(TIMEOUT)
    closes = rec.of("close")
    assert [c.retry_delay for c in closes] == [0.1, 0.2, 0.3, 0.3, None]
    assert [c.reconnecting for c in closes] == [True] * 4 + [False]
    assert rec.count("error") == 5  # max_attempts=5: five attempts, the first counts
    close_times = [t for e, t in zip(rec.events, rec.times) if e.type == "close"]
    gaps = [b - a for a, b in zip(close_times, close_times[1:])]
    for gap, delay in zip(gaps, [0.1, 0.2, 0.3, 0.3]):
        assert delay * 0.9 <= gap < delay + 2.0, gaps
    waits = [r.getMessage() for r in caplog.records if "reconnecting" in r.getMessage()]
    assert len(waits) == 4
    assert "in 0.10 s (attempt 2)" in waits[0] and "in 0.30 s (attempt 5)" in waits[3]
    assert all(r.levelno == logging.INFO for r in caplog.records if "reconnecting" in r.getMessage())


def test_max_attempts_two_means_two_attempts() -> None:
    rec = Recorder()
    ws = make(f"ws://127.0.0.1:{free_port()}/", rec, backoff=Backoff(initial=0.01, max_attempts=2))
    assert ws.wait(TIMEOUT)
    assert rec.types() == ["error", "close", "error", "close"]
    assert rec.of("close")[-1].reconnecting is False and ws.retry_count == 2


def test_jittered_delays_stay_in_half_d_to_d() -> None:
    rec = Recorder()
    backoff = Backoff(initial=0.2, factor=1.0, jitter=True, max_attempts=6)
    ws = make(f"ws://127.0.0.1:{free_port()}/", rec, backoff=backoff)
    assert ws.wait(TIMEOUT)
    delays = [c.retry_delay for c in rec.of("close")[:-1]]
    assert len(delays) == 5 and all(0.1 <= d <= 0.2 for d in delays) and len(set(delays)) > 1


def test_short_connections_keep_the_delays_growing(ws_server_factory) -> None:
    server = ws_server_factory(close_with(1011))  # accepts, then closes at once
    rec = Recorder()
    ws = make(server.url, rec, backoff=Backoff(initial=0.05, factor=2.0, jitter=False, reset_after=5.0))
    try:
        wait_until(lambda: rec.count("close") >= 4)
    finally:
        ws.close()
        assert ws.wait(TIMEOUT)
    assert [c.retry_delay for c in rec.of("close")[:4]] == [0.05, 0.1, 0.2, 0.4]


def test_retry_count_and_reset_after_a_long_enough_connection(ws_server_factory) -> None:
    port = free_port()
    rec = Recorder()
    ws = make(f"ws://127.0.0.1:{port}/", rec, backoff=FAST)  # reset_after=0.5
    wait_until(lambda: rec.count("close") >= 3)
    server = ws_server_factory(hold, port=port)
    wait_until(lambda: rec.count("open") == 1)
    failed = rec.count("error")
    assert ws.retry_count == failed >= 3  # connected, not yet for reset_after
    time.sleep(0.6)
    assert ws.retry_count == 0  # stayed open for reset_after
    server.accepted().abort()  # lose it
    wait_until(lambda: rec.count("close") == failed + 1)
    after = rec.of("close")[-1]
    assert after.reconnecting and after.retry_delay == 0.05  # the first retry again
    assert ws.retry_count == 0
    ws.close()
    assert ws.wait(TIMEOUT)


# -- policy replaced ----------------------------------------------------------------------------


def test_should_retry_replaces_the_policy(ws_server_factory) -> None:
    answers = iter([HandshakeResponse(403), HandshakeResponse(403)])
    server = ws_server_factory(handshake=lambda request, default: next(answers, default))
    calls: List[Any] = []

    def should_retry(close_event: CloseEvent, error: Optional[BaseException]) -> bool:
        calls.append((close_event, error, threading.current_thread().name))
        return True

    rec = Recorder()
    ws = make(server.url, rec, should_retry=should_retry)
    try:
        wait_until(lambda: rec.count("open") == 1)
    finally:
        ws.close()
        assert ws.wait(TIMEOUT)
    assert len(calls) == 2  # close() is never asked about
    for close_event, error, thread in calls:
        assert isinstance(close_event, CloseEvent) and close_event.code == 1006
        assert isinstance(error, HandshakeError) and error.status == 403
        assert thread.startswith("syncws-dispatch-")  # where handlers run


def test_should_retry_sees_the_servers_close(ws_server_factory) -> None:
    server = ws_server_factory(close_with(1000, "done"))
    seen: List[Any] = []
    rec = Recorder()
    ws = make(server.url, rec, should_retry=lambda e, err: seen.append((e.code, e.reason, e.was_clean, err)) or False)
    assert ws.wait(TIMEOUT)
    assert seen == [(1000, "done", True, None)]
    assert rec.types() == ["open", "close"] and not rec.of("close")[0].reconnecting


def test_should_retry_that_raises_is_logged_and_means_no(caplog) -> None:
    def broken(close_event: CloseEvent, error: Optional[BaseException]) -> bool:
        raise RuntimeError("policy bug")

    rec = Recorder()
    ws = make(f"ws://127.0.0.1:{free_port()}/", rec, should_retry=broken)
    assert ws.wait(TIMEOUT)
    assert rec.types() == ["error", "close"] and not rec.of("close")[0].reconnecting
    assert any("should_retry" in r.getMessage() and r.exc_info for r in caplog.records)


# -- url and headers callables -----------------------------------------------------------------


def test_url_and_headers_callables_are_called_before_every_attempt(ws_server_factory) -> None:
    seen_a: List[Optional[str]] = []
    seen_b: List[Optional[str]] = []

    def recorder(seen: List[Optional[str]], code: int) -> Callable[[ServerConnection], None]:
        def handler(conn: ServerConnection) -> None:
            assert conn.request is not None
            seen.append(conn.request.header("X-Token"))
            close_with(code)(conn)

        return handler

    a = ws_server_factory(recorder(seen_a, 1001), subprotocols=["a"])
    b = ws_server_factory(recorder(seen_b, 1001), subprotocols=["b"])
    urls = itertools.cycle([a.url, b.url])
    tokens = itertools.count(1)
    calling_threads: List[str] = []

    def url() -> str:
        calling_threads.append(threading.current_thread().name)
        return next(urls)

    rec = Recorder()
    opened: List[Any] = []
    ws = make(url, rec, protocols=["a", "b"], headers=lambda: {"X-Token": str(next(tokens))}, connect=False)
    ws.add_event_listener("open", lambda e: opened.append((e.target.url, e.target.protocol)))
    ws.connect()
    try:
        wait_until(lambda: len(opened) >= 4)
    finally:
        ws.close()
        assert ws.wait(TIMEOUT)
    assert opened[:4] == [(a.url, "a"), (b.url, "b"), (a.url, "a"), (b.url, "b")]
    assert seen_a[:2] == ["1", "3"] and seen_b[:2] == ["2", "4"]
    assert all(name.startswith("syncws-reconnect-") for name in calling_threads)
    assert ws.protocol == ""  # no current connection


@pytest.mark.parametrize(
    "url, error",
    [
        (lambda: "ftp://example.com/", DOMSyntaxError),
        (lambda: 42, TypeError),
        (lambda: 1 / 0, ZeroDivisionError),
    ],
)
def test_a_bad_url_from_a_callable_ends_the_socket(url: Any, error: type) -> None:
    rec = Recorder()
    ws = make(url, rec)
    assert ws.wait(TIMEOUT)
    assert rec.types() == ["error", "close"]
    assert isinstance(rec.of("error")[0].error, error)
    close = rec.of("close")[0]
    assert (close.code, close.was_clean, close.reconnecting) == (1006, False, False)
    assert rec.states[-1] is ReadyState.CLOSED


def test_a_bad_header_from_a_callable_ends_the_socket(ws_server) -> None:
    rec = Recorder()
    ws = make(ws_server.url, rec, headers=lambda: {"Bad Name": "x"})
    assert ws.wait(TIMEOUT)
    assert rec.types() == ["error", "close"] and isinstance(rec.of("error")[0].error, ValueError)
    assert not ws_server.connections


def test_the_constructor_validates_at_once() -> None:
    with pytest.raises(DOMSyntaxError):
        ReconnectingWebSocket("ftp://example.com/")
    with pytest.raises(DOMSyntaxError):
        ReconnectingWebSocket("ws://example.com/#frag")
    with pytest.raises(DOMSyntaxError):
        ReconnectingWebSocket("ws://example.com/", ["a", "a"])
    with pytest.raises(TypeError):
        ReconnectingWebSocket("ws://example.com/", backoff={"initial": 1})
    with pytest.raises(TypeError):
        ReconnectingWebSocket("ws://example.com/", should_retry=5)
    with pytest.raises(ValueError):
        ReconnectingWebSocket("ws://example.com/", max_pending=-1)
    with pytest.raises(TypeError):
        ReconnectingWebSocket("ws://example.com/", max_pending=1.5)
    with pytest.raises(TypeError):
        ReconnectingWebSocket("ws://example.com/", max_queue=1.5)
    with pytest.raises(TypeError):
        ReconnectingWebSocket("ws://example.com/", onmessage=5)
    with pytest.raises(TypeError):
        ReconnectingWebSocket("ws://example.com/", executor=object())
    with pytest.raises(DOMSyntaxError):
        ReconnectingWebSocket("ws://example.com/", binary_type="text")
    with pytest.raises(TypeError):
        ReconnectingWebSocket("ws://example.com/", sock=socket.socket())
    with pytest.raises(ValueError):
        ReconnectingWebSocket(lambda: "ws://example.com/", headers={"Sec-WebSocket-Key": "x"})
    assert wait_no_syncws_threads() == []  # nothing was started


# -- send() while offline --------------------------------------------------------------------


def test_send_while_offline_raises_with_max_pending_zero() -> None:
    ws = make(f"ws://127.0.0.1:{free_port()}/", Recorder())
    try:
        with pytest.raises(TypeError):
            ws.send(12)  # type before state
        with pytest.raises(InvalidStateError):
            ws.send("now")
        assert ws.buffered_amount == 0
    finally:
        ws.close()
        assert ws.wait(TIMEOUT)


def test_send_while_offline_queues_up_to_max_pending_and_sends_after_onopen(ws_server_factory) -> None:
    port = free_port()
    received: List[Any] = []
    rec = Recorder()
    ws = make(f"ws://127.0.0.1:{port}/", rec, max_pending=10)
    ws.add_event_listener("open", lambda e: e.target.send("auth"))
    try:
        ws.send("12345")
        ws.send(memoryview(b"ab\x00de"))  # exactly max_pending in all
        with pytest.raises(BufferFull):
            ws.send("x")
        with pytest.raises(TypeError):
            ws.send(None)  # type: ignore[arg-type]
        assert ws.buffered_amount == 10
        wait_until(lambda: rec.count("close") >= 2)
        ws_server_factory(echo_and_collect(received), port=port)
        wait_until(lambda: len(received) == 3)
        ws.send("after")
        wait_until(lambda: len(received) == 4)
        assert ws.flush(TIMEOUT) and ws.buffered_amount == 0
    finally:
        ws.close()
        assert ws.wait(TIMEOUT)
    assert received == ["auth", "12345", b"ab\x00de", "after"]


def test_sends_from_other_threads_during_onopen_go_after_the_queue(ws_server_factory) -> None:
    port = free_port()
    received: List[Any] = []
    rec = Recorder()
    in_onopen = threading.Event()
    leave_onopen = threading.Event()

    def onopen(event: Any) -> None:
        event.target.send("first")
        in_onopen.set()
        leave_onopen.wait(TIMEOUT)

    ws = make(f"ws://127.0.0.1:{port}/", rec, max_pending=100)
    ws.add_event_listener("open", onopen)
    try:
        ws.send("queued")
        ws_server_factory(echo_and_collect(received), port=port)
        assert in_onopen.wait(TIMEOUT)
        ws.send("from another thread")  # OPEN, but the queue has not gone out yet
        leave_onopen.set()
        wait_until(lambda: len(received) == 3)
    finally:
        leave_onopen.set()
        ws.close()
        assert ws.wait(TIMEOUT)
    assert received == ["first", "queued", "from another thread"]


def test_what_is_queued_at_the_final_close_is_dropped(caplog) -> None:
    rec = Recorder()
    ws = make(f"ws://127.0.0.1:{free_port()}/", rec, max_pending=100)
    ws.send("never")
    ws.close()
    assert ws.ready_state is ReadyState.CLOSING
    assert ws.wait(TIMEOUT)
    assert ws.buffered_amount == 5  # never sent, still counted, as WebSocket does
    ws.send("late")  # CLOSED: nothing sent, nothing raised, counted, warned once
    ws.send("later")
    assert ws.buffered_amount == 14
    warnings = [r for r in caplog.records if "CLOSING or CLOSED" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING


# -- close() ---------------------------------------------------------------------------------------


def test_close_during_a_wait_stops_at_once() -> None:
    rec = Recorder()
    ws = make(f"ws://127.0.0.1:{free_port()}/", rec, backoff=Backoff(initial=30, jitter=False))
    wait_until(lambda: rec.count("close") == 1)
    assert rec.of("close")[0].retry_delay == 30
    wait_until(lambda: any(t.name.startswith("syncws-reconnect-") for t in threading.enumerate()))
    started = time.monotonic()
    ws.close(4001, "bye")
    assert ws.ready_state is ReadyState.CLOSING
    assert ws.wait(2.0)
    assert time.monotonic() - started < 1.0
    final = rec.of("close")[-1]
    assert (final.code, final.reason, final.was_clean, final.reconnecting) == (4001, "bye", True, False)
    assert rec.types() == ["error", "close", "close"] and ws.ready_state is ReadyState.CLOSED
    assert wait_no_syncws_threads() == []


def test_close_during_an_attempt_cancels_it(ws_server_factory) -> None:
    server = ws_server_factory(handshake=HandshakeResponse.hang())
    rec = Recorder()
    ws = make(server.url, rec)
    conn = server.accepted()  # the handshake request arrived; no answer will come
    started = time.monotonic()
    ws.close()
    assert ws.wait(2.0) and time.monotonic() - started < 1.0
    assert rec.types() == ["close"]  # the cancelled attempt reports nothing
    final = rec.of("close")[0]
    assert (final.code, final.reason, final.was_clean, final.reconnecting) == (1000, "", True, False)
    assert conn.wait_eof(5) is not None  # the attempt's TCP connection was closed
    assert len(server.connections) == 1


def test_close_while_open_closes_the_connection_with_its_final_close(ws_server_factory) -> None:
    closes: List[Any] = []

    def handler(conn: ServerConnection) -> None:
        try:
            conn.recv()
        except ClientClosed as closed:
            closes.append((closed.code, closed.reason))

    server = ws_server_factory(handler)
    rec = Recorder()
    ws = make(server.url, rec)
    wait_until(lambda: rec.count("open") == 1)
    ws.close(4002, "done")
    assert ws.wait(TIMEOUT)
    assert closes == [(4002, "done")]
    final = rec.of("close")[0]  # the connection's own close event (the server echoed the code)
    assert (final.code, final.was_clean, final.reconnecting) == (4002, True, False)
    time.sleep(0.2)
    assert len(server.connections) == 1


def test_close_from_onerror_makes_the_coming_close_final() -> None:
    rec = Recorder()
    ws = make(f"ws://127.0.0.1:{free_port()}/", rec, connect=False)
    ws.add_event_listener("error", lambda e: e.target.close())
    ws.connect()
    assert ws.wait(TIMEOUT)
    assert rec.types() == ["error", "close"]
    assert rec.of("close")[0].code == 1006 and not rec.of("close")[0].reconnecting


def test_close_from_onclose_cancels_the_wait() -> None:
    rec = Recorder()
    ws = make(f"ws://127.0.0.1:{free_port()}/", rec, connect=False)
    ws.add_event_listener("close", lambda e: e.target.close(3001) if e.reconnecting else None)
    ws.connect()
    assert ws.wait(TIMEOUT)
    assert rec.types() == ["error", "close", "close"]
    assert [(c.code, c.reconnecting) for c in rec.of("close")] == [(1006, True), (3001, False)]


def test_close_validates_its_arguments_and_is_idempotent() -> None:
    ws = make(f"ws://127.0.0.1:{free_port()}/", Recorder())
    with pytest.raises(InvalidAccessError):
        ws.close(1001)
    with pytest.raises(TypeError):
        ws.close("1000")  # type: ignore[arg-type]
    with pytest.raises(DOMSyntaxError):
        ws.close(1000, "é" * 62)
    assert ws.ready_state is ReadyState.CONNECTING
    ws.close(1000, "ok")
    ws.close(4000)  # nothing more
    assert ws.wait(TIMEOUT)
    assert ws.ready_state is ReadyState.CLOSED


def test_connect_false_then_connect(ws_server) -> None:
    rec = Recorder()
    ws = make(ws_server.url, rec, connect=False)
    time.sleep(0.1)
    assert not ws_server.connections and rec.types() == []
    ws.connect()
    with pytest.raises(InvalidStateError):
        ws.connect()
    wait_until(lambda: rec.count("open") == 1)
    ws.close()
    assert ws.wait(TIMEOUT)


# -- the rest of the WebSocket API ---------------------------------------------------------------


def test_wait_is_for_the_final_close_and_not_from_a_handler(ws_server_factory) -> None:
    server = ws_server_factory(close_with(1001))
    rec = Recorder()
    raised: List[BaseException] = []

    def onclose(event: Any) -> None:
        try:
            event.target.wait(0)
        except InvalidStateError as exc:
            raised.append(exc)

    ws = make(server.url, rec, connect=False)
    ws.add_event_listener("close", onclose)
    ws.connect()
    wait_until(lambda: rec.count("close") >= 1)
    assert ws.wait(0.2) is False  # one connection ended; the socket did not
    ws.close()
    assert ws.wait(TIMEOUT)
    assert raised and all(isinstance(e, InvalidStateError) for e in raised)


def test_attributes_aliases_and_binary_type(ws_server) -> None:
    rec = Recorder()
    ws = make(ws_server.url, rec)
    try:
        assert ws.readyState is ReadyState.CONNECTING and ws.CONNECTING == 0
        assert ReconnectingWebSocket.OPEN == syncws.OPEN
        wait_until(lambda: rec.count("open") == 1)
        assert ws.readyState is ReadyState.OPEN and ws.bufferedAmount == 0
        ws.send(b"\x01\x02")
        wait_until(lambda: rec.count("message") == 1)
        assert isinstance(rec.of("message")[0].data, Blob) and bytes(rec.of("message")[0].data) == b"\x01\x02"
        assert rec.of("message")[0].origin == ws_server.url.rstrip("/")
        ws.binaryType = "arraybuffer"
        ws.send(bytearray(b"\x03"))
        wait_until(lambda: rec.count("message") == 2)
        assert rec.of("message")[1].data == b"\x03"
        with pytest.raises(DOMSyntaxError):
            ws.binary_type = "text"
        with pytest.raises(TypeError):
            ws.onopen = 3  # type: ignore[assignment]
        got: List[Any] = []
        ws.addEventListener("message", got.append)
        ws.send("x")
        wait_until(lambda: len(got) == 1)
        ws.removeEventListener("message", got.append)
        assert got[0].target is ws
        assert ws.latency is None or ws.latency >= 0
        assert "ReconnectingWebSocket" in repr(ws) and "OPEN" in repr(ws)
    finally:
        ws.close()
        assert ws.wait(TIMEOUT)


def test_context_manager_closes_with_1000(ws_server_factory) -> None:
    closes: List[Any] = []

    def handler(conn: ServerConnection) -> None:
        try:
            while True:
                conn.recv()
        except ClientClosed as closed:
            closes.append(closed.code)

    server = ws_server_factory(handler)
    rec = Recorder()
    with make(server.url, rec, max_pending=10) as ws:
        ws.send("hi")
        wait_until(lambda: rec.count("open") == 1)
    assert ws.ready_state is ReadyState.CLOSED and closes == [1000]


def test_events_are_delivered_in_order_on_a_pool(ws_server_factory) -> None:
    from concurrent.futures import ThreadPoolExecutor

    count = 40

    def burst_then_drop(conn: ServerConnection) -> None:
        for i in range(count):
            conn.send(str(i))
        conn.sleep(0.05)
        conn.abort()

    server = ws_server_factory(burst_then_drop)
    rec = Recorder()
    active = [0]
    overlap: List[bool] = []

    def slow(event: Any) -> None:
        active[0] += 1
        overlap.append(active[0] > 1)
        time.sleep(0.001)
        active[0] -= 1

    with ThreadPoolExecutor(8) as pool:
        ws = make(server.url, rec, executor=pool)
        ws.add_event_listener("message", slow)
        try:
            wait_until(lambda: rec.count("open") >= 3)
        finally:
            ws.close()
            assert ws.wait(TIMEOUT)
    data = [e.data for e in rec.of("message")]
    assert data[: 2 * count] == [str(i) for i in range(count)] * 2
    assert not any(overlap)


def test_inbound_flow_control_per_connection(ws_server_factory) -> None:
    """max_queue still stops the reader: the server's sends stall while a handler blocks."""
    count, size = 48, 1024 * 1024
    progress = {"sent": 0}

    def flood(conn: ServerConnection) -> None:
        payload = bytes(size)
        for i in range(count):
            conn.send(payload)
            progress["sent"] = i + 1
        try:
            while True:
                conn.recv()
        except ClientClosed:
            pass

    server = ws_server_factory(flood)
    release = threading.Event()
    received: List[int] = []

    def onmessage(event: Any) -> None:
        release.wait(TIMEOUT)
        received.append(len(event.data))

    ws = make(server.url, None, max_queue=2, binary_type="arraybuffer", onmessage=onmessage)
    try:
        last, still_since = -1, time.monotonic()
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() - still_since < 0.3:
            assert time.monotonic() < deadline, "the server never stalled"
            if progress["sent"] != last:
                last, still_since = progress["sent"], time.monotonic()
            time.sleep(0.01)
        assert progress["sent"] < count
        release.set()
        wait_until(lambda: len(received) == count)
    finally:
        release.set()
        ws.close()
        assert ws.wait(TIMEOUT)
    assert received == [size] * count


# -- lifetime and threads --------------------------------------------------------------------------


def test_a_socket_with_handlers_lives_without_a_reference(ws_server_factory) -> None:
    port = free_port()
    rec = Recorder()
    done = threading.Event()

    def onopen(event: Any) -> None:
        rec(event)
        if rec.count("open") == 2:
            event.target.close()

    make(f"ws://127.0.0.1:{port}/", None, onopen=onopen, onclose=lambda e: e.reconnecting or done.set())
    gc.collect()
    server = ws_server_factory(port=port)
    server.accepted().abort()
    gc.collect()
    assert done.wait(TIMEOUT)
    assert rec.count("open") == 2


def test_a_socket_nobody_can_hear_from_is_collected_and_closes(ws_server_factory) -> None:
    closes: List[Any] = []

    def handler(conn: ServerConnection) -> None:
        try:
            while True:
                conn.recv()
        except ClientClosed as closed:
            closes.append(closed.close)

    server = ws_server_factory(handler)
    ws = make(server.url, None, max_pending=10)
    ws.send("x")  # queued: a send() while CONNECTING
    conn = server.accepted()
    wait_until(lambda opened=ws: opened.ready_state is ReadyState.OPEN)  # type: ignore[misc]
    ref = weakref.ref(ws)
    del ws
    for _ in range(3):
        gc.collect()
    assert ref() is None
    assert conn.join(TIMEOUT)
    assert closes and closes[0].code is None  # a Close frame with no body
    assert wait_no_syncws_threads() == []


def test_no_thread_outlives_the_final_close_and_waits_use_one_thread() -> None:
    rec = Recorder()
    peak: List[int] = []
    ws = make(f"ws://127.0.0.1:{free_port()}/", rec, backoff=Backoff(initial=0.05, jitter=False, max_attempts=6))
    while not ws.wait(0.005):
        peak.append(sum(t.name.startswith("syncws-reconnect-") for t in threading.enumerate()))
    assert max(peak) <= 1
    assert wait_no_syncws_threads() == []


def test_queued_messages_keep_an_unreferenced_socket_alive(ws_server_factory) -> None:
    port = free_port()
    received: List[Any] = []
    ws = make(f"ws://127.0.0.1:{port}/", None, max_pending=100)
    ws.send("kept")
    ref = weakref.ref(ws)
    del ws
    gc.collect()
    assert ref() is not None  # it still has something to send
    ws_server_factory(echo_and_collect(received), port=port)
    wait_until(lambda: received == ["kept"])
    gc.collect()
    assert ref() is None  # sent, and no listener: nothing keeps it any more


def test_handshake_timeouts_are_retried(ws_server_factory) -> None:
    answers = iter([HandshakeResponse.hang()])
    server = ws_server_factory(handshake=lambda request, default: next(answers, default))
    rec = Recorder()
    ws = make(server.url, rec, open_timeout=0.3)
    try:
        wait_until(lambda: rec.count("open") == 1)
    finally:
        ws.close()
        assert ws.wait(TIMEOUT)
    assert isinstance(rec.of("error")[0].error, TimeoutError)
    assert rec.types()[:3] == ["error", "close", "open"]


def test_extensions_are_those_of_the_current_connection(ws_server_factory) -> None:
    from syncws.protocol.deflate import server_negotiate

    server = ws_server_factory(close_with(1012), extensions=[server_negotiate])
    seen: List[Any] = []
    ws = make(server.url, None, compression=True, connect=False)
    ws.add_event_listener("open", lambda e: seen.append(e.target.extensions))
    ws.add_event_listener("close", lambda e: seen.append(e.target.extensions))
    ws.connect()
    try:
        wait_until(lambda: len(seen) >= 3)
    finally:
        ws.close()
        assert ws.wait(TIMEOUT)
    assert seen[0].startswith("permessage-deflate") and seen[1] == "" and seen[2].startswith("permessage-deflate")


def test_inline_executor_delivers_on_syncws_threads(ws_server_factory) -> None:
    from syncws.executors import InlineExecutor

    port = free_port()
    rec = Recorder()
    names: List[str] = []
    ws = make(f"ws://127.0.0.1:{port}/", rec, executor=InlineExecutor())
    ws.add_event_listener("close", lambda e: names.append(threading.current_thread().name))
    wait_until(lambda: rec.count("close") >= 2)
    ws_server_factory(port=port)
    wait_until(lambda: rec.count("open") == 1)
    with pytest.raises(InvalidStateError):
        ws.recv()
    ws.close()
    assert ws.wait(TIMEOUT)
    assert rec.types()[-2:] == ["open", "close"]
    assert all(name.startswith("syncws-") or name == "MainThread" for name in names), names


def test_at_interpreter_exit_the_connection_closes_with_1001_and_is_not_retried(ws_server_factory) -> None:
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    codes: List[Any] = []

    def handler(conn: ServerConnection) -> None:
        try:
            while True:
                conn.recv()
        except ClientClosed as closed:
            codes.append(closed.code)

    server = ws_server_factory(handler)
    script = textwrap.dedent(
        f"""
        import threading, syncws
        opened = threading.Event()
        ws = syncws.ReconnectingWebSocket(
            {server.url!r}, proxy=None, onopen=lambda e: opened.set(),
            backoff=syncws.Backoff(initial=0, jitter=False),  # a retry would come at once
        )
        assert opened.wait(10)
        print("exiting", flush=True)
        """
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=30,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0 and result.stdout == "exiting\n", result.stderr
    wait_until(lambda: bool(codes))
    time.sleep(0.3)
    assert codes == [1001] and len(server.connections) == 1


def test_extension_mismatch_is_final(ws_server_factory) -> None:
    def handshake(request: Any, default: HandshakeResponse) -> HandshakeResponse:
        return default.add_header("Sec-WebSocket-Extensions", "x-not-offered")

    server = ws_server_factory(handshake=handshake)
    rec = Recorder()
    ws = make(server.url, rec)  # compression=False: nothing offered
    assert ws.wait(TIMEOUT)
    assert rec.types() == ["error", "close"] and not rec.of("close")[0].reconnecting
    error = rec.of("error")[0].error
    assert isinstance(error, HandshakeError) and error.status == 101
