"""syncws.protocol.connection.ClientConnection, byte for byte: bytes in, events and owed
frames out (parsed back with a server-side FrameParser, which also checks they are masked)."""

from __future__ import annotations

from typing import List

import pytest

from syncws.errors import MessageTooBig, PayloadError, ProtocolError
from syncws.protocol.connection import (
    ClientConnection,
    CloseFrame,
    CloseReceived,
    Failure,
    Message,
    Ping,
    Pong,
    State,
    close_payload,
    is_valid_close_code,
    parse_close_payload,
)
from syncws.protocol.frames import Frame, FrameParser, Opcode, frame_header


def frame(opcode: int, payload: bytes = b"", **bits: bool) -> bytes:
    """A server frame (unmasked)."""
    return frame_header(opcode, len(payload), **bits) + payload


def sent(buffers: List[bytes]) -> List[Frame]:
    """The client's frames, as a server parses them (every one must be masked)."""
    return list(FrameParser(expect_masked=True).feed(b"".join(buffers)))


def owed(conn: ClientConnection) -> List[Frame]:
    """What the client owes the server after its last input, the failing Close included (as an
    endpoint that sends it at once would)."""
    return sent(conn.data_to_send() + conn.send_failure_close())


def feed_bytewise(conn: ClientConnection, data: bytes) -> list:
    events = []
    for i in range(len(data)):
        events += conn.receive_data(data[i : i + 1])
    return events


def close_frame(code: int, reason: bytes = b"") -> Frame:
    return Frame(Opcode.CLOSE, code.to_bytes(2, "big") + reason)


# -- data ---------------------------------------------------------------------------------


def test_text_and_binary_messages():
    conn = ClientConnection()
    data = frame(Opcode.TEXT, "κόσμε".encode()) + frame(Opcode.BINARY, b"\x00\xff")
    data += frame(Opcode.TEXT) + frame(Opcode.BINARY)
    assert conn.receive_data(data) == [
        Message("κόσμε"), Message(b"\x00\xff"), Message(""), Message(b"")
    ]
    assert conn.data_to_send() == []
    assert conn.state is State.OPEN


@pytest.mark.parametrize(
    "opcode, data", [(Opcode.TEXT, "a€😀b".encode()), (Opcode.BINARY, b"0123456789")]
)
def test_fragmented_message_byte_by_byte(opcode, data):
    conn = ClientConnection()
    stream = frame(opcode, data[:3], fin=False) + frame(Opcode.CONT, b"", fin=False)
    stream += frame(Opcode.CONT, data[3:7], fin=False) + frame(Opcode.CONT, data[7:])
    expected = data.decode() if opcode == Opcode.TEXT else data
    assert feed_bytewise(conn, stream) == [Message(expected)]
    assert conn.receive_data(frame(opcode, data)) == [Message(expected)]


def test_control_frames_between_fragments():
    conn = ClientConnection()
    stream = frame(Opcode.TEXT, b"He", fin=False) + frame(Opcode.PING, b"p")
    stream += frame(Opcode.PONG, b"q") + frame(Opcode.CONT, b"llo")
    assert conn.receive_data(stream) == [Ping(b"p"), Pong(b"q"), Message("Hello")]
    assert owed(conn) == [Frame(Opcode.PONG, b"p")]


# -- ping, pong ---------------------------------------------------------------------------


@pytest.mark.parametrize("payload", [b"", b"x", bytes(range(125))])
def test_ping_is_answered_with_a_masked_pong(payload):
    conn = ClientConnection()
    assert conn.receive_data(frame(Opcode.PING, payload)) == [Ping(payload)]
    out = conn.data_to_send()
    assert out[0][1] & 0x80  # mask bit
    assert sent(out) == [Frame(Opcode.PONG, payload)]
    assert conn.data_to_send() == []  # handed over once


def test_pongs_answer_pings_in_order():
    conn = ClientConnection()
    conn.receive_data(b"".join(frame(Opcode.PING, b"%d" % i) for i in range(10)))
    assert owed(conn) == [Frame(Opcode.PONG, b"%d" % i) for i in range(10)]


