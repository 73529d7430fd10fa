"""syncws.protocol.frames, byte for byte: headers, serialization (RFC 6455 section 5.7's
examples), masking keys, and the incremental parser with every single-frame error."""

from __future__ import annotations

import struct

import pytest

from syncws.errors import MessageTooBig, ProtocolError
from syncws.protocol import frames
from syncws.protocol.frames import Frame, FrameParser, Opcode, frame_header, serialize_frame

KEY = bytes.fromhex("37fa213d")  # the key of RFC 6455's examples
HELLO_MASKED = bytes.fromhex("7f9f4d5158")


def join(buffers) -> bytes:
    return b"".join(buffers)


# -- serialization --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "opcode, payload, kwargs, expected",
    [
        (Opcode.TEXT, b"Hello", {}, bytes.fromhex("810548656c6c6f")),
        (Opcode.TEXT, b"Hello", {"mask_key": KEY}, bytes.fromhex("818537fa213d") + HELLO_MASKED),
        (Opcode.TEXT, b"Hel", {"fin": False}, bytes.fromhex("010348656c")),
        (Opcode.CONT, b"lo", {}, bytes.fromhex("80026c6f")),
        (Opcode.PING, b"Hello", {}, bytes.fromhex("890548656c6c6f")),
        (Opcode.PONG, b"Hello", {"mask_key": KEY}, bytes.fromhex("8a8537fa213d") + HELLO_MASKED),
        (Opcode.BINARY, bytes(256), {}, bytes.fromhex("827e0100") + bytes(256)),
        (Opcode.BINARY, bytes(65536), {}, bytes.fromhex("827f0000000000010000") + bytes(65536)),
    ],
    ids=["text", "masked-text", "first-fragment", "last-fragment", "ping", "masked-pong",
         "256-bytes", "64-KiB"],
)
def test_rfc_6455_examples(opcode, payload, kwargs, expected):
    mask = "mask_key" in kwargs
    assert join(serialize_frame(opcode, payload, mask=mask, **kwargs)) == expected


@pytest.mark.parametrize(
    "length, encoded",
    [
        (0, "00"),
        (1, "01"),
        (125, "7d"),
        (126, "7e007e"),
        (127, "7e007f"),
        (65535, "7effff"),
        (65536, "7f0000000000010000"),
        (2**32, "7f0000000100000000"),
        (2**63 - 1, "7f7fffffffffffffff"),
    ],
)
def test_header_uses_the_shortest_length_form(length, encoded):
    assert frame_header(Opcode.BINARY, length) == b"\x82" + bytes.fromhex(encoded)
    expected = bytearray(b"\x82" + bytes.fromhex(encoded) + KEY)
    expected[1] |= 0x80  # the mask bit
    assert frame_header(Opcode.BINARY, length, mask_key=KEY) == expected


@pytest.mark.parametrize(
    "kwargs, first_byte",
    [
        ({}, 0x81),
        ({"fin": False}, 0x01),
        ({"rsv1": True}, 0xC1),
        ({"rsv2": True}, 0xA1),
        ({"rsv3": True}, 0x91),
        ({"fin": False, "rsv1": True, "rsv2": True, "rsv3": True}, 0x71),
    ],
)
def test_header_bits(kwargs, first_byte):
    assert frame_header(Opcode.TEXT, 0, **kwargs) == bytes([first_byte, 0])


def test_header_takes_any_opcode_for_tests():
    assert frame_header(0xB, 3) == b"\x8b\x03"
    assert frame_header(0x3, 0, fin=False) == b"\x03\x00"


def test_empty_payload_is_a_single_buffer():
    assert serialize_frame(Opcode.CLOSE, b"", mask=False) == [b"\x88\x00"]
    assert serialize_frame(Opcode.CLOSE, b"", mask_key=KEY) == [b"\x88\x80" + KEY]


@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_bytes_like_payloads(kind):
    buffers = serialize_frame(Opcode.BINARY, kind(b"abc"), mask=False)
    assert buffers == [b"\x82\x03", b"abc"] and type(buffers[1]) is bytes
    masked = serialize_frame(Opcode.BINARY, kind(b"Hello"), mask_key=KEY)
    assert join(masked) == b"\x82\x85" + KEY + HELLO_MASKED


