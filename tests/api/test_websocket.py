"""End-to-end tests of the ``WebSocket`` class against the documented API (WHATWG rules).

Constructor validation, attributes and aliases, ``send()``/``close()`` rules and the event life
cycle, each checked over a real connection to syncws's scriptable server on 127.0.0.1.
"""

from __future__ import annotations

import logging
import queue
import re
import socket
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional

import pytest

import syncws
from syncws import (
    Blob,
    CloseEvent,
    DOMSyntaxError,
    ErrorEvent,
    Event,
    InvalidAccessError,
    InvalidStateError,
    MessageEvent,
    ReadyState,
    WebSocket,
)
from syncws.protocol.frames import Opcode
from syncws.server import ClientClosed, CloseInfo, HandshakeResponse, ServerConnection, hold

from helpers import wait_until

OPTS: Dict[str, Any] = dict(compression=False, proxy=None)
TYPES = ("open", "message", "error", "close")
TIMEOUT = 5.0
#: Larger than what loopback's socket buffers absorb from a peer that never reads: once such a
#: message is in the writer, nothing queued after it reaches the OS and buffered_amount can
#: only grow (the writer counts bytes as written when a whole batch has been handed over).
STALL = 32 * 1024 * 1024


class Record(NamedTuple):
    type: str
    state: ReadyState  # ready_state while the listener ran
    event: Event


class Recorder:
    """Listens to every event type of a WebSocket, in order, with the ready_state seen."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.records: List[Record] = []
        self._cond = threading.Condition()
        for type in TYPES:
            ws.add_event_listener(type, self._on_event)

    def _on_event(self, event: Event) -> None:
        with self._cond:
            self.records.append(Record(event.type, self.ws.ready_state, event))
            self._cond.notify_all()

    @property
    def types(self) -> List[str]:
        return [r.type for r in self.records]

    def of(self, type: str) -> List[Any]:
        return [r.event for r in self.records if r.type == type]

    @property
    def data(self) -> List[Any]:
        return [e.data for e in self.of("message")]

    @property
    def close(self) -> CloseEvent:
        (event,) = self.of("close")
        return event

    @property
    def error(self) -> ErrorEvent:
        (event,) = self.of("error")
        return event

    def wait_for(self, predicate: Callable[[], bool], timeout: float = TIMEOUT) -> None:
        with self._cond:
            assert self._cond.wait_for(predicate, timeout), f"timed out; events: {self.types}"

    def check_life_cycle(self) -> None:
        """open at most once, then messages, error at most once, close exactly once and last;
        OPEN inside open, CLOSED inside error and close."""
        assert re.fullmatch(r"(open,)?(message,)*(error,)?close,", "".join(t + "," for t in self.types)), self.types
        for record in self.records:
            if record.type == "open":
                assert record.state is ReadyState.OPEN
            elif record.type in ("error", "close"):
                assert record.state is ReadyState.CLOSED


class Collect:
    """A server handler recording each message it receives and the client's Close
    (``None`` when TCP ended without one). With ``gated=True`` it reads nothing until
    ``gate.set()``, so that a client's Close stays unanswered (the client stays CLOSING)."""

    def __init__(self, gated: bool = False) -> None:
        self.messages: List[Any] = []
        self.close: Optional[CloseInfo] = None
        self.done = threading.Event()
        self.gate = threading.Event()
        if not gated:
            self.gate.set()

    def __call__(self, conn: ServerConnection) -> None:
        try:
            assert self.gate.wait(TIMEOUT), "the test never opened the gate"
            while True:
                self.messages.append(conn.recv())
        except ClientClosed as exc:
            self.close = exc.close
        finally:
            self.done.set()

    def wait(self) -> "Collect":
        assert self.done.wait(TIMEOUT), "the server never saw the connection end"
        return self


@pytest.fixture
def make_ws() -> Iterator[Callable[..., "tuple[WebSocket, Recorder]"]]:
    """``make_ws(url, protocols=None, connect=True, **options)`` -> ``(ws, recorder)``; the
    recorder listens before the connection starts. Every socket is closed at teardown."""
    made: List[WebSocket] = []

    def factory(url: str, protocols: Any = None, *, connect: bool = True, **options: Any):
        ws = WebSocket(url, protocols, connect=False, **{**OPTS, **options})
        made.append(ws)
        recorder = Recorder(ws)
        if connect:
            ws.connect()
        return ws, recorder

    yield factory
    for ws in made:
        ws.close()
    for ws in made:
        assert ws.wait(TIMEOUT)


