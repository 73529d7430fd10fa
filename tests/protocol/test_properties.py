"""Property-based tests (hypothesis) of the sans-I/O core, ``syncws.protocol``.

1. Round trips. Any sequence of messages (text with any Unicode, astral planes included;
   binary; empty; from a few bytes to a few MiB), framed with any fragmentation, with pings
   and pongs between the fragments, cut into arbitrary chunks, arrives identical and in order,
   with and without permessage-deflate under every parameter combination, in both directions:

   * client role: what a server sends, read by ``ClientConnection.receive_data`` (and through
     the engine's direct-receive path);
   * server role: what ``ClientConnection.send_message`` (or any fragmentation of it) produces,
     read by the frame layer's masked parser, ``FrameParser(expect_masked=True)``, and the
     server side of ``PerMessageDeflate``. Message assembly for the server role lives in
     ``syncws/server.py`` today; :func:`server_messages` below is that role's reassembly,
     written out, until the protocol core has one for both roles.

2. Hostile input. Any bytes fed to the frame parser, the connection, the handshake-response
   parser or the inflater give valid events or the documented error (``ProtocolError`` with
   close code 1002, 1007 or 1009, ``HandshakeError``), never another exception, and the
   buffers stay bounded.

Profiles: ``ci`` (the default: a few dozen examples per test, the whole module in well under a
minute) and ``thorough`` (thousands of examples, for a local run):
``SYNCWS_HYPOTHESIS_PROFILE=thorough python -m pytest tests/protocol/test_properties.py``.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import random
import tempfile
import tracemalloc
import zlib
from pathlib import Path
from types import ModuleType
from typing import Any, List, Optional, Tuple, Union

import pytest

hypothesis = pytest.importorskip("hypothesis")
import hypothesis.strategies as st  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.configuration import set_hypothesis_home_dir  # noqa: E402

from syncws.errors import MessageTooBig, ProtocolError  # noqa: E402
from syncws.protocol.connection import (  # noqa: E402
    ClientConnection,
    CloseReceived,
    Failure,
    Message,
    Ping,
    Pong,
    close_payload,
)
from syncws.protocol.deflate import (  # noqa: E402
    DeflateOptions,
    DeflateParameters,
    PerMessageDeflate,
)
from syncws.protocol.frames import Frame, FrameParser, Opcode, frame_header, serialize_frame  # noqa: E402
from syncws.protocol.handshake import accept_key  # noqa: E402

# Hypothesis keeps its files (the example database, a Unicode table) out of the repository.
set_hypothesis_home_dir(os.path.join(tempfile.gettempdir(), "syncws-hypothesis"))
_COMMON = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# The CI profile draws the same examples on every run (derandomize), so that what the coverage
# gate measures does not depend on luck; the thorough profile explores afresh each time.
settings.register_profile("ci", max_examples=40, database=None, derandomize=True, **_COMMON)
settings.register_profile("thorough", max_examples=3000, **_COMMON)
PROFILE = os.environ.get("SYNCWS_HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)
# A thorough run takes minutes per test: no per-test timeout then.
pytestmark = pytest.mark.timeout(0 if PROFILE == "thorough" else 120)

Data = Union[str, bytes]

# -- strategies -----------------------------------------------------------------------------

KiB = 1024
MiB = 1024 * KiB


@st.composite
def large_messages(draw: Any, max_size: int) -> Data:
    """A message of up to ``max_size`` bytes, made cheaply from a seed (hypothesis would be slow
    to draw megabytes byte by byte). Text repeats a drawn string of any Unicode."""
    size = draw(st.integers(0, max_size))
    if draw(st.booleans()):
        unit = draw(st.text(min_size=1, max_size=8))
        count = size // max(1, len(unit.encode("utf-8")))
        return unit * count
    return random.Random(draw(st.integers(0, 2**32))).randbytes(size)


def messages(large: int = 200 * KiB) -> st.SearchStrategy[Data]:
    """Mostly small messages of any kind; now and then one of up to ``large`` bytes (enough for
    16- and 64-bit lengths and the direct-receive path)."""
    return st.one_of(
        st.text(max_size=40),
        st.binary(max_size=40),
        st.sampled_from(["", b""]),
        st.text(max_size=300),
        st.binary(min_size=120, max_size=70 * KiB),
        large_messages(large),
    )


control_frames = st.one_of(
    st.tuples(st.just(Opcode.PING), st.binary(max_size=125)),
    st.tuples(st.just(Opcode.PONG), st.binary(max_size=125)),
)

deflate_parameters = st.builds(
    DeflateParameters,
    server_no_context_takeover=st.booleans(),
    client_no_context_takeover=st.booleans(),
    server_max_window_bits=st.integers(8, 15),
    client_max_window_bits=st.integers(8, 15),
)

codec_options = st.builds(
    DeflateOptions,
    threshold=st.sampled_from([0, 1, 64, 1000]),
    compress_level=st.integers(-1, 9),
    mem_level=st.integers(1, 9),
)


def encode(data: Data) -> Tuple[bytes, bool]:
    """``(payload, is_text)``."""
    return (data.encode("utf-8"), True) if isinstance(data, str) else (data, False)


def draw_cuts(draw: Any, length: int) -> List[Tuple[int, int]]:
    """Any fragmentation of ``length`` bytes: ``(start, end)`` of each fragment, at least one."""
    if length and draw(st.integers(0, 3)) == 0:
        return [(0, length)]  # whole, the common case
    cuts = sorted(draw(st.lists(st.integers(0, length), max_size=6)))
    bounds = [0] + cuts + [length]
    return list(zip(bounds, bounds[1:]))


def draw_chunks(draw: Any, data: bytes) -> List[bytes]:
    """``data`` cut where hypothesis likes: single bytes, small pieces, or at random offsets."""
    style = draw(st.sampled_from(["whole", "bytes", "small", "random"]))
    if style == "whole" or not data:
        return [data]
    if style == "bytes" and len(data) <= 4 * KiB:
        return [data[i : i + 1] for i in range(len(data))]
    if style in ("bytes", "small"):
        size = draw(st.integers(1, 64)) * (1 + len(data) // (64 * KiB))  # bounded call count
        return [data[i : i + size] for i in range(0, len(data), size)]
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(data) - 1)), max_size=20))))
    bounds = [0] + cuts + [len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:]) if a < b]


# -- the client role: server frames in, events out ------------------------------------------


def fragmented(
    draw: Any, opcode: int, payload: bytes, rsv1: bool, mask: bool, events: List[Any]
) -> List[bytes]:
    """One message's frames, cut anywhere, with pings and pongs before any fragment; appends
    the control frames' events to ``events`` (the caller appends the message's)."""
    wire: List[bytes] = []
    pieces = draw_cuts(draw, len(payload))
    for index, (start, end) in enumerate(pieces):
        for control, body in draw(st.lists(control_frames, max_size=2)):
            wire += serialize_frame(control, body, mask=mask)
            events.append(Ping(body) if control == Opcode.PING else Pong(body))
        first, last = index == 0, index == len(pieces) - 1
        wire += serialize_frame(
            opcode if first else Opcode.CONT,
            payload[start:end],
            fin=last,
            rsv1=rsv1 and first,
            mask=mask,
        )
    return wire


def server_wire(
    draw: Any, items: List[Data], codec: Optional[PerMessageDeflate]
) -> Tuple[bytes, List[Any]]:
    """What a server sends for ``items`` (any fragmentation, control frames in between) and the
    events a client must report for it, in order."""
    wire: List[bytes] = []
    expected: List[Any] = []
    for data in items:
        payload, text = encode(data)
        rsv1 = False
        if codec is not None:
            payload, rsv1 = codec.encode(payload)
        wire += fragmented(draw, Opcode.TEXT if text else Opcode.BINARY, payload, rsv1, False, expected)
        expected.append(Message(data))
    return b"".join(wire), expected


def client_receives(conn: ClientConnection, chunks: List[bytes], direct: bool) -> List[Any]:
    """Feed ``chunks`` as the engine does; with ``direct``, through every direct view offered."""
    events: List[Any] = []
    for chunk in chunks:
        position = 0
        while position < len(chunk):
            view = conn.direct_buffer() if direct else None
            if view is None:
                events += conn.receive_data(chunk[position:])
                break
            count = min(len(view), len(chunk) - position)
            view[:count] = chunk[position : position + count]
            view.release()
            position += count
            events += conn.receive_direct(count)
    return events


def check_pongs_owed(conn: ClientConnection, events: List[Any]) -> None:
    """Each ping is answered with a masked pong carrying its payload, in order."""
    parser = FrameParser(expect_masked=True)
    owed = list(parser.feed(b"".join(conn.data_to_send())))
    pings = [event.payload for event in events if type(event) is Ping]
    assert owed == [Frame(Opcode.PONG, payload) for payload in pings]


@given(data=st.data(), items=st.lists(messages(), max_size=6), direct=st.booleans())
def test_client_receives_any_messages_intact(data: Any, items: List[Data], direct: bool) -> None:
    wire, expected = server_wire(data.draw, items, None)
    conn = ClientConnection()
    conn.DIRECT_MIN = 126  # type: ignore[misc]  # the direct path for small frames too
    events = client_receives(conn, draw_chunks(data.draw, wire), direct)
    assert events == expected
    assert [type(m.data) for m in events if type(m) is Message] == [type(d) for d in items]
    check_pongs_owed(conn, events)


@given(
    data=st.data(),
    items=st.lists(messages(), max_size=6),
    agreed=deflate_parameters,
    options=codec_options,
    direct=st.booleans(),
)
def test_client_receives_compressed_messages_intact(
    data: Any, items: List[Data], agreed: DeflateParameters, options: DeflateOptions, direct: bool
) -> None:
    server = PerMessageDeflate("server", agreed, options=options)
    wire, expected = server_wire(data.draw, items, server)
    conn = ClientConnection(extension=PerMessageDeflate("client", agreed))
    conn.DIRECT_MIN = 126  # type: ignore[misc]
    events = client_receives(conn, draw_chunks(data.draw, wire), direct)
    assert events == expected
    check_pongs_owed(conn, events)


@settings(max_examples=max(3, settings().max_examples // 8))
@given(
    data=st.data(),
    items=st.lists(large_messages(4 * MiB), min_size=1, max_size=2),
    agreed=st.one_of(st.none(), deflate_parameters),
)
def test_multi_megabyte_messages_intact(
    data: Any, items: List[Data], agreed: Optional[DeflateParameters]
) -> None:
    server = None if agreed is None else PerMessageDeflate("server", agreed)
    wire, expected = server_wire(data.draw, items, server)
    client_codec = None if agreed is None else PerMessageDeflate("client", agreed)
    conn = ClientConnection(extension=client_codec)
    size = data.draw(st.sampled_from([16 * KiB, 256 * KiB]))
    chunks = [wire[i : i + size] for i in range(0, len(wire), size)]
    assert client_receives(conn, chunks, direct=True) == expected


@given(data=st.data(), items=st.lists(messages(), min_size=1, max_size=4))
def test_max_message_size_holds_whatever_the_framing(data: Any, items: List[Data]) -> None:
    """Messages up to the limit arrive; the first one above it fails the connection with 1009
    (after decompression too), and nothing after it is delivered."""
    limit = data.draw(st.integers(0, 300 * KiB))
    agreed = data.draw(st.one_of(st.none(), deflate_parameters))
    server = None if agreed is None else PerMessageDeflate("server", agreed)
    wire, expected = server_wire(data.draw, items, server)
    conn = ClientConnection(
        max_message_size=limit,
        extension=None if agreed is None else PerMessageDeflate("client", agreed),
    )
    events = client_receives(conn, draw_chunks(data.draw, wire), data.draw(st.booleans()))
    too_big = [i for i, e in enumerate(expected) if type(e) is Message and len(encode(e.data)[0]) > limit]
    if not too_big:
        assert events == expected
        return
    assert type(events[-1]) is Failure and isinstance(events[-1].error, MessageTooBig)
    assert events[-1].error.close_code == 1009
    delivered = [e for e in events[:-1] if type(e) is Message]
    assert delivered == [e for e in expected[: too_big[0]] if type(e) is Message]


# -- the server role: client frames in, through the masked frame parser ---------------------


def server_messages(chunks: List[bytes], codec: Optional[PerMessageDeflate]) -> List[Any]:
    """Messages (and control frames as events) a server reads from ``chunks``: the masked frame
    parser plus RFC 6455 5.4 reassembly and RFC 7692 inflation."""
    parser = FrameParser(expect_masked=True)
    frames = [frame for chunk in chunks for frame in parser.feed(chunk)]
    assert parser.buffered == 0
    events: List[Any] = []
    parts: List[bytes] = []
    opcode, compressed = Opcode.CONT, False
    for frame in frames:
        assert not (frame.rsv2 or frame.rsv3)
        if frame.opcode == Opcode.PING:
            events.append(Ping(frame.payload))
            continue
        if frame.opcode == Opcode.PONG:
            events.append(Pong(frame.payload))
            continue
        first = frame.opcode != Opcode.CONT
        if first:
            opcode, compressed, parts = frame.opcode, frame.rsv1, []
        payload = frame.payload
        if codec is not None:
            payload = codec.decode_frame(
                payload, first=first, fin=frame.fin, compressed=compressed, max_size=None
            )
        parts.append(payload)
        if frame.fin:
            whole = b"".join(parts)
            events.append(Message(whole.decode("utf-8") if opcode == Opcode.TEXT else whole))
    return events


def client_wire(
    draw: Any, items: List[Data], conn: ClientConnection, codec: Optional[PerMessageDeflate]
) -> Tuple[bytes, List[Any]]:
    """What a client sends: ``send_message`` (one frame, as syncws sends) and ``send_ping``,
    or any fragmentation of the same compressed payload with pings and pongs between the
    fragments (as other clients may); the events a server must see, in order."""
    wire: List[bytes] = []
    expected: List[Any] = []
    for data in items:
        payload, text = encode(data)
        if draw(st.booleans()):
            wire += conn.send_message(payload, text)
            expected.append(Message(data))
            for body in draw(st.lists(st.binary(max_size=125), max_size=1)):
                wire += conn.send_ping(body)
                expected.append(Ping(body))
        else:
            rsv1 = False
            if codec is not None:
                payload, rsv1 = codec.encode(payload)
            opcode = Opcode.TEXT if text else Opcode.BINARY
            wire += fragmented(draw, opcode, payload, rsv1, True, expected)
            expected.append(Message(data))
    return b"".join(wire), expected


@given(
    data=st.data(),
    items=st.lists(messages(), max_size=6),
    agreed=st.one_of(st.none(), deflate_parameters),
    options=codec_options,
)
def test_server_reads_any_client_messages_intact(
    data: Any, items: List[Data], agreed: Optional[DeflateParameters], options: DeflateOptions
) -> None:
    client_codec = None if agreed is None else PerMessageDeflate("client", agreed, options=options)
    conn = ClientConnection(extension=client_codec)
    wire, expected = client_wire(data.draw, items, conn, client_codec)
    server_codec = None if agreed is None else PerMessageDeflate("server", agreed)
    events = server_messages(draw_chunks(data.draw, wire), server_codec)
    assert events == expected
    assert [type(e.data) for e in events if type(e) is Message] == [type(d) for d in items]


@pytest.mark.parametrize(
    "agreed",
    [DeflateParameters(*combination) for combination in itertools.product(
        (False, True), (False, True), range(8, 16), range(8, 16))],
    ids=lambda p: "snct{:d}-cnct{:d}-s{}-c{}".format(*p),
)
def test_every_deflate_parameter_combination_both_ways(agreed: DeflateParameters) -> None:
    """All 256 agreements of RFC 7692's four parameters: the same mixed messages (repetitive,
    random, empty, astral text, 70 KB), fragmented and fed in 7-byte chunks, arrive intact
    in both directions."""
    rng = random.Random(str(agreed))
    items: List[Data] = [
        "hello " * 50, rng.randbytes(300), "", b"", "\U0001F600 astral \u00e9" * 40,
        bytes(70 * KiB), ("{\"seq\": %d}" % rng.randrange(10**6)) * 3,
    ]
    wire, expected = b"", []
    server = PerMessageDeflate("server", agreed, options=DeflateOptions(threshold=0))
    for data in items:
        payload, text = encode(data)
        payload, rsv1 = server.encode(payload)
        third = len(payload) // 3
        for index, (start, end) in enumerate([(0, third), (third, 2 * third), (2 * third, len(payload))]):
            wire += b"".join(serialize_frame(
                (Opcode.TEXT if text else Opcode.BINARY) if index == 0 else Opcode.CONT,
                payload[start:end], fin=index == 2, rsv1=rsv1 and index == 0, mask=False))
        expected.append(Message(data))
    conn = ClientConnection(extension=PerMessageDeflate("client", agreed))
    assert client_receives(conn, [wire[i : i + 7] for i in range(0, len(wire), 7)], False) == expected

    client_codec = PerMessageDeflate("client", agreed, options=DeflateOptions(threshold=0))
    sender = ClientConnection(extension=client_codec)
    outgoing = b"".join(b"".join(sender.send_message(*encode(data))) for data in items)
    server_codec = PerMessageDeflate("server", agreed)
    chunks = [outgoing[i : i + 7] for i in range(0, len(outgoing), 7)]
    assert server_messages(chunks, server_codec) == expected


# -- hostile input --------------------------------------------------------------------------

fuzz_dir = Path(__file__).parents[1] / "fuzz"


def _harness(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"fuzz_{name}", fuzz_dir / f"fuzz_{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fuzz_frames = _harness("frames")
fuzz_http_response = _harness("http_response")


@given(
    expect_masked=st.booleans(),
    max_payload=st.one_of(st.none(), st.integers(0, 1000)),
    data=st.data(),
    stream=st.binary(max_size=2000),
)
def test_frame_parser_on_any_bytes(
    expect_masked: bool, max_payload: Optional[int], data: Any, stream: bytes
) -> None:
    """Frames that re-serialize to exactly the bytes consumed, or ProtocolError (1002/1009)
    once and nothing after; at most one frame's bytes are held."""
    parser = FrameParser(expect_masked=expect_masked, max_payload=max_payload)
    consumed = 0
    failed = False
    for chunk in draw_chunks(data.draw, stream):
        try:
            for frame in parser.feed(chunk):
                assert not failed
                if frame.opcode < 8:
                    assert max_payload is None or len(frame.payload) <= max_payload
                else:
                    assert frame.fin and len(frame.payload) <= 125
                head = frame_header(
                    frame.opcode, len(frame.payload), fin=frame.fin, rsv1=frame.rsv1,
                    rsv2=frame.rsv2, rsv3=frame.rsv3,
                )
                consumed += len(head) + len(frame.payload) + (4 if expect_masked else 0)
        except ProtocolError as error:
            assert not failed, "a second error after the first"
            assert error.close_code in (1002, 1009)
            failed = True
            assert parser.buffered == 0
        if max_payload is not None and not failed:
            assert parser.buffered <= 14 + max(max_payload, 125) + len(chunk)
    if not failed:
        # Lengths are written minimally by frame_header; a peer may use a longer form, so the
        # consumed count is a lower bound of what was taken from the stream.
        assert consumed + parser.buffered <= len(stream)