def test_pong_is_reported_and_not_answered():
    conn = ClientConnection()
    assert conn.receive_data(frame(Opcode.PONG, b"unsolicited")) == [Pong(b"unsolicited")]
    assert conn.data_to_send() == []


# -- closing ------------------------------------------------------------------------------


def test_empty_close_is_echoed_empty():
    conn = ClientConnection()
    assert conn.receive_data(frame(Opcode.CLOSE)) == [CloseReceived(1005, "")]
    assert owed(conn) == [Frame(Opcode.CLOSE, b"")]
    assert conn.state is State.CLOSED
    assert conn.close_sent is not None and conn.close_received is not None


def test_close_is_echoed_with_its_code_only():
    conn = ClientConnection()
    events = conn.receive_data(frame(Opcode.CLOSE, b"\x0f\xa0" + "bye ☃".encode()))
    assert events == [CloseReceived(4000, "bye ☃")]
    assert owed(conn) == [close_frame(4000)]


def test_everything_after_close_is_ignored():
    conn = ClientConnection()
    data = frame(Opcode.CLOSE, b"\x03\xe8") + frame(Opcode.TEXT, b"late") + frame(Opcode.PING)
    assert conn.receive_data(data) == [CloseReceived(1000, "")]
    assert owed(conn) == [close_frame(1000)]
    assert conn.receive_data(frame(Opcode.PING) + b"\xff\xff garbage") == []
    assert conn.data_to_send() == []


def test_client_initiated_close():
    conn = ClientConnection()
    assert sent(conn.send_close(1000, "bye")) == [close_frame(1000, b"bye")]
    assert conn.state is State.CLOSING and conn.close_received is None
    assert conn.send_close(1000) == []  # only once
    with pytest.raises(ProtocolError):
        conn.send_message(b"late", True)
    # Data still in flight from the server is delivered; pings are no longer answered.
    events = conn.receive_data(frame(Opcode.TEXT, b"in flight") + frame(Opcode.PING, b"p"))
    assert events == [Message("in flight"), Ping(b"p")]
    assert conn.data_to_send() == []
    assert conn.receive_data(frame(Opcode.CLOSE, b"\x03\xe8")) == [CloseReceived(1000, "")]
    assert conn.data_to_send() == []  # our Close was the first one: no echo
    assert conn.state is State.CLOSED
    assert conn.close_sent is not None and conn.close_received is not None


def test_close_without_code_has_an_empty_body():
    conn = ClientConnection()
    assert sent(conn.send_close()) == [Frame(Opcode.CLOSE, b"")]
    assert conn.close_sent == CloseReceived(1005, "")


# -- failures -----------------------------------------------------------------------------

FAILURES = {
    "rsv1-text": (frame(Opcode.TEXT, b"x", rsv1=True), 1002),
    "rsv2-binary": (frame(Opcode.BINARY, b"x", rsv2=True), 1002),
    "rsv3-ping": (frame(Opcode.PING, b"x", rsv3=True), 1002),
    "rsv1-close": (frame(Opcode.CLOSE, b"", rsv1=True), 1002),
    "reserved-opcode": (frame(0x3, b"x"), 1002),
    "reserved-control-opcode": (frame(0xB), 1002),
    "long-ping": (frame(Opcode.PING, bytes(126)), 1002),
    "fragmented-ping": (frame(Opcode.PING, b"x", fin=False), 1002),
    "masked": (frame_header(Opcode.TEXT, 1, mask_key=b"abcd") + b"x", 1002),
    "orphan-continuation": (frame(Opcode.CONT, b"x"), 1002),
    "interrupted-message": (frame(Opcode.TEXT, b"a", fin=False) + frame(Opcode.BINARY, b"b"), 1002),
    "one-byte-close": (frame(Opcode.CLOSE, b"\x03"), 1002),
    "close-code-1005": (frame(Opcode.CLOSE, b"\x03\xed"), 1002),
    "close-code-999": (frame(Opcode.CLOSE, b"\x03\xe7"), 1002),
    "close-reason-not-utf8": (frame(Opcode.CLOSE, b"\x03\xe8\xff"), 1007),
    "text-not-utf8": (frame(Opcode.TEXT, b"\xc0\x80"), 1007),
    "fragmented-text-not-utf8": (
        frame(Opcode.TEXT, b"\xe2", fin=False) + frame(Opcode.CONT, b"\x28"), 1007
    ),
    "text-truncated": (frame(Opcode.TEXT, b"\xe2\x82"), 1007),
}