def test_masking_is_on_by_default_with_a_fresh_key_per_frame():
    headers = [serialize_frame(Opcode.TEXT, b"same")[0] for _ in range(200)]
    assert all(h[1] == 0x84 for h in headers)
    assert len({h[2:6] for h in headers}) == 200
    payloads = {serialize_frame(Opcode.TEXT, b"same")[1] for _ in range(50)}
    assert len(payloads) > 1


def test_mask_keys_come_from_os_urandom(monkeypatch):
    calls = []

    def fake_urandom(n):
        calls.append(n)
        return KEY + bytes(i % 256 for i in range(n - 4))

    monkeypatch.setattr(frames.os, "urandom", fake_urandom)
    monkeypatch.setattr(frames, "_key_pool", b"")
    monkeypatch.setattr(frames, "_key_offset", 0)
    assert join(serialize_frame(Opcode.TEXT, b"Hello")) == b"\x81\x85" + KEY + HELLO_MASKED
    # The next frame takes the next four bytes of the same urandom output: never a key twice.
    second = join(serialize_frame(Opcode.TEXT, b"Hello"))
    assert second[2:6] == bytes(range(4))
    assert len(calls) == 1 and calls[0] % 4 == 0


def test_mask_keys_differ_between_frames():
    keys = {join(serialize_frame(Opcode.BINARY, b"x"))[2:6] for _ in range(3000)}
    assert len(keys) > 2990  # fresh random keys (a collision among 3000 is ~0.1 % likely)


# -- parsing --------------------------------------------------------------------------------


def client_parser(**kwargs) -> FrameParser:
    return FrameParser(expect_masked=False, **kwargs)


@pytest.mark.parametrize(
    "data, expected",
    [
        ("810548656c6c6f", Frame(Opcode.TEXT, b"Hello")),
        ("010348656c", Frame(Opcode.TEXT, b"Hel", fin=False)),
        ("80026c6f", Frame(Opcode.CONT, b"lo")),
        ("890548656c6c6f", Frame(Opcode.PING, b"Hello")),
        ("8a00", Frame(Opcode.PONG, b"")),
        ("880203e8", Frame(Opcode.CLOSE, b"\x03\xe8")),
        ("c20161", Frame(Opcode.BINARY, b"a", rsv1=True)),
        ("310161", Frame(Opcode.TEXT, b"a", fin=False, rsv2=True, rsv3=True)),
    ],
)
def test_parse_unmasked_frames(data, expected):
    assert list(client_parser().feed(bytes.fromhex(data))) == [expected]


def test_server_parser_unmasks():
    parser = FrameParser(expect_masked=True)
    data = b"\x81\x85" + KEY + HELLO_MASKED + b"\x8a\x85" + KEY + HELLO_MASKED
    assert list(parser.feed(data)) == [Frame(Opcode.TEXT, b"Hello"), Frame(Opcode.PONG, b"Hello")]


@pytest.mark.parametrize("length", [0, 125, 126, 65535, 65536, 70000])
def test_parse_every_length_form_byte_by_byte(length):
    payload = bytes(i % 251 for i in range(length))
    data = join(serialize_frame(Opcode.BINARY, payload, mask=False))
    parser = client_parser()
    for byte in data[:-1] if length else data[:1]:
        assert list(parser.feed(bytes([byte]))) == []
    last = data[-1:] if length else data[1:]
    assert list(parser.feed(last)) == [Frame(Opcode.BINARY, payload)]
    assert parser.buffered == 0


def test_many_frames_in_one_feed_and_a_partial_one_kept():
    data = b"".join(join(serialize_frame(Opcode.TEXT, b"%d" % i, mask=False)) for i in range(100))
    parser = client_parser()
    extra = b"\x82\x7e\x01"  # the start of a 16-bit length header
    frames_ = list(parser.feed(data + extra))
    assert [f.payload for f in frames_] == [b"%d" % i for i in range(100)]
    assert parser.buffered == 3
    assert list(parser.feed(b"\x00" + bytes(256))) == [Frame(Opcode.BINARY, bytes(256))]


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 11, 12, 13, 14, 15])
def test_reserved_opcodes(opcode):
    with pytest.raises(ProtocolError) as info:
        list(client_parser().feed(bytes([0x80 | opcode, 0])))
    assert info.value.close_code == 1002


