"""The I/O engine seen from outside: its threads, keepalive, timeouts, back-pressure from a peer
that stops reading, simultaneous large transfers, TLS, IPv6 and debug logging."""

from __future__ import annotations

import gc
import logging
import os
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, List, Optional, Tuple

import pytest

import syncws
from syncws import KeepaliveTimeout, ReadyState, WebSocket
from syncws.server import CloseInfo, ServerConnection, hold

from helpers import (
    OPTS,
    THREAD_PREFIXES,
    TIMEOUT,
    client_close_of,
    only,
    record,
    syncws_threads,
    types,
    wait_gone,
)

MiB = 1024 * 1024


def deaf(conn: ServerConnection) -> None:
    """Never read (so pings go unanswered and TCP pushes back), with a small receive buffer."""
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    hold(conn)


def send_zero(event: Any) -> None:
    """An onopen handler starting a conversation."""
    event.target.send("0")


def wait_open(ws: WebSocket, events: List[Tuple[str, Any]]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while "open" not in types(events):
        assert time.monotonic() < deadline and ws.ready_state is not ReadyState.CLOSED, types(events)
        time.sleep(0.005)


# -- threads -----------------------------------------------------------------------------------


def idle_thread_names(before: set, timeout: float = 3.0) -> List[str]:
    """The kinds of syncws thread running once an idle writer had time to end."""
    deadline = time.monotonic() + timeout
    while True:
        names = sorted(t.name.rsplit("-", 1)[0] for t in syncws_threads() if t not in before)
        if "syncws-writer" not in names or time.monotonic() > deadline:
            return names
        time.sleep(0.01)


def test_threads_are_named_and_end_after_close(ws_server) -> None:
    before = set(syncws_threads())
    ws, events = record(ws_server.url)
    wait_open(ws, events)
    # The thread budget: an idle open connection runs its reader and, with the default
    # executor, its dispatcher; no writer and no timer.
    assert idle_thread_names(before) == ["syncws-dispatch", "syncws-reader"]
    mine = [t for t in syncws_threads() if t not in before]
    assert all(t.daemon for t in mine)
    ws.close()
    assert ws.wait(TIMEOUT)
    assert wait_gone(mine) == []
    assert [t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIXES) and t not in before] == []


def test_a_pool_executor_means_no_dispatch_thread(ws_server) -> None:
    before = set(syncws_threads())
    with ThreadPoolExecutor(max_workers=2) as pool:
        ws, events = record(ws_server.url, executor=pool)
        wait_open(ws, events)
        assert idle_thread_names(before) == ["syncws-reader"]
        ws.close()
        assert ws.wait(TIMEOUT)
    assert wait_gone([t for t in syncws_threads() if t not in before]) == []


def test_the_writer_thread_runs_only_while_a_write_must_wait(ws_server_factory) -> None:
    server = ws_server_factory(deaf)
    before = set(syncws_threads())
    with ThreadPoolExecutor(max_workers=1) as pool:
        ws, events = record(server.url, executor=pool, ping_interval=None)
        wait_open(ws, events)
        assert idle_thread_names(before) == ["syncws-reader"]
        ws.send(b"x" * (8 * MiB))  # more than the socket takes: a writer must wait
        names = sorted(t.name.rsplit("-", 1)[0] for t in syncws_threads() if t not in before)
        assert names == ["syncws-reader", "syncws-writer"]
        assert ws.buffered_amount > 0
        server.accepted().release()  # the server's handler returns: it reads no more, closes
        ws.close()
        assert ws.wait(TIMEOUT)
    assert wait_gone([t for t in syncws_threads() if t not in before]) == []


def test_no_thread_survives_a_failed_connection() -> None:
    before = set(syncws_threads())
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        ws, events = record(f"ws://127.0.0.1:{sock.getsockname()[1]}/")
        assert ws.wait(TIMEOUT)
    assert types(events) == ["error", "close"]
    assert wait_gone([t for t in syncws_threads() if t not in before]) == []


def test_collected_open_socket_closes_with_an_empty_close_frame(ws_server_factory) -> None:
    closes: List[Optional[CloseInfo]] = []
    server = ws_server_factory(lambda conn: closes.append(client_close_of(conn)))
    before = set(syncws_threads())
    opened = threading.Event()
    ws = WebSocket(server.url, onopen=lambda e: opened.set(), **OPTS)
    assert opened.wait(TIMEOUT)
    del ws
    gc.collect()
    assert server.accepted().join(TIMEOUT)
    assert closes == [CloseInfo(None, "")]  # the standard's rule for a collected socket
    assert wait_gone([t for t in syncws_threads() if t not in before]) == []


# -- keepalive and timeouts --------------------------------------------------------------------


def test_keepalive_timeout_fails_the_connection(ws_server_factory) -> None:
    server = ws_server_factory(deaf)
    ws, events = record(server.url, ping_interval=0.2, ping_timeout=0.3)
    wait_open(ws, events)
    started = time.monotonic()
    assert ws.wait(TIMEOUT)
    assert 0.4 < time.monotonic() - started < 3.0
    assert types(events) == ["open", "error", "close"]
    error = only(events, "error").error
    assert isinstance(error, KeepaliveTimeout) and isinstance(error, TimeoutError)
    close = only(events, "close")
    assert (close.code, close.was_clean) == (1006, False)


