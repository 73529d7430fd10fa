"""permessage-deflate end to end (RFC 7692): syncws's client against syncws's own server and
the ``websockets`` package's server. Conformance groups 12 (compressed messages) and 13
(negotiation); the codec itself is unit-tested in tests/protocol/test_deflate.py.
"""

from __future__ import annotations

import json
import os
import random
import struct
import subprocess
import sys
import threading
import zlib
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import pytest

import syncws
from syncws.protocol.deflate import DeflateOptions, server_negotiate, server_response
from syncws.protocol.frames import Opcode

Message = Union[str, bytes]
TAIL = b"\x00\x00\xff\xff"  # what RFC 7692 7.2.1 strips from every compressed message
KIB = 1024
MIB = 1024 * KIB


# --- data ---


def json_corpus(rnd: random.Random, size: int) -> str:
    """JSON-like chat events (some non-ASCII), at least ``size`` characters."""
    words = ["status", "online", "typing", "message", "reply", "channel", "ok", "café", "naïve",
             "日本語", "thanks!", "see you", "null", "true"]
    records: List[str] = []
    total = 0
    while total < size:
        record = json.dumps(
            {
                "id": rnd.randrange(10**9),
                "user": f"user{rnd.randrange(300)}",
                "text": " ".join(rnd.choices(words, k=rnd.randrange(2, 25))),
                "price": round(rnd.uniform(1, 60000), 2),
            },
            ensure_ascii=False,
        )
        records.append(record)
        total += len(record) + 1
    return "\n".join(records)


def binary_corpus(rnd: random.Random, size: int) -> bytes:
    """Packed records drawing on a few names: compressible, but not text."""
    names = [rnd.randbytes(16) for _ in range(40)]
    record = struct.Struct("<Id16sH")
    count = size // record.size + 1
    return b"".join(
        record.pack(rnd.randrange(1 << 32), rnd.random(), rnd.choice(names), rnd.randrange(100))
        for _ in range(count)
    )


def mixed_messages(count: int, seed: int, low: int = 16, high: int = 128 * KIB) -> List[Message]:
    """``count`` messages, alternately text and binary, log-uniform sizes from ``low`` to ``high``."""
    rnd = random.Random(seed)
    text = json_corpus(rnd, 3 * high)
    data = binary_corpus(rnd, 3 * high)
    result: List[Message] = []
    for index in range(count):
        size = int(low * (high / low) ** rnd.random())
        source: Any = text if index % 2 == 0 else data
        start = rnd.randrange(len(source) - size)
        result.append(source[start : start + size])
    return result


def window_probe(rnd: random.Random) -> str:
    """Random blocks each repeated at distances from 330 B to 30 KB, with filler between
    that costs nothing to compress: a compressor uses whatever its window lets it reach."""
    parts = []
    for distance in (200, 600, 1500, 3000, 7000, 15000, 30000):
        block = rnd.randbytes(64).hex()
        parts += [block, "." * distance, block]
    return "".join(parts)


# --- helpers ---


class Recorder:
    """Collects a WebSocket's events (pass it as every on… handler)."""

    def __init__(self) -> None:
        self.events: List[Any] = []

    def __call__(self, event: Any) -> None:
        self.events.append(event)

    @property
    def types(self) -> List[str]:
        return [event.type for event in self.events]

    @property
    def messages(self) -> List[Any]:
        return [event.data for event in self.events if event.type == "message"]


def open_ws(url: str, **options: Any) -> Tuple[syncws.WebSocket, Recorder]:
    """A WebSocket whose events all go to a :class:`Recorder` from the start."""
    recorder = Recorder()
    ws = syncws.WebSocket(
        url, onopen=recorder, onmessage=recorder, onerror=recorder, onclose=recorder, **options
    )
    return ws, recorder


def assert_failed(
    ws: syncws.WebSocket, recorder: Recorder, error: type, *, opened: bool = True, messages: Sequence[Any] = ()
) -> None:
    """The socket failed: [open,] the messages, error (``error``), close 1006 not clean."""
    assert ws.wait(10)
    expected = ["open"] * opened + ["message"] * len(messages) + ["error", "close"]
    assert recorder.types == expected
    assert recorder.messages == list(messages)
    error_event, close_event = recorder.events[-2:]
    assert isinstance(error_event.error, error), repr(error_event.error)
    assert (close_event.code, close_event.was_clean) == (1006, False)
    assert ws.ready_state == syncws.CLOSED


