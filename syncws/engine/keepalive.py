"""Keepalive timing: when to send a ping, and when a missing pong means a dead peer.

Pure bookkeeping, no threads or I/O: the reader asks it how long it may block, sends the ping it
hands out, reports pongs, and fails the connection when it says the pong is overdue.
"""

from __future__ import annotations

import os
from typing import Optional

__all__ = ["Keepalive"]


class Keepalive:
    """Pings every ``interval`` seconds; a ping unanswered for ``timeout`` seconds is a timeout.

    ``interval=None`` disables keepalive; ``timeout=None`` sends pings but never gives up.
    """

    def __init__(self, interval: Optional[float], timeout: Optional[float], now: float) -> None:
        self.interval = interval
        self.timeout = timeout
        self.latency: Optional[float] = None  #: seconds of the last answered ping's round trip
        self._payload: Optional[bytes] = None  # the ping awaiting its pong
        self._sent_at = 0.0
        self._next_ping = now + (interval or 0.0)

    def wait(self, now: float) -> Optional[float]:
        """Seconds until keepalive needs the reader (None: never)."""
        if self.interval is None:
            return None
        if self._payload is not None:
            if self.timeout is None:
                return None
            return max(0.0, self._sent_at + self.timeout - now)
        return max(0.0, self._next_ping - now)

    def ping_due(self, now: float) -> Optional[bytes]:
        """The payload of a ping to send now, or None."""
        if self.interval is None or self._payload is not None or now < self._next_ping:
            return None
        self._payload = os.urandom(4)
        self._sent_at = now
        self._next_ping = now + self.interval
        return self._payload

    def expired(self, now: float) -> bool:
        """Whether the ping in flight went unanswered for ``timeout`` seconds."""
        return (
            self._payload is not None
            and self.timeout is not None
            and now - self._sent_at >= self.timeout
        )

    def pong(self, payload: bytes, now: float) -> None:
        """A pong arrived; the answer to our ping ends the wait and measures the latency."""
        if self._payload is not None and payload == self._payload:
            self.latency = now - self._sent_at
            self._payload = None

    def resumed(self, now: float) -> None:
        """The reader was paused (flow control) and could not see a pong: start afresh."""
        self._payload = None
        self._next_ping = now + (self.interval or 0.0)
