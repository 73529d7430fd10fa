"""Shared fixtures of the wire-protocol conformance suite (CONFORMANCE.md, client side).

Every test drives a real ``syncws.WebSocket`` (``compression=False``, ``proxy=None``, no
keepalive) against syncws's scriptable server over 127.0.0.1, and checks both sides: the
events the user sees (:class:`Client` records them with the ``ready_state`` at dispatch) and
the frames the server received.

- ``make_client(url, echo=False, **options)``: a recording :class:`Client`; closed at teardown.
- ``open_client(echo=False, **options)``: ``(conn, client)`` once ``open`` was delivered,
  ``conn`` being the server side of a :func:`syncws.server.hold` connection on a fresh server.
- ``wire``: raw frames for the server to send; ``sized_text(n)``: a text of ``n`` bytes.

With ``echo=True`` the client's ``onmessage`` sends every message back as it came
(``e.target.send(e.data)``; ``binary_type`` is ``"arraybuffer"`` so binary data is ``bytes``).
"""

from __future__ import annotations

import threading
from typing import Any, Callable, List, NamedTuple, Optional, Sequence, Tuple, Union

import pytest

import syncws
from syncws.errors import PayloadError, ProtocolError
from syncws.protocol.frames import frame_header
from syncws.server import ServerConnection, hold

Data = Union[str, bytes]


class Record(NamedTuple):
    """One event as the user saw it, with ``ready_state`` read inside the handler."""

    type: str
    event: Any
    ready_state: syncws.ReadyState


class Client:
    """A ``syncws.WebSocket`` whose events are all recorded in order."""

    DEFAULTS = dict(
        compression=False,
        proxy=None,
        ping_interval=None,
        binary_type="arraybuffer",
        open_timeout=5.0,
        close_timeout=5.0,
    )

    def __init__(self, url: str, protocols: Any = None, *, echo: bool = False, **options: Any):
        self.records: List[Record] = []
        self.echo = echo
        self._cond = threading.Condition()
        options = {**self.DEFAULTS, **options}
        self.ws = syncws.WebSocket(
            url,
            protocols,
            onopen=self._record,
            onmessage=self._on_message,
            onerror=self._record,
            onclose=self._record,
            **options,
        )

    def _record(self, event: Any) -> None:
        with self._cond:
            self.records.append(Record(event.type, event, event.target.ready_state))
            self._cond.notify_all()

    def _on_message(self, event: Any) -> None:
        with self._cond:
            self.records.append(Record(event.type, event, event.target.ready_state))
            if self.echo:
                # Under the condition: the message is recorded before its echo can reach the
                # server, and a test waiting for it (then calling close()) wakes only once the
                # echo was accepted.
                event.target.send(event.data)
            self._cond.notify_all()

    # -- what the user saw ---------------------------------------------------------------

    @property
    def types(self) -> List[str]:
        with self._cond:
            return [record.type for record in self.records]

    @property
    def messages(self) -> List[Data]:
        with self._cond:
            return [r.event.data for r in self.records if r.type == "message"]

    def record(self, type_: str) -> Optional[Record]:
        """The first record of ``type_``, or ``None``."""
        with self._cond:
            return next((r for r in self.records if r.type == type_), None)

    @property
    def closed(self) -> bool:
        return self.record("close") is not None

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        with self._cond:
            if not self._cond.wait_for(predicate, timeout):
                raise AssertionError(f"timed out; events so far: {self.types}")

    def wait_open(self, timeout: float = 5.0) -> None:
        self.wait_for(lambda: bool(self.records), timeout)
        first = self.records[0]
        assert first.type == "open", f"expected open, got {self.types}"
        assert first.ready_state == syncws.OPEN

    def wait_messages(self, count: int, timeout: float = 5.0) -> List[Data]:
        """The first ``count`` messages (fails if the socket closes before they came)."""
        self.wait_for(lambda: len(self.messages) >= count or self.closed, timeout)
        messages = self.messages
        assert len(messages) >= count, f"closed after {len(messages)} messages: {self.types}"
        return messages[:count]

    def wait_closed(self, timeout: float = 5.0) -> syncws.CloseEvent:
        """The close event, once delivered (and its handlers returned)."""
        assert self.ws.wait(timeout), f"no close event within {timeout} s: {self.types}"
        record = self.record("close")
        assert record is not None
        assert record.ready_state == syncws.CLOSED
        assert self.types.count("close") == 1 and self.types[-1] == "close"
        return record.event

    def assert_clean_close(self, code: int, reason: str = "", timeout: float = 5.0) -> None:
        event = self.wait_closed(timeout)
        assert "error" not in self.types
        assert (event.code, event.reason, event.was_clean) == (code, reason, True)

    def assert_failed(self, timeout: float = 5.0) -> BaseException:
        """The socket ended with ``error`` (CLOSED inside) then ``close`` 1006 not clean;
        returns the error event's ``error``."""
        event = self.wait_closed(timeout)
        assert self.types[-2:] == ["error", "close"], self.types
        assert self.types.count("error") == 1
        assert (event.code, event.reason, event.was_clean) == (1006, "", False)
        error = self.record("error")
        assert error is not None and error.ready_state == syncws.CLOSED
        return error.event.error

    def expect_failure(
        self, conn: ServerConnection, code: int, messages: Sequence[Data] = (), timeout: float = 5.0
    ) -> BaseException:
        """The client failed the connection: the server received a Close with ``code``, the
        user saw ``open``, exactly ``messages``, ``error`` and ``close`` 1006."""
        close = conn.expect_close(timeout)
        assert close.code == code, f"expected Close {code}, got {close}"
        error = self.assert_failed(timeout)
        assert self.types[:1] == ["open"]
        assert self.messages == list(messages)
        assert self.types == ["open"] + ["message"] * len(messages) + ["error", "close"]
        expected_class = PayloadError if code == 1007 else ProtocolError
        assert isinstance(error, expected_class), repr(error)
        assert error.close_code == code
        return error

    def close_from_server(self, conn: ServerConnection, code: int = 1000, reason: str = "") -> None:
        """The server closes cleanly; the client must echo the code and send nothing else
        (a stray data frame fails ``expect_close``), then see a clean ``close``."""
        conn.close(code, reason)
        assert conn.expect_close().code == code
        conn.release()
        self.assert_clean_close(code, reason)