def test_keepalive_keeps_a_live_connection_open(ws_server) -> None:
    ws, events = record(ws_server.url, ping_interval=0.05, ping_timeout=0.2)
    wait_open(ws, events)
    assert ws.wait(0.8) is False  # many pings and pongs later, still open
    assert ws.ready_state is ReadyState.OPEN and ws.latency is not None
    ws.close()
    assert ws.wait(TIMEOUT)
    assert types(events) == ["open", "close"] and only(events, "close").was_clean


def test_open_timeout(ws_server_factory) -> None:
    from syncws.server import HandshakeResponse

    server = ws_server_factory(handshake=HandshakeResponse.hang())
    started = time.monotonic()
    ws, events = record(server.url, open_timeout=0.3)
    assert ws.wait(TIMEOUT)
    assert 0.25 < time.monotonic() - started < 2.0
    assert types(events) == ["error", "close"]
    assert isinstance(only(events, "error").error, TimeoutError)
    assert only(events, "close").code == 1006


def test_close_timeout_when_the_server_keeps_tcp_open(ws_server_factory) -> None:
    """The server answers the Close but never closes TCP: the client does, after close_timeout,
    and the close is still clean (both Close frames were exchanged)."""
    answered: List[CloseInfo] = []

    def script(conn: ServerConnection) -> None:
        answered.append(conn.expect_close())
        hold(conn)

    server = ws_server_factory(script)
    ws, events = record(server.url, close_timeout=0.5)
    wait_open(ws, events)
    started = time.monotonic()
    ws.close(4000)
    assert ws.wait(TIMEOUT)
    assert 0.4 < time.monotonic() - started < 2.5
    close = only(events, "close")
    assert (close.code, close.was_clean) == (4000, True)
    assert answered == [CloseInfo(4000, "")]


def test_peer_that_stops_reading(ws_server_factory) -> None:
    server = ws_server_factory(deaf)
    ws, events = record(server.url, close_timeout=1.0, max_buffered_amount=None)
    wait_open(ws, events)
    chunk = b"\x5a" * MiB
    started = time.monotonic()
    for _ in range(64):
        ws.send(chunk)
    assert time.monotonic() - started < 5.0
    assert ws.buffered_amount > 48 * MiB  # the sends did not wait for the network
    started = time.monotonic()
    ws.close()
    assert time.monotonic() - started < 0.1  # close() never blocks either
    assert ws.ready_state is ReadyState.CLOSING
    assert ws.wait(TIMEOUT)
    assert 0.9 < time.monotonic() - started < 2.5  # ended by close_timeout
    assert types(events) == ["open", "close"]  # closing, not failing: no error event
    close = only(events, "close")
    assert (close.code, close.was_clean) == (1006, False)


def test_simultaneous_16_mib_messages_both_ways(ws_server_factory) -> None:
    to_client = os.urandom(16 * MiB)
    to_server = os.urandom(16 * MiB)
    received: List[Any] = []

    def script(conn: ServerConnection) -> None:
        sender = threading.Thread(target=conn.send, args=(to_client,))
        sender.start()  # sending and receiving at the same time
        received.append(conn.recv(timeout=30))
        sender.join()
        client_close_of(conn)

    server = ws_server_factory(script)
    ws = syncws.connect(server.url, **OPTS)
    ws.send(to_server)
    data = ws.recv(timeout=30)
    assert data == to_client
    ws.close()
    assert ws.wait(TIMEOUT)
    server.accepted().join(TIMEOUT)
    assert received == [to_server]


# -- concurrency -------------------------------------------------------------------------------


def test_handlers_can_send_and_close_on_their_own_socket(ws_server) -> None:
    rounds = 500
    seen: List[int] = []

    def onmessage(event: Any) -> None:
        seen.append(int(event.data))
        if len(seen) == rounds:
            event.target.close(1000, "done")
        else:
            event.target.send(str(len(seen)))

    ws, events = record(ws_server.url, onopen=send_zero, onmessage=onmessage)
    assert ws.wait(TIMEOUT)
    assert seen == list(range(rounds))
    close = only(events, "close")
    assert (close.code, close.was_clean) == (1000, True)


def test_handlers_on_the_reader_thread_can_send(ws_server) -> None:
    from syncws.executors import InlineExecutor

    received: List[str] = []

    threads: List[str] = []

    def onmessage(event: Any) -> None:
        threads.append(threading.current_thread().name)
        received.append(event.data)
        if len(received) < 100:
            event.target.send(str(len(received)))
        else:
            event.target.close()

    ws = WebSocket(
        ws_server.url, executor=InlineExecutor(), onopen=send_zero, onmessage=onmessage, **OPTS
    )
    assert ws.wait(TIMEOUT)
    assert received == [str(i) for i in range(100)]
    assert all(name.startswith("syncws-reader-") for name in threads)


# -- TLS ---------------------------------------------------------------------------------------


