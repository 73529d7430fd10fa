"""The one state of a WebSocket: its ready state, who started the close, how it ended.

:class:`SocketState` is owned by one ``WebSocket`` and shared, by reference, with the layers
below it (its engine, its sink, its inbox for ``recv()``): they ask it and never keep a copy of
"closed". Its transitions are the standard's, checked against :data:`TRANSITIONS`:

- ``CONNECTING -> OPEN`` when the ``open`` event is delivered;
- ``CONNECTING/OPEN -> CLOSING`` when ``close()`` is called;
- ``any -> CLOSED`` when the ``error`` or ``close`` event is delivered.

``ready_state`` changes as events are delivered, as the standard's queued tasks do; what
happened on the network is :attr:`SocketState.ending`, recorded once by the engine before the
final events are queued.
"""

from __future__ import annotations

import enum
import threading
from typing import Dict, FrozenSet, NamedTuple, Optional

__all__ = ["ReadyState", "Ending", "SocketState", "TRANSITIONS"]


class ReadyState(enum.IntEnum):
    """The states of a WebSocket (``ws.ready_state``), numbered as the standard's ``readyState``.

    ``CONNECTING`` (0): the connection is not yet open. ``OPEN`` (1): messages can be sent
    and received. ``CLOSING`` (2): the closing handshake has started (or ``close()`` was
    called). ``CLOSED`` (3): the connection is closed or could not be opened.
    """

    CONNECTING = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3


#: The transitions the standard allows; anything else is a bug and raises.
TRANSITIONS: Dict[ReadyState, FrozenSet[ReadyState]] = {
    ReadyState.CONNECTING: frozenset({ReadyState.OPEN, ReadyState.CLOSING, ReadyState.CLOSED}),
    ReadyState.OPEN: frozenset({ReadyState.CLOSING, ReadyState.CLOSED}),
    ReadyState.CLOSING: frozenset({ReadyState.CLOSED}),
    ReadyState.CLOSED: frozenset(),
}

#: Close codes with which a server ends a stream normally (1005: a Close with no code).
_NORMAL_CODES = frozenset({1000, 1001, 1005})


class Ending(NamedTuple):
    """How a connection ended, as its ``close`` event (and ``error`` event) report it."""

    code: int
    reason: str
    was_clean: bool
    error: Optional[BaseException]


class SocketState:
    """The state of one WebSocket (see the module docstring). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready_state = ReadyState.CONNECTING
        #: This side called ``close()`` (it started the close, or failed the attempt).
        self.close_requested = False
        #: The ``open`` event was delivered.
        self.was_opened = False
        #: The first error that ended the connection (the ``error`` event's ``error``).
        self.error: Optional[BaseException] = None
        #: How the connection ended; set once, before the final events are queued.
        self.ending: Optional[Ending] = None
        #: Set once ``open`` was delivered or the attempt ended (``connect()`` waits on it).
        self.settled = threading.Event()
        #: Set once the ``close`` event's listeners returned (``wait()`` waits on it).
        self.closed = threading.Event()

    @property
    def ready_state(self) -> ReadyState:
        return self._ready_state

    def _move(self, new: ReadyState) -> None:
        """Change the ready state (lock held); a transition the standard forbids raises."""
        old = self._ready_state
        if new is not old and new not in TRANSITIONS[old]:
            raise AssertionError(f"syncws bug: ready state {old.name} -> {new.name}")
        self._ready_state = new

    def request_close(self) -> ReadyState:
        """``close()`` was called: CONNECTING/OPEN become CLOSING. Returns the state before
        (CLOSING or CLOSED: nothing changed, there is nothing to do)."""
        with self._lock:
            old = self._ready_state
            if old in (ReadyState.CONNECTING, ReadyState.OPEN):
                self.close_requested = True
                self._move(ReadyState.CLOSING)
            return old

    def open_delivered(self) -> bool:
        """The ``open`` event is being delivered: CONNECTING becomes OPEN. False when
        ``close()`` came first (the standard then never fires ``open``)."""
        with self._lock:
            if self._ready_state is not ReadyState.CONNECTING:
                return False
            self._move(ReadyState.OPEN)
            self.was_opened = True
        self.settled.set()
        return True

    def end_delivered(self) -> None:
        """The ``error`` or ``close`` event is being delivered: the socket is CLOSED."""
        with self._lock:
            self._move(ReadyState.CLOSED)

    def close_delivered(self) -> None:
        """The ``close`` event's listeners returned: nothing more will happen."""
        self.settled.set()
        self.closed.set()

    def record_error(self, error: BaseException) -> None:
        """Remember what ended the connection; the first error wins."""
        with self._lock:
            if self.error is None:
                self.error = error

    def record_ending(self, ending: Ending) -> None:
        """The connection ended (the engine, once, before the final events are queued)."""
        with self._lock:
            if self.ending is not None:
                raise AssertionError("syncws bug: a connection ended twice")
            self.ending = ending
            if ending.error is not None and self.error is None:
                self.error = ending.error

    @property
    def ended_normally(self) -> bool:
        """Whether a script's loop over the socket ends quietly: this side closed, or the
        server closed cleanly with 1000, 1001 or no code. Anything else is a lost connection
        or an error the script must see."""
        ending = self.ending
        if ending is None:
            return False
        return self.close_requested or (ending.was_clean and ending.code in _NORMAL_CODES)
