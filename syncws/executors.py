"""Where event handlers run: the executor protocol and adapters for Tk and Qt.

The dispatcher turns whatever the user passed as ``executor=`` into a *post
function* with :func:`as_post`: ``post(fn)`` arranges for ``fn()`` to run
later (or now) and returns at once.  The dispatcher posts one task at a time
per WebSocket, so delivery stays ordered even on a pool with many workers.

The adapters here are plain callables, ``executor(fn)``.  Each of them runs
the functions posted from one thread in the order they were posted, and logs
(logger ``"syncws.executors"``) an exception raised by one of them instead of
letting it stop the others.  None of this module's imports pulls in tkinter or
a Qt binding: they are imported when an adapter is constructed.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import sys
import threading
import time
from collections import deque
from typing import Any, Callable, Deque, Optional, Protocol, Union

__all__ = [
    "Task",
    "Post",
    "SubmitExecutor",
    "ExecutorLike",
    "as_post",
    "InlineExecutor",
    "TkExecutor",
    "QtExecutor",
]

Task = Callable[[], object]
"""A unit of work: called with no arguments, its result ignored."""

Post = Callable[[Task], object]
"""Arranges for a task to run; must not block and may be called from any thread."""


class SubmitExecutor(Protocol):
    """An object with ``submit(fn)``, such as ``concurrent.futures.ThreadPoolExecutor``."""

    def submit(self, fn: Task, /) -> object:
        """Arrange for ``fn()`` to run; the result (a future, say) may be anything."""


ExecutorLike = Union[SubmitExecutor, Post]
"""What ``executor=`` accepts besides ``None``: a :class:`SubmitExecutor` or a :data:`Post`."""

log = logging.getLogger(__name__)


def as_post(executor: Optional[ExecutorLike]) -> Optional[Post]:
    """Turn an ``executor=`` argument into a post function.

    - ``None`` -> ``None``: the dispatcher runs handlers on a thread of its own.
    - an object with a ``submit`` method (``concurrent.futures.Executor``) ->
      ``post(fn)`` calls ``executor.submit(fn)``; an error from ``submit``
      itself (``RuntimeError`` once a pool is shut down) reaches the caller,
      an exception the returned future captures is logged.
    - any other callable (such as the adapters in this module) -> itself.

    ``submit`` wins when an object has both.  Anything else, including a class
    where an instance was meant, raises ``TypeError`` at once rather than on
    the first event.
    """
    if executor is None:
        return None
    if isinstance(executor, type):
        raise TypeError(
            f"executor must be an instance, not the class {executor.__name__}; "
            f"did you mean {executor.__name__}()?"
        )
    submit = getattr(executor, "submit", None)
    if callable(submit):

        def post(fn: Task) -> None:
            future = submit(fn)
            add_done_callback = getattr(future, "add_done_callback", None)
            if add_done_callback is not None:
                add_done_callback(_log_future_error)

        return post
    if callable(executor):
        return executor
    raise TypeError(
        "executor must be None, an object with a submit(fn) method "
        "(e.g. concurrent.futures.ThreadPoolExecutor) or a callable post(fn), "
        f"not {type(executor).__name__}"
    )


def _log_future_error(future: Any) -> None:
    error = None if future.cancelled() else future.exception()
    if error is not None:
        log.error("task submitted to executor failed", exc_info=error)


def _run(fn: Task) -> None:
    """Call ``fn``; log an ``Exception`` it raises so later tasks still run."""
    try:
        fn()
    except Exception:
        log.exception("uncaught exception in %r", fn)


class InlineExecutor:
    """Runs each task at once on the posting thread, before ``post`` returns.

    For syncws that is the socket's reader thread: the lowest latency there
    is, but a handler that blocks stops the socket from being read (and from
    answering pings), so handlers must be quick and must not wait on the
    socket they serve.
    """

    def __call__(self, fn: Task) -> None:
        """Run ``fn`` now; an exception it raises is logged, not propagated."""
        _run(fn)

    def __repr__(self) -> str:
        return "InlineExecutor()"


class _GuiExecutor:
    """A locked deque of tasks that a GUI thread drains in batches.

    Posting only appends; the first task after the queue ran empty calls
    :meth:`_wake` (from the posting thread, under the lock) to have the GUI
    thread call :meth:`_drain`.  A batch stops after ``max_batch_time`` and
    :meth:`_resume` (GUI thread) has the rest run once the toolkit has handled
    its own pending events.  Subclasses implement the three hooks.
    """

    def __init__(self, max_batch_time: float) -> None:
        self._max_batch_time = max_batch_time
        self._lock = threading.Lock()
        self._queue: Deque[Task] = deque()
        self._scheduled = False  # a wake-up or a resume is on its way
        self._closed = False

    def __call__(self, fn: Task) -> None:
        """Queue ``fn`` to run on the GUI thread; safe from any thread, never blocks."""
        with self._lock:
            if self._closed:
                log.debug("%r is closed; dropped %r", self, fn)
                return
            self._queue.append(fn)
            if not self._scheduled:
                self._scheduled = True
                self._wake()  # under the lock, so it can't race close()

    def close(self) -> None:
        """Drop queued tasks and drop every task posted from now on; idempotent."""
        self._shut(release=True)

    def _shut(self, release: bool) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            dropped = len(self._queue)
            self._queue.clear()
            if release:
                self._release()
        if dropped:
            log.debug("%r closed; dropped %d queued task(s)", self, dropped)

    def _drain(self) -> None:
        """Run queued tasks until the queue is empty or the batch time is up."""
        deadline = time.monotonic() + self._max_batch_time
        finished = False
        try:
            while True:
                with self._lock:
                    if not self._queue:  # also the way out once closed
                        self._scheduled = False
                        finished = True
                        return
                    if time.monotonic() >= deadline:
                        break
                    fn = self._queue.popleft()
                _run(fn)
        finally:
            if not finished and not self._closed:  # time is up, or a task raised BaseException
                self._resume()

    def _wake(self) -> None:
        raise NotImplementedError

    def _resume(self) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        raise NotImplementedError


class TkExecutor(_GuiExecutor):
    """Runs tasks on the Tk event loop of ``widget``'s interpreter.

    Construct it, and call :meth:`close` if at all, in the thread that runs
    that event loop (normally the main thread); post to it from any thread.
    Anything but a Tk widget raises ``TypeError``; constructing it on another
    thread raises ``RuntimeError`` (with a threaded Tcl, the usual build).

    Hand-off: posting appends the task to a locked deque and never calls Tcl,
    because a non-threaded Tcl must not be entered from another thread at all,
    and a threaded one marshals such calls and blocks the caller until the
    event loop serves them (or fails when ``mainloop`` is not running).  To wake
    the loop, the first task after an empty queue writes one byte to a pipe
    whose read end is watched by ``createfilehandler``; the loop then runs the
    queued tasks in a batch.  A batch stops after ``max_batch_time`` seconds
    (default 20 ms) and the rest waits until Tk has redrawn the window and
    handled pending input and timers, so the GUI stays responsive while a
    flood of events lasts.

    Added latency: with a threaded Tcl (the python.org, Debian and most other
    builds) the loop wakes as soon as the byte arrives: a median of about
    0.05 ms (measured in ``tests/api/test_executors.py``).  With a non-threaded Tcl, ``mainloop`` itself
    polls every 20 ms, which bounds the delay.  Where ``createfilehandler`` is
    missing (Windows), or when ``poll_interval`` is given, the loop instead
    checks the queue every ``poll_interval`` seconds (default 10 ms), adding up
    to that much.

    When ``widget`` is destroyed (or :meth:`close` is called), queued tasks
    are dropped, the pipe is closed and later posts are dropped with a debug
    log: posting never raises or blocks because the GUI has gone.
    """

    def __init__(
        self,
        widget: Any,
        *,
        max_batch_time: float = 0.02,
        poll_interval: Optional[float] = None,
    ) -> None:
        import tkinter

        if not isinstance(widget, tkinter.Misc):
            raise TypeError(
                "TkExecutor needs a Tk widget (the Tk root or any widget of it), "
                f"not {type(widget).__name__}"
            )
        _check_tk_thread(widget)
        super().__init__(max_batch_time)
        self._widget = widget
        self._path = str(widget)
        self._wake_r: Optional[int] = None
        self._wake_w: Optional[int] = None
        self._poll_id: Optional[str] = None
        if poll_interval is None and hasattr(widget.tk, "createfilehandler"):
            self._wake_r, self._wake_w = os.pipe()
            os.set_blocking(self._wake_r, False)
            os.set_blocking(self._wake_w, False)
            widget.tk.createfilehandler(self._wake_r, tkinter.READABLE, self._on_wake)
        else:
            self._poll_ms = max(1, round(1000 * (poll_interval or 0.01)))
            self._poll_id = widget.after(self._poll_ms, self._poll)
        widget.bind("<Destroy>", self._on_destroy, add="+")

    def _wake(self) -> None:
        if self._wake_w is not None:  # else the poll will find the task
            os.write(self._wake_w, b"\0")

    def _resume(self) -> None:
        # "after idle" then "after 0": redraws (idle callbacks), then pending
        # input and timers, run before the next batch; either one alone would
        # starve the other kind.
        self._widget.after_idle(self._widget.after, 0, self._drain)

    def _release(self) -> None:
        if self._wake_r is not None:
            self._widget.tk.deletefilehandler(self._wake_r)
            os.close(self._wake_r)
            os.close(self._wake_w)  # type: ignore[arg-type]
            self._wake_r = self._wake_w = None
        if self._poll_id is not None:
            try:
                self._widget.after_cancel(self._poll_id)
            except Exception:  # the interpreter is already gone
                pass

    def _on_destroy(self, event: Any) -> None:
        # A binding on a toplevel also sees its children's <Destroy>.
        if str(event.widget) == self._path:
            self.close()

    def _on_wake(self, fd: int, mask: int) -> None:
        try:
            os.read(fd, 512)
        except BlockingIOError:
            pass
        self._drain()

    def _poll(self) -> None:
        if not self._closed:
            self._drain()
            self._poll_id = self._widget.after(self._poll_ms, self._poll)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "pipe" if self._wake_r is not None else "polling"
        return f"<TkExecutor {self._path} {state}>"


def _check_tk_thread(widget: Any) -> None:
    """Raise a clear ``RuntimeError`` when called off the thread that owns ``widget``'s Tcl.

    A threaded Tcl (the usual build) belongs to the thread that created it, and
    ``createtimerhandler`` checks that first; elsewhere Tcl would fail with "Calling Tcl from
    different apartment", or wait a second and fail with "main thread is not in main loop".
    The timer is deleted at once. A non-threaded Tcl cannot tell, and is not checked.
    """
    try:
        widget.tk.createtimerhandler(3_600_000, _nothing).deletetimerhandler()
    except RuntimeError as exc:
        raise RuntimeError(
            "create TkExecutor in the thread that runs the Tk main loop (the one that created "
            "the Tk root, normally the main thread); other threads may then post to it"
        ) from exc


def _nothing() -> None:
    """The callback of :func:`_check_tk_thread`'s timer, which never fires."""