frame_specs = st.tuples(
    st.integers(0, 15),  # opcode, reserved ones included
    st.booleans(),  # fin
    st.integers(0, 7),  # rsv bits
    st.one_of(st.binary(max_size=200), st.sampled_from([b"\x03\xe8bye", b"\xed\xa0\x80", b"\xff"])),
    st.booleans(),  # compress the payload (a valid deflate stream), else raw
)


@given(
    flags=st.integers(0, 255),
    sizes=st.integers(0, 255),
    chunking=st.integers(0, 255),
    specs=st.lists(frame_specs, max_size=8),
    tail=st.binary(max_size=20),
)
def test_connection_on_hostile_frame_sequences(
    flags: int, sizes: int, chunking: int, specs: List[Tuple[int, bool, int, bytes, bool]], tail: bytes
) -> None:
    """Well-formed frames in any order with any bits (deflated or not), then garbage: the
    checks of the fuzz target (valid events, one failure with 1002/1007/1009 and nothing
    after, bounded buffers, the same outcome however the bytes are chunked)."""
    wire = b""
    for opcode, fin, rsv, payload, deflated in specs:
        if deflated:
            compressor = zlib.compressobj(wbits=-15)
            payload = (compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]
        wire += frame_header(opcode, len(payload), fin=fin, rsv1=bool(rsv & 4),
                             rsv2=bool(rsv & 2), rsv3=bool(rsv & 1)) + payload
    fuzz_frames.test_one_input(bytes([flags, sizes, chunking]) + wire + tail)