@pytest.mark.parametrize("bad, code", FAILURES.values(), ids=FAILURES.keys())
def test_failure_sends_close_with_the_code_and_ignores_the_rest(bad, code):
    conn = ClientConnection()
    events = conn.receive_data(frame(Opcode.TEXT, b"before") + bad + frame(Opcode.TEXT, b"after"))
    assert events[0] == Message("before")
    assert len(events) == 2 and isinstance(events[1], Failure)
    error = events[1].error
    assert isinstance(error, PayloadError if code == 1007 else ProtocolError)
    assert error.close_code == code
    assert owed(conn) == [close_frame(code)]
    assert conn.state is State.CLOSED
    assert conn.receive_data(frame(Opcode.PING) + frame(Opcode.TEXT, b"x")) == []
    assert conn.data_to_send() == []


def test_failure_after_our_close_sends_no_second_close():
    conn = ClientConnection()
    conn.send_close(1000)
    (failure,) = conn.receive_data(frame(0x4))
    assert isinstance(failure, Failure)
    assert conn.data_to_send() == []


# -- UTF-8, fail fast ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad", [b"\xc0", b"\xe0\x80", b"\xed\xa0", b"\xf4\x90", b"\xf5", b"\xff", b"\x80", b"\xc2A"]
)
def test_invalid_utf8_fails_before_the_frame_is_complete(bad):
    conn = ClientConnection()
    events = conn.receive_data(frame_header(Opcode.TEXT, 1000) + b"prefix " + bad)
    assert len(events) == 1 and isinstance(events[0].error, PayloadError)
    assert owed(conn) == [close_frame(1007)]


def test_invalid_utf8_fails_at_the_end_of_a_non_final_fragment():
    conn = ClientConnection()
    (failure,) = conn.receive_data(frame(Opcode.TEXT, b"ok \xed\xbf", fin=False))
    assert isinstance(failure.error, PayloadError)


def test_invalid_utf8_split_between_reads_of_a_continuation_frame():
    conn = ClientConnection()
    assert conn.receive_data(frame(Opcode.TEXT, b"ab", fin=False)) == []
    assert conn.receive_data(frame_header(Opcode.CONT, 100) + b"cd\xf0") == []
    (failure,) = conn.receive_data(b"\x8f")
    assert isinstance(failure.error, PayloadError)


def test_valid_text_peeked_in_pieces_is_assembled_once():
    text = "κόσμε 😀 €" * 20
    data = text.encode()
    conn = ClientConnection()
    stream = frame(Opcode.TEXT, data[:101], fin=False) + frame(Opcode.CONT, data[101:])
    events = []
    for start in range(0, len(stream), 7):
        events += conn.receive_data(stream[start : start + 7])
    assert events == [Message(text)]
    assert feed_bytewise(conn, frame(Opcode.TEXT, data) + frame(Opcode.TEXT, b"next")) == [
        Message(text), Message("next")
    ]


def test_binary_is_not_checked_as_utf8():
    conn = ClientConnection()
    assert conn.receive_data(frame_header(Opcode.BINARY, 4) + b"\xff\xfe") == []
    assert conn.receive_data(b"\xc0\x80") == [Message(b"\xff\xfe\xc0\x80")]


# -- size limit ---------------------------------------------------------------------------