def deflate_server(
    factory: Callable[..., Any],
    handler: Optional[Callable[[Any], None]] = None,
    *,
    params: Optional[Dict[str, Any]] = None,
) -> Any:
    """A syncws server that speaks permessage-deflate: it negotiates as servers do, or with
    ``params`` answers exactly those parameters whatever the client offered."""
    if params is None:
        negotiate: Callable[[List[str]], Any] = server_negotiate
    else:
        def negotiate(offer: List[str]) -> Any:
            return server_response(params)
    return factory(handler, extensions=[negotiate])


class CheckedCodec:
    """Wraps the server's codec: counts compressed messages each way and, with ``strict_bits``,
    inflates every compressed client frame a second time, one byte at a time, with a window of
    exactly that size, keeping or dropping it between messages as ``no_context`` says.

    Inflating a whole buffer at once does not notice a distance beyond the window (zlib then
    reads the output buffer), so only this shows that the client compresses within what it
    agreed to: a client using a larger window, or its previous message after promising not
    to, makes the second inflater fail ("invalid distance too far back").
    """

    def __init__(self, codec: Any, strict_bits: Optional[int] = None, no_context: bool = False) -> None:
        self.codec = codec
        self.strict_bits = strict_bits
        self.no_context = no_context
        self.received = 0  # compressed messages from the client
        self.sent = 0  # compressed messages to the client
        self._inflater: Any = None
        self._strict = bytearray()
        self._decoded = bytearray()

    def encode(self, payload: bytes) -> Any:
        data, rsv1 = self.codec.encode(payload)
        self.sent += rsv1
        return data, rsv1

    def decode_frame(self, payload: bytes, *, first: bool, fin: bool, compressed: bool, max_size: Optional[int]) -> bytes:
        data = self.codec.decode_frame(payload, first=first, fin=fin, compressed=compressed, max_size=max_size)
        if compressed and fin:
            self.received += 1
        if compressed and self.strict_bits is not None:
            if first:
                self._strict, self._decoded = bytearray(), bytearray()
            if self._inflater is None:
                self._inflater = zlib.decompressobj(-self.strict_bits)
            for index in range(len(payload)):
                self._strict += self._inflater.decompress(payload[index : index + 1])
            self._decoded += data
            if fin:
                self._strict += self._inflater.decompress(TAIL)
                assert self._strict == self._decoded
                if self.no_context:
                    self._inflater = None
        return data


def checked_echo(strict_bits: Optional[int] = None, no_context: bool = False, fragment_size: Optional[int] = None) -> Callable[[Any], None]:
    """An echo handler whose codec is a :class:`CheckedCodec` (kept as ``conn.codec``)."""

    def handler(conn: Any) -> None:
        conn.codec = CheckedCodec(conn.codec, strict_bits, no_context)
        while True:
            conn.send(conn.recv(), fragment_size=fragment_size)

    return handler


def encoded(conn: Any, message: Message) -> bytes:
    """``message`` through the server connection's codec, which must compress it."""
    payload, rsv1 = conn.codec.encode(message.encode() if isinstance(message, str) else message)
    assert rsv1
    return payload


def round_trip(ws: syncws.WebSocket, messages: List[Message], timeout: float = 10.0) -> None:
    """Send every message, then check that each comes back intact, with its type, in order."""
    for message in messages:
        ws.send(message)
    received = [ws.recv(timeout) for _ in messages]
    changed = [i for i, (got, sent) in enumerate(zip(received, messages))
               if type(got) is not type(sent) or got != sent]
    assert not changed, f"{len(changed)} of {len(messages)} messages changed, the first is #{changed[0]}"


SAMPLE: List[Message] = ["x" * 1000, b"\x01\x02\x03" * 400, "é🔌" * 200, b"", "short", json_corpus(random.Random(1), 5000)]
SAMPLE_COMPRESSED = 4  # the messages of SAMPLE at or above the 64-byte threshold


