"""UTF-8 in text messages (CONFORMANCE.md group 6).

Every valid text is delivered and echoed intact however it is cut (whole, split in two frames
at every byte, one frame per byte, one TCP segment per byte). Invalid UTF-8 (overlong forms,
surrogates, code points above U+10FFFF, truncated sequences, lone continuation bytes, FE/FF)
fails the connection with 1007, and fails it fast: as soon as the bytes received so far
cannot begin valid UTF-8, without waiting for the rest of the frame or message."""

from __future__ import annotations

from typing import List

import pytest

from syncws.protocol.frames import Opcode, frame_header

VALID = [
    "",
    "Hello-µ@ßöäüàá-UTF-8!!",
    "κόσμε",
    "\u0080\u07ff",  # first and last 2-byte
    "\u0800\ud7ff\ue000\ufffd\uffff",  # 3-byte, around the surrogates, U+FFFF
    "\U00010000",  # first 4-byte
    "\U0010ffff",  # last code point
    "😀 a€😀",
    "\x00\x7f",
]

INVALID = {
    "overlong-2-nul": b"\xc0\x80",
    "overlong-2-max": b"\xc1\xbf",
    "overlong-slash": b"\xc0\xaf",
    "overlong-3-nul": b"\xe0\x80\x80",
    "overlong-3-max": b"\xe0\x9f\xbf",
    "overlong-4-nul": b"\xf0\x80\x80\x80",
    "overlong-4-max": b"\xf0\x8f\xbf\xbf",
    "surrogate-high": b"\xed\xa0\x80",
    "surrogate-low": b"\xed\xbf\xbf",
    "surrogate-pair": b"\xed\xa0\x80\xed\xb0\x80",
    "above-10ffff": b"\xf4\x90\x80\x80",
    "f5-lead": b"\xf5\x80\x80\x80",
    "5-byte-form": b"\xf8\x88\x80\x80\x80",
    "6-byte-form": b"\xfc\x84\x80\x80\x80\x80",
    "fe": b"\xfe",
    "ff": b"\xff",
    "fe-ff": b"\xfe\xff",
    "lone-continuation-80": b"\x80",
    "lone-continuation-bf": b"\xbf",
    "continuations": b"\x80\xbf\x80\xbf",
    "2-byte-then-ascii": b"\xc2A",
    "3-byte-then-ascii": b"\xe2\x82A",
    "4-byte-then-ascii": b"\xf0\x9f\x98A",
    "truncated-2": b"\xc2",
    "truncated-3": b"\xe2\x82",
    "truncated-4": b"\xf0\x9f\x98",
}

# Bytes that no continuation can make valid, right after the decoder sees them.
NEVER_VALID = {
    "c0": b"\xc0",
    "overlong-3": b"\xe0\x80",
    "overlong-4": b"\xf0\x8f",
    "surrogate": b"\xed\xa0",
    "above-10ffff": b"\xf4\x90",
    "f5": b"\xf5",
    "fe": b"\xfe",
    "lone-continuation": b"\x80",
    "lead-then-ascii": b"\xe2\x82A",
}


def split_every_way(data: bytes) -> List[List[bytes]]:
    """Two frames cut at every byte, then one frame per byte."""
    splits = [[data[:i], data[i:]] for i in range(len(data) + 1)]
    return splits + [[data[i : i + 1] for i in range(len(data))] or [b""]]


@pytest.mark.parametrize("text", VALID, ids=lambda t: ascii(t)[1:-1][:30] or "empty")
def test_valid_text_delivered_and_echoed_however_it_is_cut(open_client, wire, text):
    conn, client = open_client(echo=True)
    data = text.encode("utf-8")
    cuts = split_every_way(data)
    for parts in cuts:
        conn.send_fragments(Opcode.TEXT, parts)
    conn.send_raw(wire.frame(Opcode.TEXT, data), chunk_size=1)
    conn.send_fragments(Opcode.TEXT, cuts[-1], chunk_size=1)
    count = len(cuts) + 2
    assert [conn.recv(timeout=5) for _ in range(count)] == [text] * count
    assert client.messages == [text] * count
    client.close_from_server(conn)


@pytest.mark.parametrize("delivery", ["whole", "frame-per-byte", "1-byte-chunks"])
@pytest.mark.parametrize("position", ["middle", "end"])
@pytest.mark.parametrize("bad", INVALID.values(), ids=INVALID.keys())
def test_invalid_text_fails_with_1007(open_client, wire, bad, position, delivery):
    conn, client = open_client()
    data = "ok ä ".encode() + bad + (" € tail".encode() if position == "middle" else b"")
    stream = wire.frame(Opcode.TEXT, "before ✓")
    if delivery == "frame-per-byte":
        last = len(data) - 1
        stream += b"".join(
            wire.frame(Opcode.CONT if i else Opcode.TEXT, data[i : i + 1], fin=i == last)
            for i in range(len(data))
        )
    else:
        stream += wire.frame(Opcode.TEXT, data)
    stream += wire.frame(Opcode.TEXT, "after") + wire.frame(Opcode.PING, "after")
    wire.send(conn, stream, chunk_size=1 if delivery == "1-byte-chunks" else None)
    client.expect_failure(conn, 1007, ["before ✓"])
    assert conn.pongs == []


@pytest.mark.parametrize("bad", NEVER_VALID.values(), ids=NEVER_VALID.keys())
def test_fail_fast_inside_a_frame_whose_rest_is_withheld(open_client, bad):
    """The header announces 1 MiB; only a valid prefix and the bad bytes are sent."""
    conn, client = open_client()
    prefix = "valid prefix ✓ ".encode()
    conn.send_raw(frame_header(Opcode.TEXT, 1 << 20) + prefix + bad)
    client.expect_failure(conn, 1007, timeout=2)


@pytest.mark.parametrize("bad", NEVER_VALID.values(), ids=NEVER_VALID.keys())
def test_fail_fast_at_the_end_of_a_fragment_whose_continuation_is_withheld(open_client, wire, bad):
    conn, client = open_client()
    conn.send_raw(wire.frame(Opcode.TEXT, "κόσμε".encode() + bad, fin=False))
    client.expect_failure(conn, 1007, timeout=2)


def test_fail_fast_inside_a_continuation_frame(open_client, wire):
    conn, client = open_client()
    conn.send_raw(wire.frame(Opcode.TEXT, "first fragment ", fin=False))
    conn.send_raw(frame_header(Opcode.CONT, 1 << 20, fin=True) + b"second \xed")
    conn.send_raw(b"\xa0")  # the surrogate's second byte, in its own segment
    client.expect_failure(conn, 1007, timeout=2)


def test_valid_prefix_of_a_withheld_frame_does_not_fail(open_client):
    """A frame cut inside a 4-byte character waits for the rest, then is delivered whole."""
    conn, client = open_client(echo=True)
    data = "😀".encode() * 1000
    cut = len(data) // 2 + 1  # inside a character
    conn.send_raw(frame_header(Opcode.TEXT, len(data)) + data[:cut])
    with pytest.raises(TimeoutError):
        conn.recv_frame(timeout=0.3)  # no Close: nothing is wrong yet
    conn.send_raw(data[cut:])
    assert conn.recv(timeout=5) == "😀" * 1000
    assert client.types == ["open", "message"]
    client.close_from_server(conn)