def test_wss_echo(ws_server_factory, ws_tls) -> None:
    server = ws_server_factory(ssl_context=ws_tls.server)
    assert server.url.startswith("wss://")
    ws = syncws.connect(server.url, ssl=ws_tls.client, **OPTS)
    messages = ["x" * n for n in (0, 1, 125, 126, 65536)] + [os.urandom(2 * MiB)]
    for message in messages:
        ws.send(message)
    assert [ws.recv(TIMEOUT) for _ in messages] == messages
    ws.close(1000)
    assert ws.wait(TIMEOUT)


def test_default_context_rejects_an_unknown_ca(ws_server_factory, ws_tls) -> None:
    server = ws_server_factory(ssl_context=ws_tls.server)
    ws, events = record(server.url)  # ssl=None: certifi's CA bundle
    assert ws.wait(TIMEOUT)
    assert types(events) == ["error", "close"]
    error = only(events, "error").error
    assert isinstance(error, ssl.SSLCertVerificationError), repr(error)
    assert only(events, "close").code == 1006
    with pytest.raises(ssl.SSLError):
        syncws.connect(server.url, **OPTS)


def test_host_name_mismatch_fails(ws_server_factory) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("example.org").configure_cert(server_context)  # not valid for 127.0.0.1
    client_context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(client_context)
    server = ws_server_factory(ssl_context=server_context)
    ws, events = record(server.url, ssl=client_context)
    assert ws.wait(TIMEOUT)
    assert types(events) == ["error", "close"]
    error = only(events, "error").error
    assert isinstance(error, ssl.SSLCertVerificationError), repr(error)
    assert "mismatch" in str(error) or "doesn't match" in str(error) or error.verify_code == 62


# -- IPv6 and logging --------------------------------------------------------------------------


def ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 on loopback")
def test_ipv6_literal(ws_server_factory) -> None:
    server = ws_server_factory(host="::1")
    url = f"ws://[::1]:{server.port}/"
    ws, events = record(url, onopen=send_zero)
    assert ws.url == url
    deadline = time.monotonic() + TIMEOUT
    while "message" not in types(events) and time.monotonic() < deadline:
        time.sleep(0.005)
    message = only(events, "message")
    assert message.data == "0" and message.origin == f"ws://[::1]:{server.port}"
    assert server.accepted().address[0] == "::1"
    ws.close()
    assert ws.wait(TIMEOUT)


def test_debug_logging_shows_the_protocol(ws_server_factory, caplog) -> None:
    def script(conn: ServerConnection) -> None:
        conn.ping(b"hey")
        conn.send("x")
        conn.close(4000, "bye")
        conn.expect_close()

    server = ws_server_factory(script)
    caplog.set_level(logging.DEBUG, logger="syncws")
    ws, events = record(server.url)
    assert ws.wait(TIMEOUT)
    lines = [r.getMessage() for r in caplog.records if r.name == "syncws" and r.levelno == logging.DEBUG]
    text = "\n".join(lines)
    assert "> GET / HTTP/1.1" in text
    assert "< HTTP 101" in text
    assert any("ping" in line and "hey" in line for line in lines), text
    assert any("Close" in line and "4000" in line for line in lines), text
    assert any("closed" in line and "4000" in line for line in lines), text


def test_interpreter_exit_closes_open_sockets_with_1001(ws_server_factory):
    """The standard's "document goes away": a script that ends with a socket open sends 1001."""
    import subprocess
    import sys

    server = ws_server_factory(syncws.server.hold)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    script = (
        "import syncws\n"
        f"ws = syncws.connect({server.url!r}, proxy=None, compression=False)\n"
        "ws.send('bye soon')\n"
    )
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    child = subprocess.run([sys.executable, "-c", script], env=env, timeout=30, capture_output=True)
    assert child.returncode == 0, child.stderr
    conn = server.accepted(5)
    assert conn.recv(5) == "bye soon"
    assert conn.expect_close(5).code == 1001


@pytest.mark.parametrize("inline", [False, True], ids=["default-executor", "inline"])
def test_messages_before_a_protocol_error_are_answered_before_the_failing_close(
    ws_server_factory, inline
):
    """A valid message and a bad frame in one segment: the echo goes out, then Close 1002."""
    from syncws.executors import InlineExecutor
    from syncws.server import Opcode

    server = ws_server_factory(hold)
    events: List[str] = []
    ws = WebSocket(
        server.url,
        proxy=None,
        compression=False,
        executor=InlineExecutor() if inline else None,
        onmessage=lambda e: e.target.send(e.data),
        onerror=lambda e: events.append(f"error {type(e.error).__name__}"),
        onclose=lambda e: events.append(f"close {e.code}"),
    )
    conn = server.accepted(5)
    conn.send_raw(b"\x81\x05Hello" + b"\xa1\x05Hello")  # then RSV2 set: a protocol error
    frames = [conn.recv_frame(5), conn.recv_frame(5)]
    assert [(f.opcode, f.payload) for f in frames] == [
        (Opcode.TEXT, b"Hello"),
        (Opcode.CLOSE, (1002).to_bytes(2, "big")),
    ]
    assert ws.wait(5)
    assert events == ["error ProtocolError", "close 1006"]