# --- negotiation: what is offered, what is reported ---


def test_default_offer_extensions_and_round_trip(ws_server_factory: Any) -> None:
    server = deflate_server(ws_server_factory, checked_echo())
    with syncws.connect(server.url, binary_type="arraybuffer") as ws:
        conn = server.accepted()
        assert conn.request.header_list("Sec-WebSocket-Extensions") == [
            "permessage-deflate; client_max_window_bits"
        ]
        sent = conn.response.header("Sec-WebSocket-Extensions")
        assert sent is not None and sent.startswith("permessage-deflate")
        assert ws.extensions == sent
        round_trip(ws, SAMPLE)
    assert (conn.codec.received, conn.codec.sent) == (SAMPLE_COMPRESSED, SAMPLE_COMPRESSED)


@pytest.mark.parametrize(
    "compression, offer",
    [
        (True, "permessage-deflate; client_max_window_bits"),
        ({}, "permessage-deflate; client_max_window_bits"),
        (
            {"client_max_window_bits": 10, "server_no_context_takeover": True},
            "permessage-deflate; server_no_context_takeover; client_max_window_bits=10, "
            "permessage-deflate; client_max_window_bits=10",
        ),
        (
            DeflateOptions(client_no_context_takeover=True, server_max_window_bits=12, client_max_window_bits=None),
            "permessage-deflate; client_no_context_takeover; server_max_window_bits=12, "
            "permessage-deflate; client_no_context_takeover",
        ),
        (
            DeflateOptions(True, True, 9, 8, threshold=0, compress_level=9),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            "server_max_window_bits=9; client_max_window_bits=8, "
            "permessage-deflate; client_no_context_takeover; client_max_window_bits=8",
        ),
    ],
    ids=["true", "empty-dict", "dict", "options", "all-four"],
)
def test_offer(ws_server_factory: Any, compression: Any, offer: str) -> None:
    server = deflate_server(ws_server_factory, checked_echo())
    with syncws.connect(server.url, compression=compression, binary_type="arraybuffer") as ws:
        conn = server.accepted()
        assert conn.request.header_list("Sec-WebSocket-Extensions") == [offer]
        assert ws.extensions == conn.response.header("Sec-WebSocket-Extensions")
        assert ws.extensions.startswith("permessage-deflate")
        round_trip(ws, SAMPLE)
    assert conn.codec.received >= SAMPLE_COMPRESSED and conn.codec.sent >= SAMPLE_COMPRESSED


def test_compression_false_offers_nothing(ws_server_factory: Any) -> None:
    server = deflate_server(ws_server_factory)
    with syncws.connect(server.url, compression=False, binary_type="arraybuffer") as ws:
        conn = server.accepted()
        assert conn.request.header("Sec-WebSocket-Extensions") is None
        assert conn.response.header("Sec-WebSocket-Extensions") is None
        assert conn.codec is None
        assert ws.extensions == ""
        round_trip(ws, SAMPLE)


@pytest.mark.parametrize(
    "compression, error",
    [
        ("yes", TypeError),
        (1, TypeError),
        (0, TypeError),
        (["permessage-deflate"], TypeError),
        ({"window_bits": 10}, TypeError),
        ({"server_no_context_takeover": 1}, TypeError),
        ({"server_max_window_bits": "10"}, TypeError),
        ({"client_max_window_bits": 7}, ValueError),
        ({"client_max_window_bits": 16}, ValueError),
        ({"server_max_window_bits": 16}, ValueError),
        ({"threshold": -1}, ValueError),
        ({"compress_level": 10}, ValueError),
        ({"mem_level": 0}, ValueError),
    ],
)
def test_bad_compression_values_fail_at_construction(compression: Any, error: type) -> None:
    with pytest.raises(error):
        syncws.WebSocket("ws://127.0.0.1:9/", compression=compression, connect=False)