@given(data=st.binary(max_size=3000))
def test_connection_on_any_bytes(data: bytes) -> None:
    fuzz_frames.test_one_input(data)


header_names = st.sampled_from(
    ["Upgrade", "Connection", "Sec-WebSocket-Accept", "Sec-WebSocket-Protocol",
     "Sec-WebSocket-Extensions", "Content-Length", "X-Other", "bad name", ""]
)
header_values = st.one_of(
    st.sampled_from(["websocket", "Upgrade", accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "chat",
                     "permessage-deflate; client_max_window_bits=10", "permessage-deflate; x",
                     "12", "\u00b2", "9" * 30]),
    st.text(st.characters(max_codepoint=255), max_size=30),
)


@given(
    status=st.one_of(st.integers(0, 999), st.just(101)),
    reason=st.text(st.characters(max_codepoint=255), max_size=20),
    headers=st.lists(st.tuples(header_names, header_values), max_size=8),
    flags=st.integers(0, 255),
    limit=st.integers(0, 255),
    tail=st.binary(max_size=50),
)
def test_response_parser_on_hostile_responses(
    status: int, reason: str, headers: List[Tuple[str, str]], flags: int, limit: int, tail: bytes
) -> None:
    """A Response (leftover exact) or HandshakeError from parsing and checking, nothing else;
    the parser holds at most its limit plus one chunk (the fuzz target's checks)."""
    head = f"HTTP/1.1 {status:03d} {reason}\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers)
    fuzz_http_response.test_one_input(bytes([flags, limit]) + head.encode("latin-1") + b"\r\n" + tail)


