"""syncws.protocol.connection.Connection in both roles, byte for byte.

The same rule book runs on both ends; only the masking direction differs (RFC 6455 5.1). Each
test feeds the frames the *peer* of ``role`` would send (masked when they come from a client)
and parses what ``role`` sends with the peer's parser (which fails on the wrong masking).
"""

from __future__ import annotations

from typing import List

import pytest

from syncws.errors import MessageTooBig, PayloadError, ProtocolError
from syncws.protocol.connection import (
    ClientConnection,
    CloseFrame,
    CloseReceived,
    Connection,
    Failure,
    Message,
    Ping,
    Pong,
    Role,
    State,
)
from syncws.protocol.deflate import (
    DeflateOptions,
    PerMessageDeflate,
    client_accept,
    client_offer,
    server_negotiate,
)
from syncws.protocol.frames import Frame, FrameParser, Opcode, serialize_frame

ROLES = [Role.CLIENT, Role.SERVER]


@pytest.fixture(params=ROLES, ids=lambda role: role.value)
def role(request: pytest.FixtureRequest) -> Role:
    return request.param  # type: ignore[no-any-return]


def incoming(role: Role, opcode: int, payload: bytes = b"", **bits: bool) -> bytes:
    """A frame from the peer of ``role``: masked when the peer is a client."""
    return b"".join(serialize_frame(opcode, payload, mask=role is Role.SERVER, **bits))


def wrongly_masked(role: Role, opcode: int, payload: bytes = b"") -> bytes:
    """A frame with the masking the peer of ``role`` must not use."""
    return b"".join(serialize_frame(opcode, payload, mask=role is Role.CLIENT))


def on_the_wire(role: Role, buffers: List[bytes]) -> List[Frame]:
    """What ``role`` sent, parsed as its peer does (masking checked)."""
    return list(FrameParser(expect_masked=role is Role.CLIENT).feed(b"".join(buffers)))


def owed(conn: Connection) -> List[Frame]:
    """What ``conn`` owes its peer after its last input, the failing Close included (as an
    endpoint that sends it at once would)."""
    return on_the_wire(conn.role, conn.data_to_send() + conn.send_failure_close())


def close_frame(code: int, reason: bytes = b"") -> Frame:
    return Frame(Opcode.CLOSE, code.to_bytes(2, "big") + reason)


def test_client_connection_is_the_client_role() -> None:
    conn = ClientConnection(max_message_size=10)
    assert isinstance(conn, Connection) and conn.role is Role.CLIENT
    assert conn.max_message_size == 10 and conn.extension is None
    assert CloseReceived is CloseFrame


def test_messages_in_one_read_and_byte_by_byte(role: Role) -> None:
    data = incoming(role, Opcode.TEXT, "κόσμε".encode()) + incoming(role, Opcode.BINARY, b"\x00\xff")
    data += incoming(role, Opcode.TEXT, b"fr", fin=False) + incoming(role, Opcode.PING, b"p")
    data += incoming(role, Opcode.CONT, "ägment".encode())
    expected = [Message("κόσμε"), Message(b"\x00\xff"), Ping(b"p"), Message("frägment")]
    assert Connection(role).receive_data(data) == expected
    conn = Connection(role)
    events = [event for i in range(len(data)) for event in conn.receive_data(data[i : i + 1])]
    assert events == expected
    assert owed(conn) == [Frame(Opcode.PONG, b"p")]


def test_wrong_masking_fails_with_1002(role: Role) -> None:
    conn = Connection(role)
    events = conn.receive_data(incoming(role, Opcode.TEXT, b"ok") + wrongly_masked(role, Opcode.TEXT, b"x"))
    assert events[0] == Message("ok")
    assert isinstance(events[1], Failure) and events[1].error.close_code == 1002
    sender = "client" if role is Role.SERVER else "server"
    assert sender in str(events[1].error)
    assert owed(conn) == [close_frame(1002)]
    assert conn.state is State.CLOSED


def test_what_each_role_sends_is_masked_only_by_the_client(role: Role) -> None:
    conn = Connection(role)
    for buffers in (conn.send_message(b"hi", True), conn.send_ping(b"p"), conn.send_close(1000, "bye")):
        masked = bool(b"".join(buffers)[1] & 0x80)
        assert masked is (role is Role.CLIENT)
    conn = Connection(role)
    sent = conn.send_message(b"x" * 70000, False) + conn.send_ping(b"p") + conn.send_close(4000)
    assert on_the_wire(role, sent) == [
        Frame(Opcode.BINARY, b"x" * 70000), Frame(Opcode.PING, b"p"), close_frame(4000)
    ]
    assert conn.close_sent == CloseFrame(4000, "") and conn.state is State.CLOSING