_QT_BINDINGS = ("PySide6", "PyQt6", "PyQt5")


def _qt_core() -> Any:
    """Return the ``QtCore`` module to use.

    A binding the application already imported wins (two Qt bindings in one
    process do not share a QApplication); otherwise the first installed of
    PySide6, PyQt6, PyQt5.
    """
    loaded = [b for b in _QT_BINDINGS if sys.modules.get(b + ".QtCore") is not None]
    error: Optional[ImportError] = None
    for binding in loaded + [b for b in _QT_BINDINGS if b not in loaded]:
        try:
            return importlib.import_module(binding + ".QtCore")
        except ImportError as exc:
            error = exc
    raise ImportError(
        "QtExecutor needs a Qt binding: pip install PySide6 (or pip install syncws[qt]); "
        "PyQt6 and PyQt5 work too"
    ) from error


@functools.lru_cache(maxsize=None)
def _relay_class(QtCore: Any) -> Any:
    """Build, once per binding, the QObject whose slot drains the queue."""
    Slot = getattr(QtCore, "Slot", None) or QtCore.pyqtSlot

    class _Relay(QtCore.QObject):  # type: ignore[misc]
        def __init__(self, parent: Any, drain: Task) -> None:
            super().__init__(parent)
            self._drain_queue = drain

        def drain(self) -> None:
            self._drain_queue()

        drain = Slot()(drain)  # not as a decorator: Slot is untyped, drain stays typed here

    return _Relay