@given(data=st.binary(max_size=3000))
def test_response_parser_on_any_bytes(data: bytes) -> None:
    fuzz_http_response.test_one_input(data)


@given(
    agreed=deflate_parameters,
    frames=st.lists(st.tuples(st.binary(max_size=300), st.booleans()), min_size=1, max_size=4),
    max_size=st.one_of(st.none(), st.integers(0, 2000)),
    role=st.sampled_from(["client", "server"]),
)
def test_inflater_on_any_bytes(
    agreed: DeflateParameters, frames: List[Tuple[bytes, bool]], max_size: Optional[int], role: str
) -> None:
    """Inflated bytes within ``max_size``, or ProtocolError (1002) / MessageTooBig (1009)."""
    codec = PerMessageDeflate(role, agreed)
    total = 0
    for index, (payload, fin) in enumerate(frames):
        try:
            out = codec.decode_frame(
                payload, first=index == 0, fin=fin, compressed=True,
                max_size=None if max_size is None else max_size - total,
            )
        except ProtocolError as error:
            assert error.close_code in (1002, 1009)
            assert isinstance(error, MessageTooBig) == (error.close_code == 1009)
            return
        assert type(out) is bytes
        total += len(out)
        assert max_size is None or total <= max_size
        if fin:
            total = 0