FAILURES = {
    "rsv1-without-extension": ((Opcode.TEXT, b"x", dict(rsv1=True)), 1002),
    "rsv2": ((Opcode.BINARY, b"x", dict(rsv2=True)), 1002),
    "reserved-opcode": ((0x3, b"x", {}), 1002),
    "long-ping": ((Opcode.PING, bytes(126), {}), 1002),
    "fragmented-ping": ((Opcode.PING, b"x", dict(fin=False)), 1002),
    "orphan-continuation": ((Opcode.CONT, b"x", {}), 1002),
    "one-byte-close": ((Opcode.CLOSE, b"\x03", {}), 1002),
    "close-code-1005": ((Opcode.CLOSE, b"\x03\xed", {}), 1002),
    "close-code-2999": ((Opcode.CLOSE, (2999).to_bytes(2, "big"), {}), 1002),
    "close-reason-not-utf8": ((Opcode.CLOSE, b"\x03\xe8\xff", {}), 1007),
    "text-not-utf8": ((Opcode.TEXT, b"\xed\xa0\x80", {}), 1007),
}


@pytest.mark.parametrize("bad, code", FAILURES.values(), ids=FAILURES.keys())
def test_the_same_failures_in_both_roles(role: Role, bad: tuple, code: int) -> None:
    opcode, payload, bits = bad
    conn = Connection(role)
    data = incoming(role, Opcode.TEXT, b"before") + incoming(role, opcode, payload, **bits)
    events = conn.receive_data(data + incoming(role, Opcode.TEXT, b"after"))
    assert events[0] == Message("before") and len(events) == 2
    error = events[1].error  # type: ignore[union-attr]
    assert isinstance(error, PayloadError if code == 1007 else ProtocolError)
    assert error.close_code == code
    assert owed(conn) == [close_frame(code)]
    assert conn.receive_data(incoming(role, Opcode.PING)) == [] and conn.data_to_send() == []


def test_invalid_utf8_fails_at_the_end_of_a_fragment_in_both_roles(role: Role) -> None:
    conn = Connection(role)
    (failure,) = conn.receive_data(incoming(role, Opcode.TEXT, b"ok \xed\xbf", fin=False))
    assert isinstance(failure, Failure) and isinstance(failure.error, PayloadError)


def test_close_echo_carries_the_code_only(role: Role) -> None:
    conn = Connection(role)
    assert conn.receive_data(incoming(role, Opcode.CLOSE, b"\x0f\xa0bye")) == [CloseFrame(4000, "bye")]
    assert owed(conn) == [close_frame(4000)]
    assert conn.close_sent == CloseFrame(4000, "") and conn.state is State.CLOSED
    conn = Connection(role)
    assert conn.receive_data(incoming(role, Opcode.CLOSE)) == [CloseFrame(1005, "")]
    assert owed(conn) == [Frame(Opcode.CLOSE, b"")]


def test_max_message_size_in_both_roles(role: Role) -> None:
    conn = Connection(role, max_message_size=5)
    assert conn.receive_data(incoming(role, Opcode.BINARY, b"12345")) == [Message(b"12345")]
    data = incoming(role, Opcode.TEXT, b"123", fin=False) + incoming(role, Opcode.CONT, b"456")
    (failure,) = conn.receive_data(data)
    assert isinstance(failure.error, MessageTooBig)  # type: ignore[union-attr]
    assert owed(conn) == [close_frame(1009)]


def deflate_pair() -> "tuple[PerMessageDeflate, PerMessageDeflate]":
    options = DeflateOptions()
    response, server_codec = server_negotiate([client_offer(options)])  # type: ignore[misc]
    client_codec = client_accept([response], options)
    return client_codec, server_codec  # type: ignore[return-value]