def _connection_type(QtCore: Any, name: str) -> Any:
    try:
        return getattr(QtCore.Qt.ConnectionType, name)  # PySide6, PyQt6
    except AttributeError:
        return getattr(QtCore.Qt, name)  # PyQt5


class QtExecutor(_GuiExecutor):
    """Runs tasks in the Qt main thread (or in ``parent``'s thread).

    Hand-off: posting appends the task to a locked deque; the first task after
    an empty queue asks Qt, with ``QMetaObject.invokeMethod(...,
    Qt.QueuedConnection)``, to call a slot of a small QObject child of
    ``parent`` (default: the ``QCoreApplication``).  That posts an event to the
    thread owning the object, which is safe from any thread, and that thread's
    event loop runs the queued tasks in a batch of at most
    ``max_batch_time`` seconds (default 20 ms); the rest waits for the next
    pass of the loop, after the events that arrived meanwhile.  The added
    latency is one trip through Qt's posted-event queue: a median of about
    0.05 ms while the loop is idle (measured in ``tests/api/test_executors.py``).

    Construct it in the thread that owns ``parent`` (for the default, the
    thread that created the application, after creating it); otherwise
    ``RuntimeError``.  The binding (PySide6, PyQt6 or PyQt5, one already
    imported first) is imported here; with none installed, ``ImportError``.
    Each instance adds one small QObject to ``parent`` for ``parent``'s
    lifetime: share one executor rather than making one per socket.  Once
    ``parent`` is deleted or :meth:`close` (any thread) is called, queued
    and later tasks are dropped with a debug log.
    """

    def __init__(self, parent: Any = None, *, max_batch_time: float = 0.02) -> None:
        QtCore = _qt_core()
        if parent is None:
            parent = QtCore.QCoreApplication.instance()
            if parent is None:
                raise RuntimeError("create the QApplication before QtExecutor(), or pass parent=")
        if QtCore.QThread.currentThread() != parent.thread():
            raise RuntimeError(
                "construct QtExecutor in the thread that owns its parent "
                "(for the default parent, the application's main thread)"
            )
        super().__init__(max_batch_time)
        self._relay = _relay_class(QtCore)(parent, self._drain)
        self._invoke = functools.partial(
            QtCore.QMetaObject.invokeMethod,
            self._relay,
            "drain",
            _connection_type(QtCore, "QueuedConnection"),
        )
        # Called in the deleting thread before the object is gone; it takes
        # the lock that _wake() runs under, so no post touches a deleted object.
        self._relay.destroyed.connect(
            self._on_destroyed, _connection_type(QtCore, "DirectConnection")
        )

    def _wake(self) -> None:
        self._invoke()

    _resume = _wake

    def _release(self) -> None:
        self._relay.deleteLater()

    def _on_destroyed(self, *args: Any) -> None:
        self._shut(release=False)

    def __repr__(self) -> str:
        return f"<QtExecutor {'closed' if self._closed else 'open'}>"
