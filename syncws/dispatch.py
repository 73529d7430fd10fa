"""Ordered event delivery: one queue per WebSocket, handed to the user's executor one task at a time.

Whatever the executor (a pool of many workers, the Tk or Qt main loop, the reader thread
itself, or, by default, the connection's own two threads), the events of one socket run one at
a time and in order: at most one drain task is outstanding, and it runs queued tasks until the
queue is empty (or, on a shared executor, until a time slice is used up, when it reschedules
itself so others and the GUI stay responsive).

With the default executor (``post=None``) the drain is not handed to another thread: it is
*deferred* to the thread that queued the event, which the engine has take it right after
handing the reading role to its other thread (:meth:`Dispatcher.take_deferred`). So a message
is delivered by the thread that read it, without a thread wake-up on its way, while the other
thread keeps reading: handlers never run on the thread that must keep reading, and never two
at once.

The queue's length is also the inbound flow control: the reader calls :meth:`wait_for_room`
before reading, which blocks while ``max_queue`` messages wait for a slow handler, so TCP
pushes back on the server and memory stays bounded. A task carries a ``weight`` (the number of
messages it delivers: the reader hands over all the messages of one read as one task), and
only the reader thread puts weighted tasks, so the two counters below each have one writer.
"""

from __future__ import annotations

import collections
import logging
import queue as _queue
import threading
import time
from typing import Callable, Deque, Optional, Tuple

logger = logging.getLogger("syncws")

__all__ = ["Dispatcher"]

Task = Callable[[], object]

# A drain on a shared executor yields after this long so one busy socket cannot starve others
# (and a GUI loop keeps painting).
_SLICE = 0.02