def test_client_and_server_cores_talk_to_each_other_with_compression() -> None:
    client_codec, server_codec = deflate_pair()
    client = Connection(Role.CLIENT, extension=client_codec)
    server = Connection(Role.SERVER, extension=server_codec)
    text = "compressible " * 1000
    wire = b"".join(client.send_message(text.encode(), True))
    assert wire[0] & 0x40 and len(wire) < 1000  # RSV1: compressed
    assert server.receive_data(wire) == [Message(text)]
    wire = b"".join(server.send_message(b"\x01" * 5000, False))
    assert wire[0] & 0x40 and not wire[1] & 0x80
    assert client.receive_data(wire) == [Message(b"\x01" * 5000)]
    server.receive_data(b"".join(client.send_ping(b"are you there")))
    client.receive_data(b"".join(server.data_to_send()))  # the pong
    assert server.receive_data(b"".join(client.send_close(1001, "bye"))) == [CloseFrame(1001, "bye")]
    assert client.receive_data(b"".join(server.data_to_send())) == [CloseFrame(1001, "")]
    assert client.state is State.CLOSED and server.state is State.CLOSED


def test_split_frames_then_receive_frame() -> None:
    conn = Connection(Role.SERVER)
    data = incoming(Role.SERVER, Opcode.TEXT, b"a", fin=False) + incoming(Role.SERVER, Opcode.CONT, b"b")
    frames = list(conn.split_frames(data + wrongly_masked(Role.SERVER, Opcode.TEXT, b"x")[:1]))
    assert frames == [Frame(Opcode.TEXT, b"a", fin=False), Frame(Opcode.CONT, b"b")]
    assert conn.receive_frame(frames[0]) is None
    assert conn.receive_frame(frames[1]) == Message("ab")
    with pytest.raises(ProtocolError) as info:
        list(conn.split_frames(wrongly_masked(Role.SERVER, Opcode.TEXT, b"x")[1:]))
    failure = conn.receive_frame_error(info.value)
    assert failure is not None and failure.error is info.value
    assert owed(conn) == [close_frame(1002)]
    assert conn.receive_frame(Frame(Opcode.TEXT, b"late")) is None
    assert conn.receive_frame_error(ProtocolError("again")) is None


def test_a_close_sent_elsewhere_silences_automatic_answers(role: Role) -> None:
    conn = Connection(role)
    conn.close_sent_elsewhere(b"\x03")  # a scripted, invalid body
    assert conn.close_sent == CloseFrame(1005, "") and conn.state is State.CLOSING
    assert not conn.accepting_messages
    assert conn.receive_data(incoming(role, Opcode.PING, b"p")) == [Ping(b"p")]
    assert conn.receive_data(incoming(role, Opcode.CLOSE, b"\x03\xe8")) == [CloseFrame(1000, "")]
    assert conn.data_to_send() == []  # no pong, no echo
    conn = Connection(role)
    conn.close_sent_elsewhere(b"\x0f\xa0r\xff")
    assert conn.close_sent == CloseFrame(4000, "r\ufffd")
    (failure,) = conn.receive_data(incoming(role, 0x3))
    assert isinstance(failure, Failure) and conn.data_to_send() == []  # no second Close


def test_a_close_sent_elsewhere_after_a_failure_is_the_only_close(role: Role) -> None:
    conn = Connection(role)
    (failure,) = conn.receive_data(incoming(role, 0x3))
    assert isinstance(failure, Failure) and conn.state is State.CLOSED
    conn.close_sent_elsewhere(b"\x03\xea")  # a scripted failing Close instead of the core's
    assert conn.close_sent == CloseFrame(1002, "") and conn.state is State.CLOSED
    assert conn.send_failure_close() == [] and not conn.accepting_messages


def test_unsolicited_pong_is_reported_in_both_roles(role: Role) -> None:
    conn = Connection(role)
    assert conn.receive_data(incoming(role, Opcode.PONG, b"u")) == [Pong(b"u")]
    assert conn.data_to_send() == []


def test_echo_reason_repeats_the_peers_reason(role: Role) -> None:
    conn = Connection(role, echo_reason=True)
    assert conn.receive_data(incoming(role, Opcode.CLOSE, b"\x03\xe9bye")) == [CloseFrame(1001, "bye")]
    assert owed(conn) == [close_frame(1001, b"bye")]
    conn = Connection(role, echo_reason=True)
    conn.receive_data(incoming(role, Opcode.CLOSE))
    assert owed(conn) == [Frame(Opcode.CLOSE, b"")]  # no code: still an empty body