def _combinations() -> List[Any]:
    """Both flags in all four ways, times window pairs: each side 8..15 with the other left
    out, both sides equal 8..15, and neither given (None = the parameter left out)."""
    pairs = [(bits, None) for bits in range(8, 16)] + [(None, bits) for bits in range(8, 16)]
    pairs += [(bits, bits) for bits in range(8, 16)] + [(None, None)]
    return [
        pytest.param(snct, cnct, smwb, cmwb,
                     id=f"{'S' if snct else 's'}{'C' if cnct else 'c'}-{smwb or '_'}-{cmwb or '_'}")
        for snct in (False, True) for cnct in (False, True) for smwb, cmwb in pairs
    ]


@pytest.mark.parametrize("snct, cnct, smwb, cmwb", _combinations())
def test_every_combination_the_server_can_choose(
    ws_server_factory: Any, snct: bool, cnct: bool, smwb: Optional[int], cmwb: Optional[int]
) -> None:
    """Group 13: the server answers exactly these parameters; the client honours them.

    The server inflates what the client sends with a strict window of the agreed size (see
    :class:`CheckedCodec`) and echoes in 64-byte frames, so the client's inflater meets the
    server's window across frames, and with context takeover across messages too.
    """
    params = {
        "server_no_context_takeover": snct,
        "client_no_context_takeover": cnct,
        "server_max_window_bits": smwb,
        "client_max_window_bits": cmwb,
    }
    handler = checked_echo(strict_bits=cmwb or 15, no_context=cnct, fragment_size=64)
    server = deflate_server(ws_server_factory, handler, params=params)
    probe = window_probe(random.Random(smwb or 0))
    # The second message repeats the end of the first (within every window), the third is
    # binary: with context takeover, later messages refer back to earlier ones.
    messages: List[Message] = [probe, probe[-200:], probe[-3000:].encode(), "ok", SAMPLE[2]]
    with syncws.connect(server.url, binary_type="arraybuffer") as ws:
        conn = server.accepted()
        assert ws.extensions == conn.response.header("Sec-WebSocket-Extensions")
        round_trip(ws, messages)
    assert conn.codec.received == 4 and conn.codec.sent == 4


@pytest.mark.parametrize(
    "answer, params",
    [
        (
            'permessage-deflate; server_max_window_bits="10"; client_max_window_bits="9"',
            {"server_max_window_bits": 10, "client_max_window_bits": 9},
        ),
        (
            "permessage-deflate;server_no_context_takeover;client_max_window_bits=8",
            {"server_no_context_takeover": True, "client_max_window_bits": 8},
        ),
        ("permessage-deflate \t; client_no_context_takeover", {"client_no_context_takeover": True}),
        ("permessage-deflate, ", {}),
    ],
    ids=["quoted", "no-spaces", "tabs", "empty-element"],
)
def test_answers_in_any_valid_syntax_are_accepted(ws_server_factory: Any, answer: str, params: Dict[str, Any]) -> None:
    """The server's header is written oddly but validly; its codec uses ``params``."""

    def handshake(request: Any, response: Any) -> None:
        response.set_header("Sec-WebSocket-Extensions", answer)
        response.codec = server_response(params)[1]

    handler = checked_echo(
        strict_bits=params.get("client_max_window_bits", 15),
        no_context=params.get("client_no_context_takeover", False),
    )
    server = ws_server_factory(handler, handshake=handshake)
    with syncws.connect(server.url, binary_type="arraybuffer") as ws:
        assert ws.extensions.startswith("permessage-deflate")
        round_trip(ws, SAMPLE)
        conn = server.accepted()
    assert (conn.codec.received, conn.codec.sent) == (SAMPLE_COMPRESSED, SAMPLE_COMPRESSED)