def refused_port() -> "tuple[socket.socket, int]":
    """A loopback port bound but not listening: connecting to it is refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock, sock.getsockname()[1]


# -- constructor -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "",
        "not a url",
        "/relative/path",
        "//host/no-scheme",
        "ftp://example.com/",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "ws://example.com/#",
        "ws://example.com/#frag",
        "wss://example.com/path?q#",
        "http://example.com/#x",
        "ws://",
        "ws://example.com:65536/",
        "ws://example.com:port/",
        "ws://[::1/",
        "ws://exa mple.com/",
    ],
)
def test_bad_urls_raise_syntax_error(url: str) -> None:
    with pytest.raises(DOMSyntaxError) as info:
        WebSocket(url, **OPTS)
    assert info.value.name == "SyntaxError"
    assert isinstance(info.value, ValueError) and not isinstance(info.value, SyntaxError)


@pytest.mark.parametrize(
    "protocols",
    [
        "",
        [""],
        ["chat", ""],
        ["echo", "eCho"],
        ["chat", "chat"],
        ["a b"],
        ["a,b"],
        ["chat/1"],
        ["é"],
        ["x\n"],
        ["(x)"],
        'a"b',
    ],
)
def test_bad_protocols_raise_syntax_error(protocols: Any) -> None:
    with pytest.raises(DOMSyntaxError):
        WebSocket("ws://127.0.0.1:1/", protocols, **OPTS)


@pytest.mark.parametrize(
    "args, kwargs",
    [
        ((b"ws://127.0.0.1:1/",), {}),
        ((None,), {}),
        (("ws://127.0.0.1:1/", 5), {}),
        (("ws://127.0.0.1:1/", [b"chat"]), {}),
        (("ws://127.0.0.1:1/", b"chat"), {}),
        (("ws://127.0.0.1:1/",), {"binary_type": 1}),
        (("ws://127.0.0.1:1/",), {"onopen": "not callable"}),
        (("ws://127.0.0.1:1/",), {"onmessage": 42}),
        (("ws://127.0.0.1:1/",), {"onclose": object()}),
        (("ws://127.0.0.1:1/",), {"executor": 3}),
        (("ws://127.0.0.1:1/",), {"headers": 7}),
        (("ws://127.0.0.1:1/",), {"headers": "X-A: b"}),
        (("ws://127.0.0.1:1/",), {"origin": 1}),
        (("ws://127.0.0.1:1/",), {"user_agent": b"ua"}),
        (("ws://127.0.0.1:1/",), {"cookies": {}}),
        (("ws://127.0.0.1:1/",), {"ssl": "no"}),
        (("ws://127.0.0.1:1/",), {"proxy": 8080}),
        (("ws://127.0.0.1:1/",), {"open_timeout": "1"}),
        (("ws://127.0.0.1:1/",), {"close_timeout": True}),
        (("ws://127.0.0.1:1/",), {"ping_interval": [1]}),
        (("ws://127.0.0.1:1/",), {"max_queue": 1.5}),
        (("ws://127.0.0.1:1/",), {"max_message_size": "1"}),
        (("ws://127.0.0.1:1/",), {"max_buffered_amount": 2.0}),
        (("ws://127.0.0.1:1/",), {"connect": "yes"}),
    ],
)
def test_wrong_types_raise_type_error(args: tuple, kwargs: dict) -> None:
    before = set(threading.enumerate())
    with pytest.raises(TypeError):
        WebSocket(*args, **{**OPTS, **kwargs})
    assert not [t for t in set(threading.enumerate()) - before if t.name.startswith("syncws")]


@pytest.mark.parametrize(
    "url, expected",
    [
        ("http://127.0.0.1:1/x?y=1", "ws://127.0.0.1:1/x?y=1"),
        ("https://Example.COM/chat", "wss://example.com/chat"),
        ("HTTP://example.com", "ws://example.com/"),
        ("ws://example.com:8080", "ws://example.com:8080/"),
        ("ws://example.com:80/a", "ws://example.com/a"),
        ("wss://example.com:443?q", "wss://example.com/?q"),
        ("wss://example.com:80/", "wss://example.com:80/"),
        ("ws://[::1]:9000", "ws://[::1]:9000/"),
        ("ws://example.com/a b", "ws://example.com/a%20b"),
    ],
)
def test_url_is_serialized(url: str, expected: str) -> None:
    assert WebSocket(url, connect=False, **OPTS).url == expected


def test_constructor_returns_at_once_while_the_handshake_hangs(ws_server_factory) -> None:
    server = ws_server_factory(handshake=HandshakeResponse.hang())
    started = time.monotonic()
    ws = WebSocket(server.url, **OPTS)
    elapsed = time.monotonic() - started
    try:
        assert elapsed < 0.5
        assert ws.ready_state is ReadyState.CONNECTING
        server.accepted()  # the connection really is being made in the background
        assert ws.ready_state is ReadyState.CONNECTING
    finally:
        ws.close()
        assert ws.wait(TIMEOUT)


def test_refused_connection_gives_error_then_close_1006(make_ws) -> None:
    sock, port = refused_port()
    with sock:
        ws, rec = make_ws(f"ws://127.0.0.1:{port}/")  # does not raise
        assert ws.wait(TIMEOUT)
    assert rec.types == ["error", "close"]
    rec.check_life_cycle()
    assert isinstance(rec.error.error, ConnectionRefusedError)
    assert rec.error.message
    assert (rec.close.code, rec.close.was_clean, rec.close.reason) == (1006, False, "")
    assert ws.ready_state is ReadyState.CLOSED


def test_handlers_passed_to_the_constructor_see_every_event(ws_server_factory) -> None:
    def script(conn: ServerConnection) -> None:
        conn.send("hello")
        conn.close(1000, "done")
        conn.expect_close()

    server = ws_server_factory(script)
    seen: List[tuple] = []
    ws = WebSocket(
        server.url,
        onopen=lambda e: seen.append(("open", e.type)),
        onmessage=lambda e: seen.append(("message", e.data)),
        onerror=lambda e: seen.append(("error", e.error)),
        onclose=lambda e: seen.append(("close", e.code, e.reason, e.was_clean)),
        **OPTS,
    )
    assert ws.wait(TIMEOUT)
    assert seen == [("open", "open"), ("message", "hello"), ("close", 1000, "done", True)]


def test_connect_false_waits_for_connect(ws_server, make_ws) -> None:
    ws, rec = make_ws(ws_server.url, connect=False)
    with pytest.raises(TimeoutError):
        ws_server.accepted(timeout=0.3)
    assert ws.ready_state is ReadyState.CONNECTING and rec.types == []
    ws.connect()
    rec.wait_for(lambda: "open" in rec.types)
    assert ws.ready_state is ReadyState.OPEN
    with pytest.raises(InvalidStateError):
        ws.connect()
    ws.close()
    assert ws.wait(TIMEOUT)
    with pytest.raises(InvalidStateError):
        ws.connect()
    assert rec.types == ["open", "close"]


def test_connect_on_a_socket_that_is_already_connecting_raises(ws_server, make_ws) -> None:
    ws, rec = make_ws(ws_server.url)
    with pytest.raises(InvalidStateError) as info:
        ws.connect()
    assert info.value.name == "InvalidStateError"


# -- attributes --------------------------------------------------------------------------------


def test_ready_state_constants() -> None:
    assert issubclass(ReadyState, int)
    assert [int(s) for s in (syncws.CONNECTING, syncws.OPEN, syncws.CLOSING, syncws.CLOSED)] == [0, 1, 2, 3]
    assert syncws.CONNECTING is ReadyState.CONNECTING and syncws.CLOSED is ReadyState.CLOSED
    assert WebSocket.CONNECTING == 0 and WebSocket.OPEN == 1
    assert WebSocket.CLOSING == 2 and WebSocket.CLOSED == 3
    ws = WebSocket("ws://127.0.0.1:1/", connect=False, **OPTS)
    assert ws.OPEN is ReadyState.OPEN
    assert ws.ready_state == 0 and isinstance(ws.ready_state, ReadyState)


def test_aliases_and_initial_attributes(ws_server, make_ws) -> None:
    ws, rec = make_ws(ws_server.url, connect=False)
    assert ws.readyState is ws.ready_state is ReadyState.CONNECTING
    assert ws.bufferedAmount == ws.buffered_amount == 0
    assert ws.binaryType == ws.binary_type == "blob"
    ws.binaryType = "arraybuffer"
    assert ws.binary_type == "arraybuffer"
    ws.binary_type = "blob"
    assert ws.binaryType == "blob"
    assert (ws.protocol, ws.extensions, ws.latency) == ("", "", None)
    assert ws.onopen is ws.onmessage is ws.onerror is ws.onclose is None
    ws.connect()
    rec.wait_for(lambda: "open" in rec.types)
    assert ws.readyState is ReadyState.OPEN


def test_binary_type_constructor_value() -> None:
    assert WebSocket("ws://127.0.0.1:1/", binary_type="arraybuffer", connect=False, **OPTS).binary_type == "arraybuffer"
    with pytest.raises(DOMSyntaxError):
        WebSocket("ws://127.0.0.1:1/", binary_type="bytes", connect=False, **OPTS)


@pytest.mark.parametrize(
    "value, error",
    [("Blob", DOMSyntaxError), ("ArrayBuffer", DOMSyntaxError), ("", DOMSyntaxError),
     ("bytes", DOMSyntaxError), (None, TypeError), (b"blob", TypeError), (1, TypeError)],
)
def test_binary_type_rejects_bad_values_and_stays_unchanged(value: Any, error: type) -> None:
    ws = WebSocket("ws://127.0.0.1:1/", connect=False, **OPTS)
    ws.binary_type = "arraybuffer"
    with pytest.raises(error):
        ws.binary_type = value
    assert ws.binary_type == "arraybuffer"
    with pytest.raises(error):
        ws.binaryType = value
    assert ws.binaryType == "arraybuffer"


@pytest.mark.parametrize("name", ["onopen", "onmessage", "onerror", "onclose"])
@pytest.mark.parametrize("value", [1, "handler", b"", object()])
def test_handler_attributes_reject_non_callables(name: str, value: Any) -> None:
    ws = WebSocket("ws://127.0.0.1:1/", connect=False, **OPTS)
    handler = lambda e: None  # noqa: E731
    setattr(ws, name, handler)
    with pytest.raises(TypeError):
        setattr(ws, name, value)
    assert getattr(ws, name) is handler
    setattr(ws, name, None)
    assert getattr(ws, name) is None


def test_protocol_and_extensions_are_empty_until_open(ws_server_factory, make_ws) -> None:
    from syncws.protocol.deflate import server_negotiate

    server = ws_server_factory(subprotocols=["chat"], extensions=[server_negotiate])
    ws, rec = make_ws(server.url, ["superchat", "chat"], connect=False, compression=True)
    at_open: List[tuple] = []
    ws.onopen = lambda e: at_open.append((ws.protocol, ws.extensions))
    assert (ws.protocol, ws.extensions) == ("", "")
    ws.connect()
    wait_until(lambda: bool(at_open))
    conn = server.accepted()
    sent_extensions = conn.response.header("Sec-WebSocket-Extensions")
    assert sent_extensions.startswith("permessage-deflate")
    assert at_open == [("chat", sent_extensions)]
    ws.send("still works compressed")
    ws.close()
    assert ws.wait(TIMEOUT)
    assert (ws.protocol, ws.extensions) == ("chat", sent_extensions)  # kept after close


def test_protocol_choice_is_matched_case_sensitively(ws_server_factory, make_ws) -> None:
    server = ws_server_factory(handshake=lambda request, response: response.set_header("Sec-WebSocket-Protocol", "CHAT"))
    ws, rec = make_ws(server.url, ["chat"])
    assert ws.wait(TIMEOUT)
    assert rec.types == ["error", "close"] and rec.close.code == 1006
    assert isinstance(rec.error.error, syncws.HandshakeError)


def test_handler_keeps_its_position_and_none_removes_it(ws_server_factory, make_ws) -> None:
    def script(conn: ServerConnection) -> None:
        conn.send("1")
        conn.recv()  # the client says when it has changed its handlers
        conn.send("2")
        conn.recv()

    server = ws_server_factory(script)
    ws, rec = make_ws(server.url, connect=False)
    order: List[str] = []
    ws.add_event_listener("message", lambda e: order.append("A"))
    ws.onmessage = lambda e: order.append("H1")
    ws.add_event_listener("message", lambda e: order.append("B"))
    ws.onmessage = lambda e: order.append("H2")  # keeps the first handler's position
    ws.connect()
    wait_until(lambda: len(order) == 3)
    assert order == ["A", "H2", "B"]
    ws.onmessage = None
    ws.onmessage = lambda e: order.append("H3")  # appended at the end again
    del order[:]
    ws.send("go")
    wait_until(lambda: len(order) == 3)
    assert order == ["A", "B", "H3"]


def test_latency_after_a_keepalive_round_trip(ws_server, make_ws) -> None:
    ws, rec = make_ws(ws_server.url, ping_interval=0.1, ping_timeout=2.0)
    assert ws.latency is None
    rec.wait_for(lambda: "open" in rec.types)
    deadline = time.monotonic() + TIMEOUT
    while ws.latency is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert isinstance(ws.latency, float) and 0 <= ws.latency < 1.0


# -- send() ------------------------------------------------------------------------------------


def test_send_types_reach_the_server(ws_server_factory, make_ws) -> None:
    collect = Collect()
    server = ws_server_factory(collect)
    ws, rec = make_ws(server.url)
    rec.wait_for(lambda: "open" in rec.types)
    base = b"0123456789"
    ws.send("text é")
    ws.send(b"bytes")
    ws.send(bytearray(b"bytearray"))
    ws.send(memoryview(base)[2:5])  # only the viewed bytes
    ws.send(memoryview(bytearray(base))[7:])
    ws.send(memoryview(b"xy").cast("c"))
    ws.send(Blob([b"bl", "ob", Blob([b"!"])]))
    ws.send("")
    ws.send(b"")
    ws.close()
    collect.wait()
    assert collect.messages == ["text é", b"bytes", b"bytearray", b"234", b"789", b"xy", b"blob!", "", b""]
    assert [type(m) for m in collect.messages] == [str] + [bytes] * 6 + [str, bytes]


BAD_DATA = [123, None, 1.5, ["x"], {"a": 1}, object(), True]


@pytest.mark.parametrize("data", BAD_DATA)
def test_send_type_is_checked_before_state(ws_server, make_ws, data: Any) -> None:
    ws, rec = make_ws(ws_server.url, connect=False)
    with pytest.raises(TypeError):  # CONNECTING: TypeError, not InvalidStateError
        ws.send(data)
    ws.connect()
    rec.wait_for(lambda: "open" in rec.types)
    with pytest.raises(TypeError):
        ws.send(data)
    ws.close()
    with pytest.raises(TypeError):  # CLOSING
        ws.send(data)
    assert ws.wait(TIMEOUT)
    with pytest.raises(TypeError):  # CLOSED
        ws.send(data)
    assert ws.buffered_amount == 0


@pytest.mark.parametrize("data", ["x", b"x", bytearray(b"x"), memoryview(b"x"), Blob([b"x"])])
def test_send_while_connecting_raises_invalid_state(ws_server_factory, make_ws, data: Any) -> None:
    server = ws_server_factory(handshake=HandshakeResponse.hang())
    ws, rec = make_ws(server.url)
    with pytest.raises(InvalidStateError) as info:
        ws.send(data)
    assert info.value.name == "InvalidStateError"
    assert ws.buffered_amount == 0


@pytest.fixture
def stalled(ws_server_factory) -> Iterator[Callable[..., "tuple[WebSocket, Recorder]"]]:
    """``stalled(**options)``: an open socket (from ``syncws.connect``) whose peer never reads,
    with ``STALL`` bytes stuck in the writer, and a recorder for the events after open."""
    server = ws_server_factory(hold)
    made: List[WebSocket] = []

    def factory(**options: Any):
        ws = syncws.connect(server.url, **{**OPTS, "close_timeout": 0.5, **options})
        made.append(ws)
        rec = Recorder(ws)
        ws.send(bytes(STALL))
        return ws, rec

    yield factory
    for ws in made:
        ws.close()
        assert ws.wait(TIMEOUT)


def test_buffered_amount_grows_by_utf8_length(stalled) -> None:
    ws, rec = stalled(max_buffered_amount=None)
    expected = STALL
    assert ws.buffered_amount == expected
    for text, size in [("x", 1), ("å", 2), ("匶", 3), ("𐑾", 4), ("\ud800", 3), ("\ud801\udc7e", 4), ("", 0)]:
        ws.send(text)
        expected += size
        assert ws.buffered_amount == ws.bufferedAmount == expected, text
    ws.send(b"abc")
    ws.send(memoryview(b"abcdef")[1:3])
    ws.send(Blob([b"12345"]))
    assert ws.buffered_amount == expected + 3 + 2 + 5


def test_lone_surrogates_are_sent_as_replacement_characters(ws_server_factory, make_ws) -> None:
    collect = Collect()
    server = ws_server_factory(collect)
    ws, rec = make_ws(server.url)
    rec.wait_for(lambda: "open" in rec.types)
    ws.send("a\ud800b")
    ws.send("\udc00")
    ws.send("\ud83d\ude00")  # a pair joins into one code point
    ws.send("\udc00\ud800")  # reversed: two lone surrogates
    ws.send("x\ud83d")
    ws.close()
    collect.wait()
    assert collect.messages == ["a\ufffdb", "\ufffd", "\U0001f600", "\ufffd\ufffd", "x\ufffd"]


def test_send_while_closing_or_closed_sends_nothing_but_counts(ws_server_factory, make_ws) -> None:
    collect = Collect(gated=True)
    server = ws_server_factory(collect)
    ws, rec = make_ws(server.url)
    rec.wait_for(lambda: "open" in rec.types)
    ws.send("before")
    ws.close()
    assert ws.send("é") is None  # CLOSING: no exception
    ws.send(b"abc")
    assert ws.ready_state is ReadyState.CLOSING
    collect.gate.set()
    assert ws.wait(TIMEOUT)
    assert ws.flush(TIMEOUT)
    assert ws.buffered_amount == 5  # what was sent after close() never drains
    ws.send(bytearray(4))  # CLOSED
    ws.send(Blob([b"zz"]))
    assert ws.buffered_amount == 11
    collect.wait()
    assert collect.messages == ["before"]
    assert rec.types == ["open", "close"]


def test_buffer_full_fails_the_connection(stalled) -> None:
    limit = 1024 * 1024
    ws, rec = stalled(max_buffered_amount=limit)  # STALL > limit went into an empty buffer
    assert ws.ready_state is ReadyState.OPEN and rec.types == []
    assert ws.buffered_amount == STALL
    assert ws.send("one more") is None  # flagged as full: no exception
    assert ws.wait(TIMEOUT)
    assert rec.types == ["error", "close"]
    rec.check_life_cycle()
    assert isinstance(rec.error.error, syncws.BufferFull)
    assert (rec.close.code, rec.close.was_clean) == (1006, False)


def test_concurrent_senders_never_interleave(ws_server_factory, make_ws) -> None:
    collect = Collect()
    server = ws_server_factory(collect)
    ws, rec = make_ws(server.url, max_buffered_amount=None)
    rec.wait_for(lambda: "open" in rec.types)
    threads, count = 8, 500
    barrier = threading.Barrier(threads)

    def payload(t: int, i: int) -> str:
        return f"{t}:{i}:" + chr(ord("a") + t) * ((i * 37) % 300)

    def sender(t: int) -> None:
        barrier.wait()
        for i in range(count):
            text = payload(t, i)
            ws.send(text if t % 2 else text.encode())

    workers = [threading.Thread(target=sender, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    ws.close()
    collect.wait()
    assert len(collect.messages) == threads * count
    per_thread: dict = {t: [] for t in range(threads)}
    for message in collect.messages:
        text = message if isinstance(message, str) else message.decode()
        t, i, _ = text.split(":", 2)
        t, i = int(t), int(i)
        assert text == payload(t, i)
        assert isinstance(message, str) == bool(t % 2)
        per_thread[t].append(i)
    assert all(seq == list(range(count)) for seq in per_thread.values())
    assert collect.close == CloseInfo(None, "")


# -- close() -----------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [0, 999, 1001, 1002, 1005, 1006, 1015, 2999, 5000, 65536, -1])
@pytest.mark.parametrize("connect", [False, True])
def test_close_rejects_codes_before_looking_at_state(code: int, connect: bool, ws_server_factory, make_ws) -> None:
    server = ws_server_factory(handshake=HandshakeResponse.hang())
    ws, rec = make_ws(server.url, connect=connect)
    with pytest.raises(InvalidAccessError) as info:
        ws.close(code)
    assert info.value.name == "InvalidAccessError"
    with pytest.raises(InvalidAccessError):  # step 1 comes before the reason's length
        ws.close(code, "x" * 200)
    assert ws.ready_state is ReadyState.CONNECTING


@pytest.mark.parametrize("code", ["1000", 1000.0, b"\x03\xe8", True])
def test_close_rejects_non_int_codes(code: Any) -> None:
    ws = WebSocket("ws://127.0.0.1:1/", connect=False, **OPTS)
    with pytest.raises(TypeError):
        ws.close(code)
    with pytest.raises(TypeError):
        ws.close(1000, b"reason")  # type: ignore[arg-type]
    assert ws.ready_state is ReadyState.CONNECTING


@pytest.mark.parametrize(
    "reason",
    ["a" * 124, "🔌" * 31, "é" * 62, "\ud800" * 42, "a" * 121 + "\udc00"],
    ids=["ascii-124", "plug-31", "e-acute-62", "lone-surrogates-126", "ascii-121+surrogate"],
)
def test_close_rejects_reasons_over_123_bytes(reason: str, ws_server, make_ws) -> None:
    ws, rec = make_ws(ws_server.url, connect=False)
    with pytest.raises(DOMSyntaxError):
        ws.close(1000, reason)
    with pytest.raises(DOMSyntaxError):
        ws.close(None, reason)
    assert ws.ready_state is ReadyState.CONNECTING
    ws.connect()
    rec.wait_for(lambda: "open" in rec.types)
    with pytest.raises(DOMSyntaxError):
        ws.close(4000, reason)
    assert ws.ready_state is ReadyState.OPEN


@pytest.mark.parametrize(
    "code, reason, on_wire",
    [
        (None, None, CloseInfo(None, "")),
        (None, "", CloseInfo(1000, "")),
        (None, "bye", CloseInfo(1000, "bye")),
        (1000, None, CloseInfo(1000, "")),
        (3000, "x", CloseInfo(3000, "x")),
        (4999, "a" * 123, CloseInfo(4999, "a" * 123)),
        (4000, "é" * 61 + "a", CloseInfo(4000, "é" * 61 + "a")),
        (4000, "\ud800" * 41, CloseInfo(4000, "\ufffd" * 41)),
        (4000, "\ud83d\udd0c" * 30, CloseInfo(4000, "🔌" * 30)),
    ],
)
def test_close_frame_on_the_wire(code: Optional[int], reason: Optional[str], on_wire: CloseInfo, ws_server_factory, make_ws) -> None:
    collect = Collect(gated=True)
    server = ws_server_factory(collect)
    ws, rec = make_ws(server.url)
    rec.wait_for(lambda: "open" in rec.types)
    assert ws.close(code, reason) is None
    assert ws.ready_state is ReadyState.CLOSING
    collect.gate.set()
    assert ws.wait(TIMEOUT)
    assert collect.wait().close == on_wire
    # The server echoes the code only; an empty Close is answered with an empty Close (1005).
    assert (rec.close.code, rec.close.was_clean) == (on_wire.code or 1005, True)
    assert rec.types == ["open", "close"]


def test_close_while_connecting(ws_server_factory, make_ws) -> None:
    server = ws_server_factory(handshake=HandshakeResponse.hang())
    ws, rec = make_ws(server.url)
    server.accepted()  # TCP is up, the handshake is waiting for an answer
    started = time.monotonic()
    assert ws.close(3000, "never mind") is None
    assert time.monotonic() - started < 0.2
    assert ws.ready_state is ReadyState.CLOSING  # right away
    ws.close()  # again: nothing
    assert ws.wait(TIMEOUT)
    assert rec.types == ["error", "close"]
    rec.check_life_cycle()
    assert (rec.close.code, rec.close.was_clean) == (1006, False)


def test_close_before_connect_is_called(make_ws) -> None:
    ws, rec = make_ws("ws://127.0.0.1:1/", connect=False)
    threads: List[int] = []
    ws.onerror = ws.onclose = lambda e: threads.append(threading.get_ident())
    ws.close()
    assert ws.ready_state is ReadyState.CLOSING
    assert ws.wait(TIMEOUT)
    assert threading.get_ident() not in threads  # queued, not dispatched inside close()
    assert rec.types == ["error", "close"]
    rec.check_life_cycle()
    assert (rec.close.code, rec.close.was_clean) == (1006, False)


def test_messages_sent_before_close_go_out_first(ws_server_factory, make_ws) -> None:
    collect = Collect()
    server = ws_server_factory(collect)
    ws, rec = make_ws(server.url)
    rec.wait_for(lambda: "open" in rec.types)
    sent = [f"m{i}" * (i % 50) for i in range(300)] + [b"\x00" * 200_000]
    for message in sent:
        ws.send(message)
    ws.close(4001, "after the messages")
    assert collect.wait().messages == sent
    assert collect.close == CloseInfo(4001, "after the messages")


def test_close_again_or_from_onclose_does_nothing(ws_server_factory, make_ws) -> None:
    collect = Collect(gated=True)
    server = ws_server_factory(collect)
    ws, rec = make_ws(server.url)
    results: List[Any] = []

    def onclose(event: CloseEvent) -> None:
        results.append(ws.close(1000, "from onclose"))
        results.append(ws.close(9999))  # still validated: step 1 comes first

    ws.onclose = onclose
    rec.wait_for(lambda: "open" in rec.types)
    ws.close(4002, "first")
    ws.close(4003, "second")
    assert ws.ready_state is ReadyState.CLOSING
    collect.gate.set()
    assert ws.wait(TIMEOUT)
    assert collect.wait().close == CloseInfo(4002, "first")
    assert rec.types == ["open", "close"]
    assert results == [None]  # close(9999) raised InvalidAccessError, which was logged


def test_undelivered_messages_are_dropped_by_close(ws_server_factory, make_ws) -> None:
    sent = threading.Event()

    def script(conn: ServerConnection) -> None:
        for i in range(5):
            conn.send(f"m{i}")
        sent.set()
        Collect()(conn)

    server = ws_server_factory(script)
    ws, rec = make_ws(server.url, connect=False)
    entered, release = threading.Event(), threading.Event()

    def slow_first(event: MessageEvent) -> None:
        if event.data == "m0":
            entered.set()
            release.wait(TIMEOUT)

    ws.onmessage = slow_first
    ws.connect()
    assert entered.wait(TIMEOUT) and sent.wait(TIMEOUT)
    ws.close()
    release.set()
    assert ws.wait(TIMEOUT)
    assert rec.data == ["m0"]
    assert rec.types == ["open", "message", "close"]


# -- life cycle and events ---------------------------------------------------------------------


def test_life_cycle_of_a_normal_session(ws_server, make_ws) -> None:
    ws, rec = make_ws(ws_server.url)
    rec.wait_for(lambda: "open" in rec.types)
    for i in range(10):
        ws.send(str(i))
    rec.wait_for(lambda: len(rec.data) == 10)
    ws.close(1000)
    assert ws.wait(TIMEOUT)
    rec.check_life_cycle()
    assert rec.data == [str(i) for i in range(10)]
    assert (rec.close.code, rec.close.reason, rec.close.was_clean) == (1000, "", True)


@pytest.mark.parametrize(
    "violation, error_type, wire_code",
    [
        (lambda conn: conn.send_frame(Opcode.TEXT, b"c", rsv2=True), syncws.ProtocolError, 1002),
        (lambda conn: conn.send_frame(Opcode.BINARY, b"c", mask=True), syncws.ProtocolError, 1002),
        (lambda conn: conn.send_frame(Opcode.TEXT, b"ok\xff"), syncws.PayloadError, 1007),
        (lambda conn: conn.send(b"x" * 2048), syncws.MessageTooBig, 1009),
    ],
    ids=["reserved-bit", "masked-frame", "invalid-utf8", "too-big"],
)
def test_protocol_error_after_messages(violation, error_type, wire_code, ws_server_factory, make_ws) -> None:
    client_close: List[CloseInfo] = []

    def script(conn: ServerConnection) -> None:
        conn.send("a")
        conn.send(b"b")
        violation(conn)
        client_close.append(conn.expect_close())

    server = ws_server_factory(script)
    ws, rec = make_ws(server.url, binary_type="arraybuffer", max_message_size=1024)
    assert ws.wait(TIMEOUT)
    assert rec.types == ["open", "message", "message", "error", "close"]
    rec.check_life_cycle()
    assert rec.data == ["a", b"b"]
    assert isinstance(rec.error.error, error_type)
    assert (rec.close.code, rec.close.was_clean) == (1006, False)  # whatever went on the wire
    server.accepted().join(TIMEOUT)
    assert client_close and client_close[0].code == wire_code  # the RFC code goes on the wire


def test_handshake_refusal_is_carried_by_the_error_event(ws_server_factory, make_ws) -> None:
    server = ws_server_factory(handshake=HandshakeResponse(403, body=b"forbidden"))
    ws, rec = make_ws(server.url)
    assert ws.wait(TIMEOUT)
    assert rec.types == ["error", "close"]
    error = rec.error.error
    assert isinstance(error, syncws.HandshakeError) and error.status == 403 and error.body == b"forbidden"
    assert (rec.close.code, rec.close.was_clean) == (1006, False)


@pytest.mark.parametrize(
    "code, reason, expected",
    [(None, "", (1005, "", True)), (1000, "", (1000, "", True)), (4000, "bye ✓", (4000, "bye ✓", True))],
)
def test_server_initiated_close(code: Optional[int], reason: str, expected: tuple, ws_server_factory, make_ws) -> None:
    echoed: List[CloseInfo] = []

    def script(conn: ServerConnection) -> None:
        conn.close(code, reason)
        echoed.append(conn.expect_close(reply=False))

    server = ws_server_factory(script)
    ws, rec = make_ws(server.url)
    assert ws.wait(TIMEOUT)
    assert rec.types == ["open", "close"]
    assert (rec.close.code, rec.close.reason, rec.close.was_clean) == expected
    server.accepted().join(TIMEOUT)
    assert echoed == [CloseInfo(code, "")]  # the client echoes the code (empty for empty)


@pytest.mark.parametrize("how", ["reset", "fin"])
def test_abrupt_end_is_1006_not_clean(how: str, ws_server_factory, make_ws) -> None:
    def script(conn: ServerConnection) -> None:
        conn.send("last words")
        if how == "reset":
            conn.abort()
        # "fin": returning closes TCP without a Close frame

    server = ws_server_factory(script)
    ws, rec = make_ws(server.url)
    assert ws.wait(TIMEOUT)
    rec.check_life_cycle()
    # After a reset the message may be lost with the connection; after a FIN it may not.
    assert rec.types[-2:] == ["error", "close"] and rec.data in (["last words"], [])
    if how == "fin":
        assert rec.data == ["last words"]
    assert isinstance(rec.error.error, OSError)
    assert (rec.close.code, rec.close.was_clean) == (1006, False)


def test_message_event_attributes(ws_server_factory, make_ws) -> None:
    def script(conn: ServerConnection) -> None:
        conn.send("text")
        conn.send(b"\x00\x01")
        Collect()(conn)

    server = ws_server_factory(script)
    ws, rec = make_ws(server.url, connect=False)
    inside: List[tuple] = []
    ws.onmessage = lambda e: inside.append((e.target, e.current_target, e.currentTarget))
    ws.connect()
    wait_until(lambda: len(inside) == 2)
    text, binary = rec.of("message")
    assert isinstance(text, MessageEvent) and text.type == "message"
    assert text.data == "text"
    assert isinstance(binary.data, Blob) and binary.data.bytes() == b"\x00\x01"
    for event in (text, binary):
        assert event.origin == f"ws://127.0.0.1:{server.port}"
        assert event.last_event_id == event.lastEventId == ""
        assert event.bubbles is False and event.cancelable is False
        assert event.target is ws and event.current_target is None  # None after dispatch
        assert isinstance(event.time_stamp, float) and event.timeStamp == event.time_stamp
    assert inside == [(ws, ws, ws)] * 2


def test_events_are_immutable(ws_server_factory, make_ws) -> None:
    def script(conn: ServerConnection) -> None:
        conn.send("x")
        conn.close(1000)
        conn.expect_close()

    server = ws_server_factory(script)
    ws, rec = make_ws(server.url)
    assert ws.wait(TIMEOUT)
    for record in rec.records:
        event = record.event
        for name in ("type", "target", "data", "code", "was_clean", "time_stamp", "new_attribute"):
            with pytest.raises(AttributeError):
                setattr(event, name, 1)
        with pytest.raises(AttributeError):
            del event.type
    assert rec.close.code == 1000 and rec.data == ["x"]


def test_add_remove_and_once_listeners(ws_server_factory, make_ws) -> None:
    def script(conn: ServerConnection) -> None:
        for i in range(3):
            conn.send(str(i))
        Collect()(conn)

    server = ws_server_factory(script)
    ws, rec = make_ws(server.url, connect=False)
    once: List[str] = []
    removed: List[str] = []
    camel: List[str] = []
    twice: List[str] = []

    def remove_me(event: MessageEvent) -> None:
        removed.append(event.data)
        ws.remove_event_listener("message", remove_me)

    def registered_twice(event: MessageEvent) -> None:
        twice.append(event.data)

    ws.add_event_listener("message", lambda e: once.append(e.data), once=True)
    ws.add_event_listener("message", remove_me)
    ws.addEventListener("message", registered_twice)
    ws.add_event_listener("message", registered_twice)  # registered once
    camel_listener = lambda e: camel.append(e.data)  # noqa: E731
    ws.addEventListener("message", camel_listener)
    ws.removeEventListener("message", camel_listener)
    ws.connect()
    wait_until(lambda: len(twice) == 3)
    assert once == ["0"] and removed == ["0"] and camel == []
    assert twice == ["0", "1", "2"]


def test_raising_handler_is_logged_and_delivery_continues(ws_server_factory, make_ws, caplog) -> None:
    def script(conn: ServerConnection) -> None:
        for i in range(3):
            conn.send(str(i))
        conn.close(1000)
        conn.expect_close()

    server = ws_server_factory(script)
    caplog.set_level(logging.ERROR, logger="syncws")
    ws = WebSocket(server.url, connect=False, **OPTS)

    def broken(event: Event) -> None:
        raise ValueError(f"boom in {event.type}")

    ws.onopen = ws.onmessage = ws.onclose = broken
    rec = Recorder(ws)  # added after the raising handlers: still runs for every event
    ws.connect()
    assert ws.wait(TIMEOUT)
    assert rec.types == ["open", "message", "message", "message", "close"]
    logged = [r for r in caplog.records if r.name.startswith("syncws") and r.exc_info]
    assert len(logged) == 5
    assert all(r.exc_info[0] is ValueError for r in logged)


def test_dispatch_event_is_synchronous(ws_server, make_ws) -> None:
    ws, rec = make_ws(ws_server.url)
    rec.wait_for(lambda: "open" in rec.types)
    calls: List[Any] = []
    ws.add_event_listener("custom", lambda e: calls.append((threading.get_ident(), e.target, e.current_target)))
    assert ws.dispatch_event(Event("custom")) is True
    assert calls == [(threading.get_ident(), ws, ws)]
    assert ws.dispatchEvent(Event("custom")) is True
    assert len(calls) == 2
    # A user-made close event runs the handlers, but changes nothing about the connection.
    user_close = CloseEvent("close", was_clean=True, code=4000, reason="not really")
    ws.dispatch_event(user_close)
    assert rec.close is user_close and ws.ready_state is ReadyState.OPEN
    with pytest.raises(TypeError):
        ws.dispatch_event("close")  # type: ignore[arg-type]


def test_binary_type_is_read_at_dispatch_time(ws_server_factory) -> None:
    def script(conn: ServerConnection) -> None:
        for i in range(3):
            conn.send(bytes([i]))
        conn.close(1000)
        conn.expect_close()

    server = ws_server_factory(script)
    tasks: "queue.Queue[Callable[[], None]]" = queue.Queue()
    ws = WebSocket(server.url, executor=tasks.put, connect=False, **OPTS)
    seen: List[Any] = []

    def onmessage(event: MessageEvent) -> None:
        seen.append(event.data)
        ws.binary_type = "arraybuffer"

    ws.onmessage = onmessage
    ws.connect()
    # The client echoed the server's Close: every message is queued, none delivered yet.
    assert server.accepted().join(TIMEOUT)
    assert seen == []
    while not ws.wait(0):
        tasks.get(timeout=TIMEOUT)()
    assert isinstance(seen[0], Blob) and seen[0].bytes() == b"\x00"
    assert seen[1:] == [b"\x01", b"\x02"] and all(type(d) is bytes for d in seen[1:])


def test_close_event_can_be_constructed() -> None:
    event = CloseEvent("close", was_clean=True, code=1000, reason="done")
    assert (event.type, event.was_clean, event.wasClean, event.code, event.reason) == ("close", True, True, 1000, "done")
    default = CloseEvent("close")
    assert (default.was_clean, default.code, default.reason) == (False, 0, "")
    assert default.target is None and default.bubbles is False and default.cancelable is False
    with pytest.raises(TypeError):
        CloseEvent("close", 1000)  # type: ignore  # keyword-only, as the spec's dictionary
    error = ErrorEvent("error", error=OSError("x"), message="x")
    assert isinstance(error, Event) and error.message == "x"