@settings(max_examples=max(3, settings().max_examples // 8))
@given(
    size=st.integers(8 * MiB, 64 * MiB),
    limit=st.integers(0, 1 * MiB),
    step=st.sampled_from([1 * KiB, 64 * KiB, 10 * MiB]),
)
def test_decompression_bomb_costs_memory_bounded_by_the_limit(size: int, limit: int, step: int) -> None:
    """A message inflating to tens of MiB from a few KiB fails with 1009 having allocated
    about ``limit``, not the bomb's size."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = compressor.compress(bytes(size)) + compressor.flush(zlib.Z_SYNC_FLUSH)
    frames = [bomb[:-4][i : i + step] for i in range(0, len(bomb) - 4, step)]
    conn = ClientConnection(
        max_message_size=limit, extension=PerMessageDeflate("client", DeflateParameters())
    )
    wire = b"".join(
        frame_header(Opcode.CONT if i else Opcode.BINARY, len(p), fin=i == len(frames) - 1,
                     rsv1=i == 0) + p
        for i, p in enumerate(frames)
    )
    tracemalloc.start()
    try:
        events = conn.receive_data(wire)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [type(e) for e in events] == [Failure]
    assert events[0].error.close_code == 1009
    assert peak < 3 * limit + 4 * len(wire) + 1 * MiB, (peak, limit, len(wire))


@given(code=st.integers(0, 65535), reason=st.binary(max_size=123), data=st.data())
def test_close_frames_any_code_and_reason(code: int, reason: bytes, data: Any) -> None:
    """A Close with any code and reason bytes: reported and echoed, or failed with 1002/1007."""
    wire = b"".join(serialize_frame(Opcode.CLOSE, close_payload(code, reason), mask=False))
    conn = ClientConnection()
    events = client_receives(conn, draw_chunks(data.draw, wire), False)
    assert len(events) == 1
    if type(events[0]) is CloseReceived:
        assert events[0] == CloseReceived(code, reason.decode("utf-8"))
        echo = list(FrameParser(expect_masked=True).feed(b"".join(conn.data_to_send())))
        assert echo == [Frame(Opcode.CLOSE, code.to_bytes(2, "big"))]
    else:
        assert type(events[0]) is Failure
        assert events[0].error.close_code in (1002, 1007)