def test_max_message_size():
    conn = ClientConnection(max_message_size=10)
    assert conn.receive_data(frame(Opcode.BINARY, bytes(10))) == [Message(bytes(10))]
    assert conn.receive_data(frame(Opcode.TEXT, b"12345", fin=False)) == []
    assert conn.receive_data(frame(Opcode.CONT, b"67890")) == [Message("1234567890")]
    assert conn.receive_data(frame(Opcode.TEXT, b"123456", fin=False)) == []
    (failure,) = conn.receive_data(frame_header(Opcode.CONT, 5))  # header only: 11 > 10
    assert isinstance(failure.error, MessageTooBig)
    assert owed(conn) == [close_frame(1009)]


# -- outbound -----------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [0, 10, 100])
def test_max_message_size_does_not_apply_to_control_frames(limit):
    """Found by property testing: a ping or pong longer than what the current message could
    still grow by (or than a small max_message_size) failed the connection with 1009."""
    conn = ClientConnection(max_message_size=limit)
    data = (
        frame(Opcode.BINARY, b"a" * (limit // 2), fin=False)
        + frame(Opcode.PING, b"p" * 125)
        + frame(Opcode.PONG, b"q" * 125)
        + frame(Opcode.CONT, b"b" * (limit - limit // 2))
        + frame(Opcode.CLOSE, close_payload(1000, "r" * 100))
    )
    expected = [Ping(b"p" * 125), Pong(b"q" * 125), Message(b"a" * (limit // 2) + b"b" * (limit - limit // 2)),
                CloseReceived(1000, "r" * 100)]
    assert conn.receive_data(data) == expected
    assert feed_bytewise(ClientConnection(max_message_size=limit), data) == expected


def test_outbound_frames_are_masked_and_whole():
    conn = ClientConnection()
    text = conn.send_message("κόσμε".encode(), True)
    binary = conn.send_message(bytearray(b"\x00\x01"), False)
    ping = conn.send_ping(b"hi")
    for buffers in (text, binary, ping):
        assert buffers[0][1] & 0x80
    assert sent(text + binary + ping) == [
        Frame(Opcode.TEXT, "κόσμε".encode()),
        Frame(Opcode.BINARY, b"\x00\x01"),
        Frame(Opcode.PING, b"hi"),
    ]
    assert sent(conn.send_message(b"", False)) == [Frame(Opcode.BINARY, b"")]


# -- direct mode (large frames received straight into their payload buffer) ---------------


def receive_directly(conn: ClientConnection, data: bytes, step: int) -> list:
    """Feed ``data`` as the engine does: into the direct view whenever one is offered."""
    events: list = []
    position = 0
    while position < len(data):
        view = conn.direct_buffer()
        if view is None:
            events += conn.receive_data(data[position : position + step])
            position += step
        else:
            count = min(len(view), step, len(data) - position)
            view[:count] = data[position : position + count]
            view.release()
            position += count
            events += conn.receive_direct(count)
    return events


@pytest.mark.parametrize("opcode, payload", [
    (Opcode.BINARY, bytes(range(256)) * 1024),
    (Opcode.TEXT, "ünïcödé 🎉 ".encode("utf-8") * 20000),
])
def test_large_message_received_directly(opcode, payload):
    conn = ClientConnection()
    data = frame(opcode, payload) + frame(Opcode.PING, b"after")
    events = receive_directly(conn, data, 10000)
    expected = payload.decode("utf-8") if opcode == Opcode.TEXT else payload
    assert events == [Message(expected), Ping(b"after")]
    assert type(events[0].data) is type(expected)


def test_invalid_utf8_fails_fast_in_direct_mode():
    conn = ClientConnection()
    payload = b"a" * 70000 + b"\xff" + b"b" * 70000
    events = receive_directly(conn, frame(Opcode.TEXT, payload)[:80000], 10000)
    assert [type(e) for e in events] == [Failure]
    assert isinstance(events[0].error, PayloadError)
    assert conn.direct_buffer() is None


def test_rsv1_on_a_continuation_frame_fails_even_with_deflate():
    from syncws.protocol.deflate import DeflateParameters, PerMessageDeflate

    conn = ClientConnection(extension=PerMessageDeflate("client", DeflateParameters()))
    events = conn.receive_data(frame(Opcode.TEXT, b"a", fin=False) + frame(Opcode.CONT, b"b", rsv1=True))
    assert [type(e) for e in events] == [Failure]
    assert "continuation" in str(events[0].error) and events[0].error.close_code == 1002


def test_messages_may_be_sent_until_the_failing_close_goes_out():
    conn = ClientConnection()
    events = conn.receive_data(frame(Opcode.CONT, b"x"))
    assert [type(e) for e in events] == [Failure]
    assert conn.data_to_send() == []  # the failing Close waits for the caller
    assert conn.accepting_messages  # the handlers may still answer earlier messages
    assert conn.close_sent is None
    assert sent(conn.send_message(b"late", False)) == [Frame(Opcode.BINARY, b"late")]
    assert conn.send_close(1000, "meanwhile") == []  # a failed connection starts no handshake
    assert sent(conn.send_failure_close()) == [close_frame(1002)]
    assert conn.close_sent == CloseFrame(1002, "")
    assert not conn.accepting_messages
    assert conn.send_failure_close() == []  # once


def test_no_failing_close_after_our_own_close():
    conn = ClientConnection()
    assert conn.send_close(1000, "bye")
    (failure,) = conn.receive_data(frame(Opcode.CONT, b"x"))
    assert isinstance(failure, Failure)
    assert conn.send_failure_close() == [] and conn.close_sent == CloseFrame(1000, "bye")


def test_no_direct_mode_before_the_length_has_arrived():
    conn = ClientConnection()
    conn.receive_data(b"\x82\x7f\x00\x00")  # a 64-bit length, 2 of its 8 bytes so far
    assert conn.direct_buffer() is None
    assert conn.receive_data(b"\x00\x00\x00\x00\x00\x03abc") == [Message(b"abc")]


def test_huge_declared_length_allocates_nothing_ahead():
    """Found by fuzzing: a 10-byte header declaring 2**62 bytes made direct mode allocate the
    whole payload at once (MemoryError, or gigabytes for a few bytes sent) when
    max_message_size is None. Frames above DIRECT_MAX are buffered as their bytes arrive."""
    conn = ClientConnection(max_message_size=None)
    assert conn.receive_data(frame_header(Opcode.BINARY, 1 << 62) + b"x" * 100) == []
    assert conn.direct_buffer() is None
    assert conn._parser.buffered == 10 + 100
    just_over = ClientConnection(max_message_size=None)
    just_over.receive_data(frame_header(Opcode.BINARY, just_over.DIRECT_MAX + 1))
    assert just_over.direct_buffer() is None
    at_limit = ClientConnection(max_message_size=None)
    at_limit.receive_data(frame_header(Opcode.BINARY, at_limit.DIRECT_MAX))
    view = at_limit.direct_buffer()
    assert view is not None and len(view) == at_limit.DIRECT_MAX


# -- helpers ------------------------------------------------------------------------------


def test_close_codes():
    valid = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
             3000, 3999, 4000, 4999]
    invalid = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]
    assert all(is_valid_close_code(code) for code in valid)
    assert not any(is_valid_close_code(code) for code in invalid)


def test_close_payloads():
    assert parse_close_payload(b"") == CloseReceived(1005, "")
    assert parse_close_payload(b"\x03\xe8") == CloseReceived(1000, "")
    assert parse_close_payload(b"\x0b\xb8" + "é".encode()) == CloseReceived(3000, "é")
    with pytest.raises(ProtocolError):
        parse_close_payload(b"\x03")
    with pytest.raises(ProtocolError):
        parse_close_payload(b"\x03\xee")  # 1006
    with pytest.raises(PayloadError):
        parse_close_payload(b"\x03\xe8\xed\xa0\x80")
    assert close_payload(None) == b""
    assert close_payload(1000) == b"\x03\xe8"
    assert close_payload(4999, "é") == b"\x13\x87\xc3\xa9"
    assert close_payload(1000, b"raw") == b"\x03\xe8raw"