@pytest.mark.parametrize(
    "answers, compression",
    [
        (["x-webkit-deflate-frame"], True),
        (["permessage-deflate, x-custom"], True),
        (["permessage-deflate; unknown_parameter"], True),
        (["permessage-deflate; server_no_context_takeover; server_no_context_takeover"], True),
        (["permessage-deflate; client_max_window_bits=10; client_max_window_bits=10"], True),
        (["permessage-deflate; client_no_context_takeover=true"], True),
        (['permessage-deflate; server_no_context_takeover=""'], True),
        (["permessage-deflate; server_max_window_bits=7"], True),
        (["permessage-deflate; server_max_window_bits=16"], True),
        (["permessage-deflate; client_max_window_bits=7"], True),
        (["permessage-deflate; client_max_window_bits=16"], True),
        (["permessage-deflate; server_max_window_bits=010"], True),
        (["permessage-deflate; server_max_window_bits"], True),
        (["permessage-deflate; client_max_window_bits"], True),
        (["permessage-deflate; client_max_window_bits=10"], {"client_max_window_bits": None}),
        (["permessage-deflate; client_max_window_bits=12"], {"client_max_window_bits": 10}),
        # The tuned offer's request was not granted, and the answer does not fit the fallback
        # offer either (a client window that was not offered / above the one offered).
        (
            ["permessage-deflate; client_max_window_bits"],
            {"server_no_context_takeover": True, "client_max_window_bits": None},
        ),
        (
            ["permessage-deflate; server_max_window_bits=12; client_max_window_bits=11"],
            {"server_max_window_bits": 10, "client_max_window_bits": 10},
        ),
        (["permessage-deflate"], False),
        (["permessage-deflate, permessage-deflate"], True),
        (["permessage-deflate", "permessage-deflate; client_max_window_bits=10"], True),
        (["permessage-deflate;"], True),
    ],
    ids=[
        "unknown-extension", "unknown-extension-too", "unknown-parameter", "duplicate-flag",
        "duplicate-window", "value-on-flag", "empty-value-on-flag", "server-window-7",
        "server-window-16", "client-window-7", "client-window-16", "leading-zero",
        "server-window-without-value", "client-window-without-value", "client-window-not-offered",
        "client-window-above-offer", "flag-not-echoed-nor-fallback", "window-above-offer-and-fallback",
        "not-offered-at-all", "two-answers-one-header", "two-answers-two-headers", "syntax",
    ],
)
def test_invalid_answers_fail_the_handshake(ws_server_factory: Any, answers: List[str], compression: Any) -> None:
    """RFC 7692 5 and 7.1: the client fails the connection; no open, error then close 1006."""

    def handshake(request: Any, response: Any) -> None:
        for value in answers:
            response.add_header("Sec-WebSocket-Extensions", value)

    server = ws_server_factory(handshake=handshake)
    ws, recorder = open_ws(server.url, compression=compression)
    assert_failed(ws, recorder, syncws.HandshakeError, opened=False)
    assert ws.extensions == ""
    conn = server.accepted()
    assert conn.upgraded  # the 101 went out: it is the client that refused it
    assert conn.join(5)
    assert conn.closed_by_client is None  # and it sent no frame at all


def gorilla_like(offer: List[str]) -> Any:
    """Answer as gorilla/websocket does: accept the first permessage-deflate element, whatever
    its parameters, always with the same two flags (no window parameters at all)."""
    if not any(element.strip().startswith("permessage-deflate") for value in offer for element in value.split(",")):
        return None
    return server_response({"server_no_context_takeover": True, "client_no_context_takeover": True})


def test_a_tuned_offer_still_negotiates_with_a_server_that_ignores_window_requests(
    ws_server_factory: Any,
) -> None:
    """The README's many-connections advice against a gorilla-like server: compression on."""
    # The client keeps its promises: a 10-bit window, no context takeover (as answered).
    server = ws_server_factory(checked_echo(strict_bits=10, no_context=True), extensions=[gorilla_like])
    tuned = {"client_max_window_bits": 10, "server_max_window_bits": 10, "mem_level": 5}
    with syncws.connect(server.url, compression=tuned, binary_type="arraybuffer") as ws:
        conn = server.accepted()
        assert conn.request.header_list("Sec-WebSocket-Extensions") == [
            "permessage-deflate; server_max_window_bits=10; client_max_window_bits=10, "
            "permessage-deflate; client_max_window_bits=10"
        ]
        assert ws.extensions == "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        round_trip(ws, SAMPLE)
    assert conn.codec.received >= SAMPLE_COMPRESSED and conn.codec.sent >= SAMPLE_COMPRESSED


# --- compressed messages (group 12) ---


