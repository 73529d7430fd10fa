"""Messages kept for ``recv()`` and iteration on sockets made by ``syncws.connect()``."""

from __future__ import annotations

import queue as _queue
import threading
from typing import Any, NoReturn, Optional, Union

from .errors import ConnectionClosed
from .state import SocketState

__all__ = ["Inbox"]


class Inbox:
    """A socket's messages for ``recv()``, bounded by ``max_queue`` (inbound flow control).

    A ``SimpleQueue`` carries them: its blocking ``get`` is woken in C, the cheapest hand-off
    from the reader thread to the caller of ``recv()``. The condition is only for the reader
    waiting for room. How the connection ended is the socket's :class:`SocketState`'s to say.
    """

    _END = object()

    def __init__(self, state: SocketState, max_queue: Optional[int]) -> None:
        self._state = state
        self._queue: "_queue.SimpleQueue[Any]" = _queue.SimpleQueue()
        self._cond = threading.Condition(threading.Lock())
        self._max = max_queue
        self._room_waiters = 0
        self._woken = False

    def put(self, data: Union[str, bytes]) -> None:
        self._queue.put(data)

    def end(self) -> None:
        """No more messages: the connection ended (its ending is recorded in the state)."""
        self._queue.put(self._END)

    def get(self, timeout: Optional[float]) -> Union[str, bytes]:
        """The next message; ``ConnectionClosed`` once the connection ended and every earlier
        message was returned; ``TimeoutError`` after ``timeout`` seconds."""
        try:
            item = self._queue.get(timeout=timeout)
        except _queue.Empty:
            raise TimeoutError("no message within the timeout") from None
        if item is self._END:
            self._queue.put(item)  # every later recv() raises too
            self._raise_closed()
        if self._room_waiters:
            with self._cond:
                self._cond.notify_all()
        return item  # type: ignore[no-any-return]

    def _raise_closed(self) -> NoReturn:
        # A fresh exception each time: raising one object again would grow its traceback.
        ending = self._state.ending
        assert ending is not None
        raise ConnectionClosed(ending.code, ending.reason, ending.was_clean) from ending.error

    def wake(self) -> None:
        """Release the reader for good (the connection is closing)."""
        with self._cond:
            self._woken = True
            self._cond.notify_all()

    def wait_for_room(self) -> bool:
        """Block the reader while ``max_queue`` messages wait for recv(); True if it did."""
        limit = self._max
        if limit is None or self._queue.qsize() < limit:
            return False
        with self._cond:
            self._room_waiters += 1
            try:
                while self._queue.qsize() >= limit and not self._woken:
                    self._cond.wait()
            finally:
                self._room_waiters -= 1
        return True