@pytest.fixture
def make_client() -> Any:
    """``make_client(url, protocols=None, echo=False, **options) -> Client``."""
    clients: List[Client] = []

    def factory(url: str, protocols: Any = None, *, echo: bool = False, **options: Any) -> Client:
        client = Client(url, protocols, echo=echo, **options)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.ws.close()  # nothing if already closed
    for client in clients:
        client.ws.wait(5)


@pytest.fixture
def open_client(ws_server_factory: Any, make_client: Any) -> Any:
    """``open_client(echo=False, **options) -> (conn, client)``, after ``open``."""
    conns: List[ServerConnection] = []

    def factory(*, echo: bool = False, **options: Any) -> Tuple[ServerConnection, Client]:
        server = ws_server_factory(hold)
        client = make_client(server.url, echo=echo, **options)
        conn = server.accepted()
        conns.append(conn)
        assert conn.upgraded, conn.handshake_error
        client.wait_open()
        return conn, client

    yield factory
    for conn in conns:
        conn.release()  # the server closes TCP: a client still open ends at once


class Wire:
    """Raw bytes for the server to send (``wire`` fixture)."""

    @staticmethod
    def frame(opcode: int, payload: Union[str, bytes] = b"", **bits: bool) -> bytes:
        """One unmasked frame, exactly as described (``fin=``, ``rsv1=``… as keywords)."""
        data = payload.encode("utf-8") if isinstance(payload, str) else payload
        return frame_header(opcode, len(data), **bits) + data

    @staticmethod
    def send(conn: ServerConnection, data: bytes, chunk_size: Optional[int] = None) -> None:
        """``send_raw`` that stops quietly when the client has already dropped the connection
        (as it must right after failing it, with bytes still on their way)."""
        try:
            conn.send_raw(data, chunk_size=chunk_size)
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture
def wire() -> Wire:
    return Wire()


@pytest.fixture
def sized_text() -> Callable[[int], str]:
    """``sized_text(n)``: a text of exactly ``n`` UTF-8 bytes mixing 1- to 4-byte characters."""

    def text_of_size(size: int) -> str:
        text = "aé€😀" * (size // 10)  # 1 + 2 + 3 + 4 bytes
        return text + "z" * (size - len(text.encode("utf-8")))

    return text_of_size

