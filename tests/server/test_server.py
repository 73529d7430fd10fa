"""syncws.server and the syncws.testing fixtures, driven by a raw client written here."""

from __future__ import annotations

import base64
import os
import socket
import ssl
import threading
import time
from collections import deque
from typing import Deque, List, Optional, Tuple

import pytest

from syncws.errors import PayloadError, ProtocolError
from syncws.protocol.frames import Frame, FrameParser, Opcode, serialize_frame
from syncws.protocol.handshake import accept_key
from syncws.server import (
    ClientClosed,
    CloseInfo,
    HandshakeResponse,
    Request,
    ServerConnection,
    WebSocketServer,
    hold,
)
from syncws.testing import _stop_all


class RawClient:
    """A minimal client on a plain socket: handshake by hand, masked frames out."""

    opened: List["RawClient"] = []  # closed after each test by close_raw_clients

    def __init__(self, server: WebSocketServer, ssl_context: Optional[ssl.SSLContext] = None):
        self.opened.append(self)
        self.sock = socket.create_connection((server.host, server.port), timeout=5)
        if ssl_context is not None:
            self.sock = ssl_context.wrap_socket(self.sock, server_hostname="localhost")
        self.key = base64.b64encode(os.urandom(16)).decode()
        self.parser = FrameParser(expect_masked=False)
        self.frames: Deque[Frame] = deque()
        self.buffer = b""

    def headers(self, *extra: Tuple[str, str]) -> List[Tuple[str, str]]:
        """A valid request's headers (Connection as Firefox sends it), then ``extra``."""
        return [
            ("Host", "localhost"),
            ("Upgrade", "websocket"),
            ("Connection", "keep-alive, Upgrade"),
            ("Sec-WebSocket-Key", self.key),
            ("Sec-WebSocket-Version", "13"),
            *extra,
        ]

    def send_request(self, headers: Optional[List[Tuple[str, str]]] = None) -> None:
        lines = ["GET / HTTP/1.1"] + [f"{k}: {v}" for k, v in headers or self.headers()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())

    def read_head(self) -> Tuple[int, List[Tuple[str, str]]]:
        while b"\r\n\r\n" not in self.buffer:
            data = self.sock.recv(65536)
            assert data, "EOF before the response head"
            self.buffer += data
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        self.buffer = rest
        lines = head.decode("latin-1").split("\r\n")
        headers = [tuple(s.strip() for s in line.split(":", 1)) for line in lines[1:]]
        return int(lines[0].split(" ")[1]), headers  # type: ignore[return-value]

    def handshake(self, *extra_headers: Tuple[str, str]) -> List[Tuple[str, str]]:
        self.send_request(self.headers(*extra_headers))
        status, response = self.read_head()
        assert status == 101
        assert ("Sec-WebSocket-Accept", accept_key(self.key)) in response
        self.frames.extend(self.parser.feed(self.buffer))
        self.buffer = b""
        return response

    def send(self, opcode: int, payload: bytes = b"", **kwargs: bool) -> None:
        self.sock.sendall(b"".join(serialize_frame(opcode, payload, **kwargs)))

    def recv_frame(self) -> Frame:
        while not self.frames:
            data = self.sock.recv(1 << 20)
            assert data, "EOF while waiting for a frame"
            self.frames.extend(self.parser.feed(data))
        return self.frames.popleft()

    def read_to_end(self) -> bytes:
        """Everything until EOF."""
        chunks = []
        while True:
            data = self.sock.recv(65536)
            if not data:
                return b"".join(chunks)
            chunks.append(data)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(autouse=True)
def close_raw_clients():
    yield
    while RawClient.opened:
        RawClient.opened.pop().close()


def close_body(code: int, reason: str = "") -> bytes:
    return code.to_bytes(2, "big") + reason.encode()


@pytest.fixture
def client(ws_server: WebSocketServer) -> RawClient:
    raw = RawClient(ws_server)
    raw.handshake()
    return raw


