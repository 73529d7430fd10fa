"""The client's opening handshake over a stream: blocking reads around the sans-I/O
:class:`~syncws.protocol.handshake.ClientHandshake`.

Everything the handshake decides (the request's bytes, whether the response accepts, how much
of a refusal's body to keep) is the core's; this module only moves bytes and keeps the deadline.
"""

from __future__ import annotations

import logging
import socket
from typing import Optional

from .protocol.handshake import Accepted, ClientHandshake, HandshakeOutcome
from .streams import Stream, time_left

__all__ = ["perform_handshake"]

logger = logging.getLogger("syncws")

_READ_SIZE = 16 * 1024


def perform_handshake(
    stream: Stream, handshake: ClientHandshake, deadline: Optional[float]
) -> Accepted:
    """Send the request, read the response and return it when it accepts the connection.

    A refusal raises its :class:`~syncws.errors.HandshakeError` (with the body, read until
    its ``Content-Length``, the bound, the end of the stream or the deadline, whichever comes
    first); an invalid 101 raises one too. ``socket.timeout`` when ``deadline`` (a
    ``time.monotonic()`` value, ``None`` for none) passes before the response head is complete;
    :class:`~syncws.errors.ConnectionFailed` when the stream ends first.
    """
    logger.debug("> %s", handshake.request.split(b"\r\n", 1)[0].decode("latin-1"))
    stream.sendall(handshake.request)
    view = memoryview(bytearray(_READ_SIZE))
    outcome: Optional[HandshakeOutcome] = None
    while outcome is None:
        outcome = _read_some(stream, handshake, view, deadline)
    logger.debug("< HTTP %d %s", outcome.response.status, outcome.response.reason)
    if isinstance(outcome, Accepted):
        return outcome
    raise outcome.error()


def _read_some(
    stream: Stream, handshake: ClientHandshake, view: memoryview, deadline: Optional[float]
) -> Optional[HandshakeOutcome]:
    """One read handed to the handshake; while a refusal's body arrives, a failed or timed-out
    read ends the body instead of the connection attempt."""
    try:
        count = stream.recv_into(view, time_left(deadline))
    except OSError:
        if not handshake.reading_body:
            raise
        return handshake.receive_eof()
    if count is None:
        if not handshake.reading_body:
            raise socket.timeout()
        return handshake.receive_eof()
    if count == 0:
        return handshake.receive_eof()
    return handshake.receive_data(bytes(view[:count]))