@pytest.mark.parametrize("context_takeover", [True, False], ids=["context-takeover", "no-context-takeover"])
def test_a_thousand_messages_echo_intact(ws_server_factory: Any, context_takeover: bool) -> None:
    params = {} if context_takeover else {"server_no_context_takeover": True, "client_no_context_takeover": True}
    server = deflate_server(ws_server_factory, checked_echo(), params=params)
    messages = mixed_messages(1000, seed=12)
    assert min(map(len, messages)) < 32 and max(map(len, messages)) > 64 * KIB
    with syncws.connect(server.url, binary_type="arraybuffer") as ws:
        round_trip(ws, messages, timeout=20)
        conn = server.accepted()
    compressible = sum(len(m.encode() if isinstance(m, str) else m) >= 64 for m in messages)
    # With context takeover every message from 64 bytes on must go compressed; without it,
    # short ones that would not shrink go as they are.
    for count in (conn.codec.received, conn.codec.sent):
        assert (count == compressible) if context_takeover else (count >= compressible * 3 // 4)


def test_fragmented_compressed_messages_from_the_server(ws_server_factory: Any) -> None:
    """RSV1 on the first frame only, whatever the frames look like (RFC 7692 6.1)."""
    text = json_corpus(random.Random(5), 3000)
    data = binary_corpus(random.Random(6), 2000)
    pongs: List[List[bytes]] = []

    def script(conn: Any) -> None:
        payload = encoded(conn, text)
        conn.send_fragments(Opcode.TEXT, [payload[:10], payload[10:100], payload[100:]], rsv1=True)
        payload = encoded(conn, data)
        conn.send_fragments(Opcode.BINARY, [payload[i : i + 1] for i in range(len(payload))], rsv1=True)
        payload = encoded(conn, text)  # with context takeover: tiny, all back-references
        conn.send_fragments(Opcode.TEXT, [b"", payload, b""], rsv1=True)
        payload = encoded(conn, data[::-1])
        conn.send_frame(Opcode.BINARY, payload[:50], fin=False, rsv1=True)
        conn.ping(b"between")
        conn.send_frame(Opcode.CONT, payload[50:-3], fin=False)
        conn.send_frame(Opcode.CONT, payload[-3:])
        conn.send("done")  # through the codec: the context is still in step
        conn.expect_close()
        pongs.append(conn.pongs)

    server = deflate_server(ws_server_factory, script)
    with syncws.connect(server.url, binary_type="arraybuffer") as ws:
        assert [ws.recv(5) for _ in range(5)] == [text, data, text, data[::-1], "done"]
        conn = server.accepted()
    assert conn.join(5)
    assert pongs == [[b"between"]]


def test_compressed_message_in_one_byte_chunks(ws_server_factory: Any) -> None:
    text = "🔌 café " * 150 + json_corpus(random.Random(7), 1000)
    data = binary_corpus(random.Random(8), 1000)

    def script(conn: Any) -> None:
        for message in (text, data, text):
            conn.send(message, chunk_size=1)
        conn.expect_close()

    server = deflate_server(ws_server_factory, script)
    with syncws.connect(server.url, binary_type="arraybuffer") as ws:
        assert [ws.recv(10) for _ in range(3)] == [text, data, text]


# --- protocol errors on compressed connections ---


def _far_distance() -> bytes:
    """Valid DEFLATE referring 2,000 bytes back, before anything the client has seen (a
    preset dictionary it does not have): "invalid distance too far back"."""
    history = random.Random(3).randbytes(2000)
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15, zdict=history)
    data = compressor.compress(history[:200]) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return data[:-4]


def _rsv1_on_continuation(conn: Any) -> None:
    payload = encoded(conn, GOOD)
    conn.send_frame(Opcode.TEXT, payload[:5], fin=False, rsv1=True)
    conn.send_frame(Opcode.CONT, payload[5:], rsv1=True)


def _rsv1_on_continuation_of_uncompressed(conn: Any) -> None:
    conn.send_frame(Opcode.BINARY, b"abc", fin=False)
    conn.send_frame(Opcode.CONT, b"def", rsv1=True)


