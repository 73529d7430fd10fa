"""Fuzz target: server bytes into ``ClientConnection.receive_data`` (frames, UTF-8, deflate).

The first three bytes of an input configure the connection, the rest is what the "server"
sends:

* byte 0, bit 0: permessage-deflate negotiated; bit 1: ``server_no_context_takeover``;
  bit 2: ``client_no_context_takeover``; bit 3: receive large frames in direct mode (the
  engine's ``direct_buffer``/``receive_direct`` path, taken here by frames with 126 or
  more payload bytes still to come); bit 4: a ``max_message_size`` is set;
* byte 1: bits 0-2: ``server_max_window_bits`` - 8; bits 4-7: ``max_message_size`` is
  ``2 ** n`` (n = 0..15);
* byte 2: the chunk sizes the stream is cut into (0: everything at once).

Each input is fed twice, once whole and once in chunks: both runs must give the same messages,
pings, pongs and Close and either both fail or neither. Every event must be one the API
documents; a failure must be a ``ProtocolError`` with close code 1002, 1007 or 1009 and the
last event; a message never exceeds ``max_message_size``; the parser never holds more than one
frame's worth of bytes. Anything else (another exception, a failed assertion) is a crash.

Run it (atheris needed): ``python tests/fuzz/run.py frames tests/fuzz/corpus/frames``.
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

from syncws.errors import ProtocolError
from syncws.protocol.connection import (
    ClientConnection,
    CloseReceived,
    Failure,
    Message,
    Ping,
    Pong,
    State,
)
from syncws.protocol.deflate import DeflateParameters, PerMessageDeflate

ALLOWED_CLOSE_CODES = frozenset({1002, 1007, 1009})
HEADER_MAX = 14  # the longest frame header: 2 + 8 (length) + 4 (mask key)
DIRECT_MAX = 64 * 1024  # the harness's cap on a payload allocated before it arrives


class Config:
    """The connection settings an input's first three bytes select."""

    __slots__ = ("deflate", "server_no_context", "client_no_context", "direct",
                 "max_message_size", "server_bits", "chunk_seed")

    def __init__(self, head: bytes) -> None:
        flags, sizes, self.chunk_seed = head[0], head[1], head[2]
        self.deflate = bool(flags & 1)
        self.server_no_context = bool(flags & 2)
        self.client_no_context = bool(flags & 4)
        self.direct = bool(flags & 8)
        self.max_message_size: Optional[int] = 1 << (sizes >> 4) if flags & 16 else None
        self.server_bits = 8 + (sizes & 7)

    def connection(self) -> ClientConnection:
        extension = None
        if self.deflate:
            agreed = DeflateParameters(
                server_no_context_takeover=self.server_no_context,
                client_no_context_takeover=self.client_no_context,
                server_max_window_bits=self.server_bits,
            )
            extension = PerMessageDeflate("client", agreed)
        connection = ClientConnection(max_message_size=self.max_message_size, extension=extension)
        if self.direct:
            # Direct mode from 126 payload bytes on instead of 64 KiB; it must stay above 125 so
            # that, as in production, control frames never take that path.
            connection.DIRECT_MIN = 126  # type: ignore[misc]
            connection.DIRECT_MAX = DIRECT_MAX  # type: ignore[misc]
        return connection

    def chunks(self, data: bytes) -> List[bytes]:
        """``data`` cut into pieces of 1 to 32 bytes, sizes cycling through the seed's bits."""
        if not self.chunk_seed:
            return [data]
        pieces = []
        position, turn = 0, 0
        while position < len(data):
            size = 1 + ((self.chunk_seed >> (turn % 5)) & 31)
            pieces.append(data[position : position + size])
            position += size
            turn += 1
        return pieces


def _check_event(event: Any, config: Config) -> None:
    kind = type(event)
    assert kind in (Message, Ping, Pong, CloseReceived, Failure), event
    if kind is Message:
        data = event.data
        assert type(data) in (str, bytes), type(data)
        if config.max_message_size is not None:
            size = len(data.encode("utf-8")) if type(data) is str else len(data)
            assert size <= config.max_message_size, (size, config.max_message_size)
    elif kind is Failure:
        error = event.error
        assert isinstance(error, ProtocolError), error
        assert error.close_code in ALLOWED_CLOSE_CODES, error.close_code
    elif kind in (Ping, Pong):
        assert type(event.payload) is bytes and len(event.payload) <= 125
    else:
        assert event.code == 1005 or 1000 <= event.code <= 4999, event.code
        assert type(event.reason) is str and len(event.reason.encode("utf-8")) <= 123


def _check_bounded(connection: ClientConnection, config: Config, fed: int) -> None:
    """The parser holds at most one frame (plus what arrived behind a Close or an error)."""
    parser = connection._parser
    assert parser._direct is None or len(parser._direct) <= DIRECT_MAX, len(parser._direct)
    if connection.state is State.OPEN and config.max_message_size is not None:
        # One frame at most: a data frame within the limit, or a control frame (<= 125 bytes).
        frame_max = HEADER_MAX + max(config.max_message_size, 125)
        assert parser.buffered <= frame_max + fed, parser.buffered
        assert parser._direct is None or len(parser._direct) <= config.max_message_size
        assert connection._size <= config.max_message_size


def _feed(connection: ClientConnection, chunk: bytes, config: Config) -> List[Any]:
    """Feed one chunk as the engine does: through the direct view when one is offered."""
    events: List[Any] = []
    position = 0
    while position < len(chunk):
        direct = connection.direct_buffer() if config.direct else None
        if direct is None:
            events += connection.receive_data(memoryview(chunk)[position:])
            position = len(chunk)
        else:
            count = min(len(direct), len(chunk) - position)
            direct[:count] = chunk[position : position + count]
            direct.release()
            position += count
            events += connection.receive_direct(count)
        _check_bounded(connection, config, len(chunk))
    return events


def run(connection: ClientConnection, pieces: List[bytes], config: Config) -> List[Any]:
    events: List[Any] = []
    for piece in pieces:
        new = _feed(connection, piece, config)
        if events and type(events[-1]) is Failure:
            assert not new, f"events after a failure: {new}"
        events += new
        connection.data_to_send()
    for index, event in enumerate(events):
        _check_event(event, config)
        if type(event) in (Failure, CloseReceived):
            assert index == len(events) - 1, f"events after {event}: {events[index + 1:]}"
    return events


def _outcome(events: List[Any]) -> Tuple[List[Any], bool]:
    failed = bool(events) and type(events[-1]) is Failure
    return (events[:-1] if failed else events), failed


def test_one_input(data: bytes) -> None:
    if len(data) < 3:
        return
    config = Config(data[:3])
    stream = data[3:]
    whole = run(config.connection(), [stream], config)
    chunked = run(config.connection(), config.chunks(stream), config)
    assert _outcome(whole) == _outcome(chunked), (whole, chunked)