@pytest.mark.parametrize("opcode", [Opcode.CLOSE, Opcode.PING, Opcode.PONG])
def test_control_frames_must_not_be_fragmented_or_long(opcode):
    with pytest.raises(ProtocolError):
        list(client_parser().feed(bytes([opcode, 0])))  # FIN clear
    # A 126-byte control frame fails on its second byte, before any payload arrives.
    with pytest.raises(ProtocolError):
        list(client_parser().feed(bytes([0x80 | opcode, 126])))
    longest = list(client_parser().feed(bytes([0x80 | opcode, 125]) + bytes(125)))
    assert longest == [Frame(opcode, bytes(125))]


def test_masked_frame_to_a_client_and_unmasked_frame_to_a_server():
    with pytest.raises(ProtocolError, match="masked"):
        list(client_parser().feed(b"\x81\x85" + KEY + HELLO_MASKED))
    with pytest.raises(ProtocolError, match="unmasked"):
        list(FrameParser(expect_masked=True).feed(b"\x81\x05Hello"))


def test_64_bit_length_with_the_top_bit_set():
    with pytest.raises(ProtocolError):
        list(client_parser().feed(b"\x82\x7f" + struct.pack("!Q", 1 << 63)))


def test_max_payload_is_checked_before_the_payload_arrives():
    parser = client_parser(max_payload=1000)
    at_limit = list(parser.feed(b"\x82\x7e\x03\xe8" + bytes(1000)))
    assert at_limit == [Frame(Opcode.BINARY, bytes(1000))]
    with pytest.raises(MessageTooBig) as info:
        list(parser.feed(b"\x82\x7e\x03\xe9"))  # 1001 bytes announced, none sent
    assert info.value.close_code == 1009
    with pytest.raises(MessageTooBig):
        list(client_parser(max_payload=10).feed(b"\x82\x7f" + struct.pack("!Q", 2**62)))


def test_frames_before_an_error_are_yielded_and_nothing_after():
    parser = client_parser()
    stream = parser.feed(b"\x81\x02ok" + b"\x83\x00" + b"\x81\x02no")
    assert next(stream) == Frame(Opcode.TEXT, b"ok")
    with pytest.raises(ProtocolError):
        next(stream)
    assert list(parser.feed(b"\x81\x02ok")) == []
    assert parser.buffered == 0


def test_pending_payload_of_an_incomplete_data_frame():
    parser = client_parser()
    assert parser.pending_payload() is None
    assert list(parser.feed(b"\x01\x7e\x01\x00")) == []
    assert parser.pending_payload() is None  # header complete, no payload yet
    assert list(parser.feed(b"abcdef")) == []
    assert parser.pending_payload() == (0x01, b"abcdef")
    assert parser.pending_payload(4) == (0x01, b"ef")
    assert parser.pending_payload(6) is None
    ping = client_parser()
    list(ping.feed(b"\x89\x05Hel"))
    assert ping.pending_payload() is None  # control frames are never peeked
    server = FrameParser(expect_masked=True)
    list(server.feed(b"\x81\x85" + KEY + b"\x7f"))
    assert server.pending_payload() is None


def test_direct_mode_only_for_an_unmasked_frame_whose_header_is_complete():
    """begin_direct receives a client's unmasked frames only (the server role unmasks)."""
    assert FrameParser().begin_direct(1, 1 << 20) is None  # nothing received
    partial = FrameParser()
    list(partial.feed(b"\x82"))
    assert partial.begin_direct(1, 1 << 20) is None  # one header byte
    server = FrameParser(expect_masked=True)
    list(server.feed(b"\x82\xfe\x01\x00" + b"\x00" * 4 + b"x" * 10))
    assert server.begin_direct(1, 1 << 20) is None  # the masked role
    client = FrameParser()
    list(client.feed(b"\x82\x7e\x01\x00" + b"x" * 10))
    view = client.begin_direct(1, 1 << 20)
    assert view is not None and len(view) == 256 - 10
    view[:] = b"y" * len(view)
    view.release()
    frame = client.direct_received(256 - 10)
    assert frame is not None and bytes(frame.payload) == b"x" * 10 + b"y" * 246