def _bad_frame(opcode: int, payload: Union[bytes, Callable[[Any], bytes]]) -> Callable[[Any], None]:
    """A script step sending one frame with RSV1; ``payload`` may depend on the connection."""
    return lambda conn: conn.send_frame(opcode, payload(conn) if callable(payload) else payload, rsv1=True)


GOOD = "a good compressed message " * 10
#: name: (what the server sends after GOOD, the client's error, the code of its Close frame)
PROTOCOL_ERRORS: Dict[str, Any] = {
    # RSV1 belongs to the first frame of a message only (RFC 7692 6.1).
    "rsv1-on-continuation": (_rsv1_on_continuation, syncws.ProtocolError, 1002),
    "rsv1-on-continuation-of-uncompressed": (_rsv1_on_continuation_of_uncompressed, syncws.ProtocolError, 1002),
    # Control frames are never compressed (RFC 7692 6.1).
    "compressed-ping": (_bad_frame(Opcode.PING, b"x"), syncws.ProtocolError, 1002),
    "compressed-pong": (_bad_frame(Opcode.PONG, b"x"), syncws.ProtocolError, 1002),
    "compressed-close": (_bad_frame(Opcode.CLOSE, b"\x03\xe8"), syncws.ProtocolError, 1002),
    # Data that does not inflate: 1002, the codec's choice (see syncws.protocol.deflate).
    "invalid-block-type": (_bad_frame(Opcode.BINARY, b"\xff\xff\xff\xff"), syncws.ProtocolError, 1002),
    "invalid-stored-length": (_bad_frame(Opcode.BINARY, b"\x00\x05\x00\x00\x00hello"), syncws.ProtocolError, 1002),
    "distance-too-far-back": (_bad_frame(Opcode.BINARY, _far_distance()), syncws.ProtocolError, 1002),
    # Inflates fine, to text that is not UTF-8.
    "invalid-utf8-inside": (
        _bad_frame(Opcode.TEXT, lambda conn: encoded(conn, b"ok \xc0\xaf " * 20)), syncws.PayloadError, 1007,
    ),
}


@pytest.mark.parametrize("name", list(PROTOCOL_ERRORS))
def test_protocol_errors_fail_the_connection(ws_server_factory: Any, name: str) -> None:
    """What came before is delivered; then the client sends Close with the RFC code, and the
    events are error then close 1006."""
    send_bad, error, code = PROTOCOL_ERRORS[name]
    closes: List[Any] = []

    def script(conn: Any) -> None:
        conn.send(GOOD)
        send_bad(conn)
        closes.append(conn.expect_close())

    server = deflate_server(ws_server_factory, script)
    ws, recorder = open_ws(server.url)
    assert_failed(ws, recorder, error, messages=[GOOD])
    assert server.accepted().join(5)
    assert [close.code for close in closes] == [code]


def test_rsv1_without_negotiation_is_a_protocol_error(ws_server_factory: Any) -> None:
    closes: List[Any] = []

    def script(conn: Any) -> None:
        assert conn.codec is None
        conn.send_frame(Opcode.TEXT, zlib.compress(b"hello" * 20)[2:-4], rsv1=True)
        closes.append(conn.expect_close())

    server = deflate_server(ws_server_factory, script)
    ws, recorder = open_ws(server.url, compression=False)
    assert_failed(ws, recorder, syncws.ProtocolError)
    assert server.accepted().join(5)
    assert [close.code for close in closes] == [1002]