def server_threads(server: Optional[WebSocketServer] = None) -> List[str]:
    prefix = "syncws-server-"
    names = [t.name for t in threading.enumerate() if t.name.startswith(prefix)]
    return names if server is None else [n for n in names if f"-{server.port}" in n]


# -- echo ------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 125, 126, 127, 128, 65535, 65536, 16 << 20])
@pytest.mark.parametrize("opcode", [Opcode.TEXT, Opcode.BINARY])
def test_echo_sizes(client: RawClient, size: int, opcode: Opcode) -> None:
    payload = bytes(range(32, 127)) * (size // 95) + b"x" * (size % 95)
    client.send(opcode, payload)
    assert client.recv_frame() == Frame(opcode, payload)


def test_echo_reassembles_fragments_with_interleaved_ping(client: RawClient) -> None:
    client.send(Opcode.TEXT, "hé".encode()[:2], fin=False)
    client.send(Opcode.PING, b"in between")
    client.send(Opcode.CONT, "hé".encode()[2:] + b"llo")
    assert client.recv_frame() == Frame(Opcode.PONG, b"in between")
    assert client.recv_frame() == Frame(Opcode.TEXT, "héllo".encode())


def test_ping_is_answered_and_unsolicited_pong_ignored(client: RawClient) -> None:
    client.send(Opcode.PONG, b"nobody asked")
    for index in range(10):
        client.send(Opcode.PING, bytes([index]) * 125)
    for index in range(10):
        assert client.recv_frame() == Frame(Opcode.PONG, bytes([index]) * 125)


@pytest.mark.parametrize(
    "body, answer",
    [(b"", b""), (close_body(1000, "bye"), close_body(1000, "bye")), (close_body(4999), close_body(4999))],
)
def test_close_is_echoed_then_server_closes_tcp(client: RawClient, body: bytes, answer: bytes) -> None:
    client.send(Opcode.CLOSE, body)
    assert client.recv_frame() == Frame(Opcode.CLOSE, answer)
    assert client.read_to_end() == b""


@pytest.mark.parametrize(
    "frame_kwargs, code",
    [
        (dict(opcode=Opcode.TEXT, payload=b"unmasked", mask=False), 1002),
        (dict(opcode=Opcode.TEXT, payload=b"\xff"), 1007),
        (dict(opcode=Opcode.TEXT, payload=b"x", rsv1=True), 1002),
        (dict(opcode=Opcode.CONT, payload=b"x"), 1002),
        (dict(opcode=Opcode.CLOSE, payload=b"\x03"), 1002),
        (dict(opcode=Opcode.CLOSE, payload=close_body(999)), 1002),
        (dict(opcode=Opcode.CLOSE, payload=b"\x03\xe8\xff"), 1007),
    ],
)
def test_protocol_errors_close_with_code(client: RawClient, frame_kwargs: dict, code: int) -> None:
    client.send(Opcode.TEXT, b"before")
    opcode = frame_kwargs.pop("opcode")
    client.send(opcode, frame_kwargs.pop("payload"), **frame_kwargs)
    assert client.recv_frame() == Frame(Opcode.TEXT, b"before")
    assert client.recv_frame() == Frame(Opcode.CLOSE, close_body(code))
    assert client.read_to_end() == b""


# -- handshake -------------------------------------------------------------------------------


def test_request_is_recorded_with_case_insensitive_lookup(ws_server_factory) -> None:
    server = ws_server_factory(hold)
    raw = RawClient(server)
    raw.handshake(("X-Custom", "a"), ("x-custom", "b"), ("Sec-WebSocket-Protocol", "p1, p2"))
    conn = server.accepted()
    assert conn.upgraded and conn.request is not None
    assert conn.request.method == "GET" and conn.request.path == "/"
    assert conn.request.header("X-CUSTOM") == "a, b"
    assert conn.request.header_list("x-custom") == ["a", "b"]
    assert conn.request.tokens("sec-websocket-protocol") == ["p1", "p2"]
    assert conn.request.header("Missing") is None
    raw.close()


@pytest.mark.parametrize("drop", ["Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version"])
def test_invalid_request_gets_400(ws_server: WebSocketServer, drop: str) -> None:
    raw = RawClient(ws_server)
    raw.send_request([h for h in raw.headers() if h[0] != drop])
    status, headers = raw.read_head()
    assert status == 400
    assert ("Sec-WebSocket-Version", "13") in headers
    assert drop in (raw.buffer + raw.read_to_end()).decode()
    raw.close()


def test_malformed_and_oversized_requests(ws_server: WebSocketServer) -> None:
    raw = RawClient(ws_server)
    raw.sock.sendall(b"nonsense\r\n\r\n")
    assert raw.read_head()[0] == 400
    raw.close()
    raw = RawClient(ws_server)
    raw.sock.sendall(b"GET / HTTP/1.1\r\n" + b"X: " + b"a" * 70000 + b"\r\n\r\n")
    assert raw.read_head()[0] == 431
    raw.close()


def test_subprotocol_is_the_first_server_preference_offered(ws_server_factory) -> None:
    server = ws_server_factory(subprotocols=["chat", "superchat", "Echo"])
    raw = RawClient(server)
    headers = raw.handshake(("Sec-WebSocket-Protocol", "echo, superchat, chat"))
    assert ("Sec-WebSocket-Protocol", "chat") in headers
    assert server.accepted().protocol == "chat"
    raw.close()
    raw = RawClient(server)
    headers = raw.handshake(("Sec-WebSocket-Protocol", "echo"))
    assert all(name != "Sec-WebSocket-Protocol" for name, _ in headers)
    raw.close()


def test_handshake_hook_rejects_with_body(ws_server_factory) -> None:
    server = ws_server_factory(handshake=HandshakeResponse(403, body=b"go away"))
    raw = RawClient(server)
    raw.send_request()
    status, headers = raw.read_head()
    assert status == 403 and ("Content-Length", "7") in headers
    assert raw.buffer + raw.read_to_end() == b"go away"
    conn = server.accepted()
    assert not conn.upgraded and conn.response is not None and conn.response.status == 403
    raw.close()


def test_extra_bytes_arrive_in_the_same_segment_as_the_101(ws_server_factory) -> None:
    first = b"".join(serialize_frame(Opcode.TEXT, b"first", mask=False))

    def handshake(request: Request, response: HandshakeResponse) -> HandshakeResponse:
        response.extra = first
        return response

    server = ws_server_factory(handshake=handshake)
    raw = RawClient(server)
    raw.send_request()
    time.sleep(0.2)  # everything has arrived: one recv returns it all
    data = raw.sock.recv(65536)
    assert data.startswith(b"HTTP/1.1 101 Switching Protocols\r\n") and data.endswith(b"\r\n\r\n" + first)
    raw.close()


@pytest.mark.parametrize(
    "alter, check",
    [
        (lambda r: r.remove_header("Upgrade"), lambda h: "Upgrade" not in dict(h)),
        (lambda r: r.set_header("sec-websocket-accept", "wrong"),
         lambda h: dict(h)["sec-websocket-accept"] == "wrong" and "Sec-WebSocket-Accept" not in dict(h)),
        (lambda r: r.add_header("Sec-WebSocket-Protocol", "unasked"),
         lambda h: dict(h)["Sec-WebSocket-Protocol"] == "unasked"),
        (lambda r: r.add_header("Sec-WebSocket-Extensions", "x-unknown"),
         lambda h: dict(h)["Sec-WebSocket-Extensions"] == "x-unknown"),
    ],
)
def test_handshake_hook_alters_default_response(ws_server_factory, alter, check) -> None:
    server = ws_server_factory(handshake=lambda request, response: alter(response))
    raw = RawClient(server)
    raw.send_request()
    status, headers = raw.read_head()
    assert status == 101 and check(headers)
    raw.close()


def test_accept_helper_and_raw_response(ws_server_factory) -> None:
    def handshake(request: Request, response: HandshakeResponse) -> HandshakeResponse:
        built = HandshakeResponse.accept(request, protocol="p", headers=[("X-A", "1")])
        assert built.headers == response.headers + [("Sec-WebSocket-Protocol", "p"), ("X-A", "1")]
        return HandshakeResponse(raw=built.to_bytes(), chunk_size=7)

    server = ws_server_factory(handshake=handshake)
    raw = RawClient(server)
    headers = raw.handshake()
    assert ("X-A", "1") in headers
    conn = server.accepted()
    assert conn.upgraded  # a raw 101 upgrades too
    raw.send(Opcode.TEXT, b"still echoes")
    assert raw.recv_frame().payload == b"still echoes"
    raw.close()


def test_huge_header_block(ws_server_factory) -> None:
    server = ws_server_factory(handshake=lambda request, response: response.pad_headers(2 << 20))
    raw = RawClient(server)
    raw.send_request()
    status, headers = raw.read_head()
    assert status == 101 and len(headers) > 2000
    raw.close()


def test_drop_reset_and_hang(ws_server_factory) -> None:
    server = ws_server_factory(handshake=HandshakeResponse.drop())
    raw = RawClient(server)
    raw.send_request()
    assert raw.read_to_end() == b""
    server = ws_server_factory(handshake=HandshakeResponse.reset())
    raw = RawClient(server)
    raw.send_request()
    with pytest.raises(ConnectionResetError):
        raw.read_to_end()
    server = ws_server_factory(handshake=HandshakeResponse.hang())
    raw = RawClient(server)
    raw.send_request()
    conn = server.accepted()
    assert conn.request is not None and not conn.upgraded
    raw.sock.settimeout(0.3)
    with pytest.raises(socket.timeout):
        raw.sock.recv(1)
    raw.sock.settimeout(5)
    server.stop()
    assert raw.read_to_end() == b""
    assert not server_threads(server)


def test_delayed_answer(ws_server_factory) -> None:
    def handshake(request: Request, response: HandshakeResponse) -> None:
        response.delay = 0.3  # changed in place: returning None sends it

    server = ws_server_factory(handshake=handshake)
    raw = RawClient(server)
    start = time.monotonic()
    raw.handshake()
    assert time.monotonic() - start >= 0.3
    raw.close()


# -- scripting a connection ------------------------------------------------------------------


def test_hold_lets_the_test_drive_the_connection(ws_server_factory) -> None:
    server = ws_server_factory(hold)
    raw = RawClient(server)
    raw.handshake()
    conn = server.accepted()
    conn.send("text")
    conn.send(b"binary")
    conn.send(b"x" * 300, fragment_size=128)
    conn.ping(b"p")
    assert raw.recv_frame() == Frame(Opcode.TEXT, b"text")
    assert raw.recv_frame() == Frame(Opcode.BINARY, b"binary")
    frames = [raw.recv_frame() for _ in range(3)]
    assert [(f.opcode, len(f.payload), f.fin) for f in frames] == [
        (Opcode.BINARY, 128, False), (Opcode.CONT, 128, False), (Opcode.CONT, 44, True)
    ]
    assert raw.recv_frame() == Frame(Opcode.PING, b"p")
    raw.send(Opcode.PONG, b"p")
    raw.send(Opcode.TEXT, b"hello")
    raw.send(Opcode.BINARY, b"\x00")
    assert conn.recv(timeout=5) == "hello"
    assert conn.recv(timeout=5) == b"\x00"
    assert conn.pongs == [b"p"]
    with pytest.raises(TimeoutError):
        conn.recv(timeout=0.1)
    raw.send(Opcode.CLOSE, close_body(1001, "away"))
    with pytest.raises(ClientClosed) as info:
        conn.recv(timeout=5)
    assert (info.value.code, info.value.reason) == (1001, "away")
    assert conn.closed_by_client == CloseInfo(1001, "away")
    assert raw.recv_frame() == Frame(Opcode.CLOSE, close_body(1001, "away"))
    conn.release()
    assert raw.read_to_end() == b""  # the server closes TCP first...
    raw.close()
    assert conn.join(5)  # ...and is done once the client has closed too


def test_raw_frames_anything_goes(ws_server_factory) -> None:
    server = ws_server_factory(hold)
    raw = RawClient(server)
    raw.handshake()
    conn = server.accepted()
    conn.send_frame(0x3, b"reserved", rsv2=True, rsv3=True)
    conn.send_frame(Opcode.PING, b"x" * 126)
    conn.send_fragments(Opcode.TEXT, [b"a", "b", b"c"], rsv1=True)
    conn.close(raw_body=b"\x03")
    conn.send_frame(Opcode.TEXT, b"masked", mask=True)
    data = b""
    raw.sock.settimeout(0.5)
    with pytest.raises(socket.timeout):
        while True:
            data += raw.sock.recv(65536)
    assert data.startswith(b"\xb3\x08reserved\x89\x7e\x00\x7e" + b"x" * 126)
    assert b"\x41\x01a\x00\x01b\x80\x01c\x88\x01\x03" in data
    assert data[-12:-10] == b"\x81\x86" and data[-10:-6] != b"\x00" * 4
    assert conn.close_sent


def test_recv_frame_returns_frames_as_sent(ws_server_factory) -> None:
    server = ws_server_factory(hold)
    raw = RawClient(server)
    raw.handshake()
    conn = server.accepted()
    raw.send(Opcode.TEXT, b"\xff", fin=False, rsv3=True)
    raw.send(Opcode.PING, b"")
    assert conn.recv_frame(timeout=5) == Frame(Opcode.TEXT, b"\xff", False, False, False, True)
    assert conn.recv_frame(timeout=5) == Frame(Opcode.PING, b"")
    raw.send(Opcode.BINARY, b"x", mask=False)
    with pytest.raises(ProtocolError):
        conn.recv_frame(timeout=5)


def test_chunked_raw_send(ws_server_factory) -> None:
    frame = b"".join(serialize_frame(Opcode.TEXT, b"abcdefgh", mask=False))
    server = ws_server_factory(hold)
    raw = RawClient(server)
    raw.handshake()
    conn = server.accepted()
    done = threading.Thread(target=conn.send_raw, args=(frame,), kwargs=dict(chunk_size=1, delay=0.02))
    done.start()
    reads = []
    while sum(map(len, reads)) < len(frame):
        reads.append(raw.sock.recv(100))
    done.join()
    assert b"".join(reads) == frame and len(reads) > 3


def test_text_recv_rejects_invalid_utf8(ws_server_factory) -> None:
    server = ws_server_factory(hold)
    raw = RawClient(server)
    raw.handshake()
    conn = server.accepted()
    raw.send(Opcode.TEXT, b"\xed\xa0\x80")  # a surrogate
    raw.send(Opcode.TEXT, b"ignored after the failure")
    time.sleep(0.1)
    with pytest.raises(PayloadError):
        conn.recv(timeout=5)
    with pytest.raises(PayloadError):
        conn.recv(timeout=5)
    assert raw.recv_frame() == Frame(Opcode.CLOSE, close_body(1007))


def test_expect_close(ws_server_factory) -> None:
    server = ws_server_factory(hold)
    raw = RawClient(server)
    raw.handshake()
    conn = server.accepted()
    conn.close(4000, "done")
    assert raw.recv_frame() == Frame(Opcode.CLOSE, close_body(4000, "done"))
    raw.send(Opcode.PING, b"late")
    raw.send(Opcode.CLOSE, close_body(4000))
    assert conn.expect_close() == (4000, "")
    raw.send(Opcode.CLOSE)  # not read: already have one
    assert conn.expect_close() == (4000, "")

    raw2 = RawClient(server)
    raw2.handshake()
    conn2 = server.accepted()
    raw2.send(Opcode.CLOSE)
    assert conn2.expect_close(reply=False) == CloseInfo(None, "")
    raw2.send(Opcode.TEXT, b"after")
    conn2.release()
    assert raw2.read_to_end() == b""  # no Close echoed, just FIN

    raw3 = RawClient(server)
    raw3.handshake()
    conn3 = server.accepted()
    raw3.send(Opcode.TEXT, b"data")
    with pytest.raises(AssertionError):
        conn3.expect_close()
    raw3.close()
    with pytest.raises(ClientClosed):
        conn3.expect_close()


def test_abort_resets_and_wait_eof(ws_server_factory) -> None:
    server = ws_server_factory(hold)
    raw = RawClient(server)
    raw.handshake()
    conn = server.accepted()
    conn.abort()
    with pytest.raises(ConnectionResetError):
        raw.read_to_end()
    assert conn.join(5)

    raw = RawClient(server)
    raw.handshake()
    conn = server.accepted()
    raw.send(Opcode.TEXT, b"ignored")
    raw.sock.shutdown(socket.SHUT_WR)
    assert conn.wait_eof() == "eof"

    raw = RawClient(server)
    raw.handshake()
    conn = server.accepted()
    raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    raw.close()
    assert conn.wait_eof() == "reset"


def test_shutdown_write_keeps_reading(ws_server_factory) -> None:
    server = ws_server_factory(hold)
    raw = RawClient(server)
    raw.handshake()
    conn = server.accepted()
    conn.shutdown_write()
    assert raw.read_to_end() == b""
    raw.send(Opcode.TEXT, b"still heard")
    assert conn.recv(timeout=5) == "still heard"


def test_extension_plug_in(ws_server_factory) -> None:
    class SwapCase:  # a stand-in codec: "compressed" means case swapped
        def encode(self, payload: bytes) -> Tuple[bytes, bool]:
            return payload.swapcase(), True

        def decode_frame(self, payload: bytes, *, compressed: bool, **_: object) -> bytes:
            return payload.swapcase() if compressed else payload

    offers = []

    def negotiate(values: List[str]):
        offers.append(values)
        return ("x-swap", SwapCase()) if any("x-swap" in v for v in values) else None

    server = ws_server_factory(extensions=[negotiate])
    raw = RawClient(server)
    headers = raw.handshake(("Sec-WebSocket-Extensions", "x-other"), ("Sec-WebSocket-Extensions", "x-swap"))
    assert offers == [["x-other", "x-swap"]]
    assert ("Sec-WebSocket-Extensions", "x-swap") in headers
    raw.send(Opcode.TEXT, b"HEL", fin=False, rsv1=True)
    raw.send(Opcode.CONT, b"LO")
    assert raw.recv_frame() == Frame(Opcode.TEXT, b"HELLO", rsv1=True)  # decoded, re-encoded
    raw.send(Opcode.TEXT, b"plain")
    assert raw.recv_frame() == Frame(Opcode.TEXT, b"PLAIN", rsv1=True)
    raw.send(Opcode.PING, b"", rsv1=True)
    assert raw.recv_frame() == Frame(Opcode.CLOSE, close_body(1002))
    raw.close()
    raw = RawClient(server)
    headers = raw.handshake()  # no offer: the negotiator is not asked
    assert len(offers) == 1 and "Sec-WebSocket-Extensions" not in dict(headers)


def test_handler_errors_are_kept_and_reraised_by_the_fixture(ws_server_factory) -> None:
    def script(conn: ServerConnection) -> None:
        assert conn.recv(timeout=5) == "expected"

    server = WebSocketServer(script).start()
    raw = RawClient(server)
    raw.handshake()
    raw.send(Opcode.TEXT, b"something else")
    assert raw.read_to_end() == b""
    with pytest.raises(AssertionError, match="handler raised"):
        _stop_all([server])


# -- lifecycle, addresses, TLS ---------------------------------------------------------------


def test_stop_ends_every_thread() -> None:
    def blocked(conn: ServerConnection) -> None:
        conn.recv()

    def sleepy(conn: ServerConnection) -> None:
        conn.sleep(60)

    clients = []
    servers = [
        WebSocketServer(blocked).start(),
        WebSocketServer(hold).start(),
        WebSocketServer(sleepy).start(),
        WebSocketServer(handshake=HandshakeResponse.hang()).start(),
    ]
    for server in servers:
        raw = RawClient(server)
        raw.send_request()
        server.accepted()
        clients.append(raw)
    clients.append(RawClient(servers[0]))  # connected, never sent a request
    assert len(server_threads()) >= 2 * len(servers)
    start = time.monotonic()
    for server in servers:
        server.stop()
    assert time.monotonic() - start < 2
    assert not server_threads()
    for server in servers:
        assert all(conn.finished for conn in server.connections)
        server.stop()  # again: nothing
    for raw in clients:
        raw.close()


def test_context_manager_url_and_connections() -> None:
    with WebSocketServer() as server:
        assert server.url == f"ws://127.0.0.1:{server.port}/"
        raw = RawClient(server)
        raw.handshake()
        assert server.accepted().upgraded
        assert len(server.connections) == 1
        raw.close()
    assert not server_threads()
    with pytest.raises(TimeoutError):
        server.accepted(timeout=0.05)


def test_ipv6() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        server = WebSocketServer(host="::1").start()
    except OSError:
        pytest.skip("no IPv6 loopback")
    with server:
        assert server.url == f"ws://[::1]:{server.port}/"
        raw = RawClient(server)
        raw.handshake()
        raw.send(Opcode.TEXT, b"six")
        assert raw.recv_frame().payload == b"six"
        raw.close()


def test_tls_echo(ws_server_factory, ws_tls) -> None:
    server = ws_server_factory(ssl_context=ws_tls.server)
    assert server.url == f"wss://127.0.0.1:{server.port}/"
    raw = RawClient(server, ssl_context=ws_tls.client)
    raw.handshake()
    raw.send(Opcode.BINARY, os.urandom(100000))
    assert len(raw.recv_frame().payload) == 100000
    raw.send(Opcode.CLOSE, close_body(1000))
    assert raw.recv_frame() == Frame(Opcode.CLOSE, close_body(1000))
    assert raw.read_to_end() == b""  # close_notify, then FIN
    raw.close()


def test_tls_handshake_failure_is_reported(ws_server_factory, ws_tls) -> None:
    server = ws_server_factory(ssl_context=ws_tls.server)
    plain = RawClient(server)
    plain.send_request()
    conn = server.accepted()
    assert isinstance(conn.handshake_error, ssl.SSLError) and conn.request is None
    plain.close()


def test_ws_server_fixture_echoes(ws_server: WebSocketServer) -> None:
    raw = RawClient(ws_server)
    raw.handshake()
    raw.send(Opcode.TEXT, "ünïcode".encode())
    assert raw.recv_frame() == Frame(Opcode.TEXT, "ünïcode".encode())
    raw.close()


def test_invalid_close_from_the_client_fails_the_connection(ws_server_factory) -> None:
    server = ws_server_factory(hold)
    raw = RawClient(server)
    raw.handshake()
    conn = server.accepted()
    raw.send(Opcode.CLOSE, close_body(1006))  # reserved: never on the wire
    with pytest.raises(ProtocolError, match="invalid close code 1006"):
        conn.expect_close()
    assert raw.recv_frame() == Frame(Opcode.CLOSE, close_body(1002))
    assert conn.close_sent and conn.closed_by_client is None
    with pytest.raises(ProtocolError):
        conn.recv(timeout=5)  # the failure sticks


def test_server_validates_what_the_client_validates(ws_server_factory) -> None:
    server = ws_server_factory(hold)
    raw = RawClient(server)
    raw.handshake()
    conn = server.accepted()
    text = "κόσμε".encode()
    raw.send(Opcode.TEXT, text[:3], fin=False)  # ends inside a character: valid so far
    raw.send(Opcode.PING, b"between")
    raw.send(Opcode.CONT, text[3:])
    assert conn.recv(timeout=5) == "κόσμε"
    assert raw.recv_frame() == Frame(Opcode.PONG, b"between")
    raw.send(Opcode.TEXT, b"ok", fin=False)
    raw.send(Opcode.TEXT, b"a second message before the first ended")
    with pytest.raises(ProtocolError, match="previous message"):
        conn.recv(timeout=5)
    assert raw.recv_frame() == Frame(Opcode.CLOSE, close_body(1002))