class Dispatcher:
    """A per-socket FIFO of tasks run on ``post``.

    When ``post`` is None, drains are deferred to the connection's own threads (see the module
    docstring), or with ``own_thread`` run on a thread of the dispatcher's own, started with
    the first event and ended after the final one.
    """

    def __init__(
        self,
        post: Optional[Callable[[Task], object]],
        *,
        name: str,
        max_queue: Optional[int] = None,
        own_thread: bool = False,
    ) -> None:
        if post is None:
            post = self._post_to_own_thread if own_thread else self._defer
        self._post = post
        self._handoff: "Optional[_queue.SimpleQueue[Task]]" = None  # own_thread's queue
        self._name = name
        self.max_queue = max_queue
        self._queue: Deque[Tuple[Task, int]] = collections.deque()  # (task, weight)
        self._lock = threading.Lock()  # ``with self._lock`` on hot paths; it is the condition's
        self._cond = threading.Condition(self._lock)
        self._scheduled = False  # a drain task is posted or running
        self._deferred: Optional[Task] = None  # the drain a connection thread must run
        self._room_waiters = 0
        self._queued = 0  # weight put so far (reader thread only)
        self._delivered = 0  # weight delivered so far (the delivering thread only)
        self._woken = False
        self._closed = False  # the final task was queued
        self._done = False  # the final task ran
        #: Thread id of whoever is running tasks right now (to detect re-entrant waits).
        self.running_thread: Optional[int] = None

    @property
    def deferring(self) -> bool:
        """Whether drains run on the connection's own threads (the default executor)."""
        return self._post == self._defer

    # -- producers -------------------------------------------------------------------------

    def put(self, task: Task, *, final: bool = False, weight: int = 0) -> None:
        """Queue ``task``; ``final`` marks the last one (the close event).

        ``weight`` is how many messages the task delivers (for flow control); only the reader
        thread may put a task with a weight.
        """
        with self._cond:
            if self._closed:
                return
            self._queued += weight
            self._queue.append((task, weight))
            if final:
                self._closed = True
            if self._scheduled:
                return
            self._scheduled = True
        self._schedule()

    def _defer(self, drain: Task) -> None:
        self._deferred = drain

    def _post_to_own_thread(self, drain: Task) -> None:
        """``own_thread``: a thread of this dispatcher runs the drains, from the first event
        to the final one (for a socket whose events come from several connections)."""
        if self._handoff is None:
            self._handoff = _queue.SimpleQueue()
            threading.Thread(target=self._run_own_thread, name=self._name, daemon=True).start()
        self._handoff.put(drain)

    def _run_own_thread(self) -> None:
        handoff = self._handoff
        assert handoff is not None
        while not self._done:
            handoff.get()()

    def take_deferred(self) -> Optional[Task]:
        """The drain the calling connection thread must run now, if its puts scheduled one."""
        drain = self._deferred
        self._deferred = None
        return drain

    def run_deferred_elsewhere(self) -> None:
        """Deliver what was queued by a thread that is not the connection's (``close()``
        before ``connect()``) on a short-lived thread, so that it runs after the caller."""
        drain = self.take_deferred()
        if drain is None:
            return
        handed = threading.Event()
        thread = threading.Thread(target=self._run_all, args=(handed, drain), name=self._name, daemon=True)
        thread.start()  # it waits for ``handed``: the caller keeps the GIL and goes on first
        handed.set()

    def _run_all(self, handed: threading.Event, drain: Optional[Task]) -> None:
        handed.wait()
        while drain is not None:
            drain()
            drain = self.take_deferred()

    def _schedule(self) -> None:
        try:
            self._post(self._drain)
        except Exception:
            logger.exception("syncws: the executor refused a delivery task; events are lost")
            with self._cond:
                self._scheduled = False
                self._queue.clear()
                self._done = True
                self._cond.notify_all()

    @property
    def pending(self) -> int:
        """Messages queued and not yet delivered."""
        return self._queued - self._delivered

    def wait_for_room(self) -> bool:
        """Block the reader while ``max_queue`` messages wait for delivery (until :meth:`wake`);
        True if it blocked."""
        limit = self.max_queue
        if limit is None or self.pending < limit:
            return False
        with self._cond:
            self._room_waiters += 1
            try:
                while self.pending >= limit and not self._woken and not self._done:
                    self._cond.wait()
            finally:
                self._room_waiters -= 1
        return True

    def wait_idle(self, timeout: float) -> bool:
        """Block until every message queued so far was delivered (False on timeout).

        Never from the delivering thread itself (with ``InlineExecutor`` the reader delivers
        synchronously, so there is nothing to wait for).
        """
        if self.pending <= 0 or self.running_thread == threading.get_ident():
            return True
        with self._cond:
            self._room_waiters += 1
            try:
                return self._cond.wait_for(lambda: self.pending <= 0 or self._done, timeout)
            finally:
                self._room_waiters -= 1

    def wake(self) -> None:
        """Release the reader for good (the connection is closing)."""
        with self._cond:
            self._woken = True
            self._cond.notify_all()

    # -- consumers ---------------------------------------------------------------------------

    def _run_task(self, task: Task) -> None:
        try:
            task()
        except Exception:  # a task catches handler errors itself; this is a safety net
            logger.exception("syncws: error while delivering an event")

    def _delivered_weight(self, weight: int) -> None:
        self._delivered += weight
        if self._room_waiters:
            with self._cond:
                if self.max_queue is None or self.pending < self.max_queue:
                    self._cond.notify_all()

    def _drain(self) -> None:
        queue = self._queue
        cond = self._cond
        lock = self._lock
        started = time.monotonic()
        self.running_thread = threading.get_ident()
        try:
            while True:
                with lock:
                    if not queue:
                        self._scheduled = False
                        if self._closed:
                            self._done = True
                            cond.notify_all()
                        return
                    task, weight = queue.popleft()
                self._run_task(task)
                if weight:
                    self._delivered_weight(weight)
                if time.monotonic() - started > _SLICE:
                    break
        finally:
            self.running_thread = None
        # Time slice used up with work left: reschedule behind whatever else is waiting.
        self._schedule()