# --- the decompression bomb ---


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """1 GiB of zeros as one compressed message payload (about 1 MB), built without ever
    holding more than 8 MiB: a self-contained piece (a full flush drops the history) for
    8 MiB, 128 times over; the tail is stripped as RFC 7692 7.2.1 says."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_RLE)
    piece = compressor.compress(bytes(8 * MIB)) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert piece.endswith(TAIL)
    payload = (piece * 128)[: -len(TAIL)]
    assert len(payload) < MIB
    return payload


def bomb_server(factory: Callable[..., Any], payload: bytes, frame_size: Optional[int], closes: List[Any]) -> Any:
    """A server that sends ``payload`` as one compressed binary message, then records the
    client's Close (the client may already have closed TCP while the bomb was still going out).
    On ``/warm-up`` it sends a short compressed message instead."""

    def script(conn: Any) -> None:
        if conn.request.path == "/warm-up":
            conn.send("warm-up " * 100)
            conn.expect_close()
            return
        step = frame_size or len(payload)
        try:
            conn.send_fragments(Opcode.BINARY, [payload[i : i + step] for i in range(0, len(payload), step)], rsv1=True)
        except OSError:
            pass
        closes.append(conn.expect_close())

    return deflate_server(factory, script)


@pytest.mark.parametrize("frame_size", [None, 64 * KIB], ids=["one-frame", "64KiB-frames"])
def test_decompression_bomb_closes_with_1009(ws_server_factory: Any, bomb: bytes, frame_size: Optional[int]) -> None:
    closes: List[Any] = []
    server = bomb_server(ws_server_factory, bomb, frame_size, closes)
    ws, recorder = open_ws(server.url, max_message_size=MIB)
    assert_failed(ws, recorder, syncws.MessageTooBig)
    assert server.accepted().join(5)
    assert [close.code for close in closes] == [1009]


BOMB_CLIENT = """
import json, resource, sys
import syncws

def peak_kib():
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS, KiB elsewhere

events = []
handlers = dict(onopen=events.append, onmessage=events.append, onerror=events.append, onclose=events.append)
with syncws.connect(sys.argv[1] + "warm-up") as warm:  # imports, threads, zlib: all but the bomb
    warm.recv(10)
before = peak_kib()
ws = syncws.WebSocket(sys.argv[1], max_message_size=int(sys.argv[2]), **handlers)
assert ws.wait(20)
print(json.dumps({
    "growth_kib": peak_kib() - before,
    "events": [[e.type, type(getattr(e, "error", None)).__name__, getattr(e, "code", None)] for e in events],
}))
"""


def test_decompression_bomb_memory_stays_bounded(ws_server_factory: Any, bomb: bytes) -> None:
    """The client process's peak RSS grows by a few MiB, not by the 1 GiB the bomb holds."""
    pytest.importorskip("resource")
    closes: List[Any] = []
    server = bomb_server(ws_server_factory, bomb, 64 * KIB, closes)
    root = os.path.dirname(os.path.dirname(os.path.abspath(syncws.__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    result = subprocess.run(
        [sys.executable, "-c", BOMB_CLIENT, server.url, str(MIB)], env=env, capture_output=True, text=True, timeout=40
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["events"] == [["open", "NoneType", None], ["error", "MessageTooBig", None], ["close", "NoneType", 1006]]
    assert report["growth_kib"] < 64 * 1024, report
    assert [close.code for close in closes] == [1009]


# --- interop: the websockets package's server ---


@pytest.mark.interop
@pytest.mark.parametrize("compression", [True, False], ids=["compression", "no-compression"])
def test_interop_with_the_websockets_server(compression: bool) -> None:
    sync_server = pytest.importorskip("websockets.sync.server")
    seen: List[Any] = []

    def handler(peer: Any) -> None:
        seen.append((peer.request.headers.get("Sec-WebSocket-Extensions"),
                     peer.response.headers.get("Sec-WebSocket-Extensions"),
                     [extension.name for extension in peer.protocol.extensions]))
        for message in peer:
            peer.send(message)

    messages = mixed_messages(200, seed=13, low=1, high=256 * KIB) + ["", b""]
    with sync_server.serve(handler, "127.0.0.1", 0, max_size=None) as server:
        thread = threading.Thread(target=server.serve_forever, name="websockets-server", daemon=True)
        thread.start()
        try:
            url = f"ws://127.0.0.1:{server.socket.getsockname()[1]}/"
            with syncws.connect(url, compression=compression, binary_type="arraybuffer") as ws:
                round_trip(ws, messages, timeout=20)
                extensions = ws.extensions
        finally:
            server.shutdown()
            thread.join(10)
    [(offer, answer, negotiated)] = seen
    if compression:
        assert offer == "permessage-deflate; client_max_window_bits"
        assert answer is not None and answer.startswith("permessage-deflate")
        assert extensions == answer
        assert negotiated == ["permessage-deflate"]
    else:
        assert (offer, answer, negotiated, extensions) == (None, None, [], "")
