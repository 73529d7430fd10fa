"""Every write after the opening handshake, in order, without blocking the sender.

A message is written on the sending thread when that is cheap and safe: it is small, nothing
waits in the queue, and the stream takes it without blocking (a non-blocking ``sendmsg``).
Everything else goes into a queue that a writer thread drains; that thread is started when
something must wait and ends when it has been idle for a moment, so an idle connection has
none. Messages are framed (compressed, masked) by whoever holds the write lock, in the order
they were accepted, so one compression context serves them all and a large message costs the
sender nothing but a queue append.

Locks: the engine's lock (``cond``) guards the queue and the byte counters, and is the lock
around every call into the protocol core; ``write_lock`` is held by whoever frames or writes
(the writer thread or a direct sender), never while waiting for the engine's lock to be free
in the other order.
"""

from __future__ import annotations

import collections
import logging
import socket
import threading
import time
from typing import Any, Callable, Deque, List, Optional, Set, Union

from ..blob import Blob
from ..protocol.connection import ClientConnection
from ..streams import SocketStream, Stream

logger = logging.getLogger("syncws")

__all__ = ["Writer"]

_MSG_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)
# Sends closer together than this count as a burst: they go through the writer, which writes
# everything waiting with one system call, instead of one direct write each.
_BURST = 15e-6
# Messages up to this size may be framed and written on the sender's thread; larger ones are
# always framed by the writer thread, so send() does no work proportional to a large message.
_DIRECT_MAX = 16 * 1024
# The writer lowers buffered_amount after each write of about this many bytes.
_WRITE_CHUNK = 1024 * 1024
# How long an idle writer thread waits for more work before it ends.
_LINGER = 0.25
_monotonic = time.monotonic


class _Outbound:
    """A unit of the queue: frames ready to write, or a message still to frame, with the
    application bytes it carries (they leave ``buffered_amount`` once written)."""

    __slots__ = ("buffers", "app_bytes", "message", "text")

    def __init__(
        self,
        buffers: List[bytes],
        app_bytes: int = 0,
        message: Optional[Union[bytes, Blob]] = None,
        text: bool = False,
    ) -> None:
        self.buffers = buffers
        self.app_bytes = app_bytes
        self.message = message
        self.text = text


class Writer:
    """The send side of one open connection (see the module docstring)."""

    def __init__(
        self,
        stream: Stream,
        connection: ClientConnection,
        cond: threading.Condition,
        *,
        name: str,
        on_failed: Callable[[OSError], None],
        on_drained: Callable[[], None],
        own_threads: Optional[Set[int]] = None,
        at_safe_point: Optional[Callable[[], None]] = None,
        log_message: Optional[Callable[[Any, bool, List[bytes]], None]] = None,
    ) -> None:
        self._stream = stream
        self._connection = connection
        self._cond = cond
        self._name = name
        self._on_failed = on_failed
        self._on_drained = on_drained
        # The connection's thread ids, which the writer thread joins while it runs, and what
        # it calls between writes, holding no lock (see Engine.close_collected).
        self._own_threads: Set[int] = set() if own_threads is None else own_threads
        self._at_safe_point = at_safe_point
        self._log_message = log_message
        self._queue: Deque[_Outbound] = collections.deque()
        self._write_lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self._stopping = False
        self._last_send = 0.0
        self._flush_waiters = 0
        # buffered_amount = accepted - written (each counter is changed under ``cond``).
        self.accepted = 0
        self.written = 0
        #: Set when the layer above wants :func:`on_drained` once everything was written.
        self.watch_drain = False
        direct = None
        if type(stream) is SocketStream and _MSG_DONTWAIT and hasattr(stream.sock, "sendmsg"):
            sendmsg = stream.sock.sendmsg
            direct = lambda buffers: sendmsg(buffers, (), _MSG_DONTWAIT)  # noqa: E731
        self._direct_send: Optional[Callable[[List[bytes]], int]] = direct

    # -- what the engine calls --------------------------------------------------------------

    def send_message(self, payload: Union[bytes, Blob], text: bool, app_bytes: int) -> None:
        """Write a message the engine accepted.

        Called with ``cond`` held, so that acceptance and queueing are one step (nothing the
        engine queues later, a Close say, can overtake it); a direct write releases ``cond``
        for the framing and the I/O, holding the write lock instead.
        """
        self.accepted += app_bytes
        now = _monotonic()
        burst = now - self._last_send <= _BURST
        self._last_send = now
        if app_bytes > _DIRECT_MAX or burst or not self._claim_direct():
            self._enqueue(_Outbound([], app_bytes, payload, text))
            return
        self._cond.release()
        try:
            self._write_now(self._frame(payload, text), app_bytes)
        finally:
            self._cond.acquire()

    def send_control(self, frames: List[bytes]) -> None:
        """Write frames the protocol owes the peer: pongs, a Close, a ping (``cond`` held, as
        for :meth:`send_message`)."""
        if not self._claim_direct():
            self._enqueue(_Outbound(frames))
            return
        self._cond.release()
        try:
            self._write_now(frames, 0)
        finally:
            self._cond.acquire()

    def _claim_direct(self) -> bool:
        """Take the write lock for a direct write if nothing waits and nobody writes."""
        return not self._queue and self._direct_send is not None and self._write_lock.acquire(False)

    def wake(self) -> None:
        """Have the writer flush what a lower layer produced on its own (TLS records)."""
        with self._cond:
            self._enqueue(_Outbound([]))

    @property
    def unwritten(self) -> int:
        return self.accepted - self.written

    @property
    def idle(self) -> bool:
        """Nothing queued and nobody writing (``cond`` held)."""
        return not self._queue and not self._write_lock.locked()

    def flush(self, deadline: Optional[float], finished: Callable[[], bool], *, control: bool) -> bool:
        """Wait until every accepted byte was written (with ``control``, queued control frames
        too), or ``finished()``; False when ``deadline`` passed first. ``cond`` not held."""
        with self._cond:
            self._flush_waiters += 1
            try:
                while not finished() and (
                    self.accepted != self.written or (control and not self.idle)
                ):
                    left = None if deadline is None else deadline - _monotonic()
                    if left is not None and left <= 0:
                        return False
                    self._cond.wait(0.5 if left is None else min(left, 0.5))
                return True
            finally:
                self._flush_waiters -= 1

    def stop(self, timeout: float) -> None:
        """The connection is ending: write what is queued (for ``timeout`` at most) and end the
        thread. ``cond`` not held; the stream must be shut down if this returns early."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def join(self) -> None:
        """Wait for the writer thread to end (after the stream was shut down)."""
        thread = self._thread
        if thread is not None:
            thread.join()

    # -- internals ----------------------------------------------------------------------------

    def _enqueue(self, item: _Outbound, *, first: bool = False) -> None:
        """Queue ``item`` (``first``: ahead of everything, the rest of a partial write) and make
        sure a writer thread will take it (``cond`` held)."""
        if first:
            self._queue.appendleft(item)
        else:
            self._queue.append(item)
        if self._thread is None:
            if self._stopping:
                return  # the connection has ended: nothing more is written
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()
        elif self._flush_waiters:
            self._cond.notify_all()  # flush() waits on the same condition
        else:
            self._cond.notify()

    def _frame(self, payload: Union[bytes, Blob], text: bool) -> List[bytes]:
        """Frames for one message (write lock held: one compression context, in order)."""
        data = payload.bytes() if payload.__class__ is Blob else payload
        buffers = self._connection.encode_message(data, text)  # type: ignore[arg-type]
        if self._log_message is not None:
            self._log_message(data, text, buffers)
        return buffers

    def _write_now(self, buffers: List[bytes], app_bytes: int) -> None:
        """Write what the socket takes without blocking; queue the rest first in line.

        Called with the write lock held (released here), so no other write comes between.
        """
        try:
            try:
                sent = self._direct_send(buffers)  # type: ignore[misc]
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self._on_failed(exc)
                return
            with self._cond:
                if sent >= (len(buffers[0]) if len(buffers) == 1 else sum(map(len, buffers))):
                    self._wrote(app_bytes)
                else:
                    self._enqueue(_Outbound(_drop_prefix(buffers, sent), app_bytes), first=True)
        finally:
            self._write_lock.release()
        if self.watch_drain:
            self._check_drained()

    def _wrote(self, app_bytes: int) -> None:
        """Count written application bytes (``cond`` held)."""
        self.written += app_bytes
        if self._flush_waiters:
            self._cond.notify_all()

    def _check_drained(self) -> None:
        if self.accepted == self.written:
            self.watch_drain = False
            self._on_drained()

    def _take(self) -> Optional[List[_Outbound]]:
        """The queued items, once there are any; None when the thread should end."""
        cond = self._cond
        with cond:
            while not self._queue:
                if self._stopping:
                    self._thread = None
                    return None
                if not cond.wait(_LINGER) and not self._queue and not self._stopping:
                    self._thread = None  # idle: the next queued item starts a new thread
                    return None
        # Take the items only once holding the write lock: a direct sender may be about to
        # put its unsent remainder first in line.
        self._write_lock.acquire()
        with cond:
            items = list(self._queue)
            self._queue.clear()
        return items

    def _run(self) -> None:
        me = threading.get_ident()
        self._own_threads.add(me)
        try:
            while True:
                items = self._take()
                if items is None:
                    return
                try:
                    self._write_items(items)
                finally:
                    self._write_lock.release()
                if self.watch_drain:
                    self._check_drained()
                if self._at_safe_point is not None:
                    self._at_safe_point()
        except OSError as exc:
            with self._cond:
                self._thread = None
                self._stopping = True
            self._on_failed(exc)
        finally:
            self._own_threads.discard(me)
            if self._at_safe_point is not None:
                self._at_safe_point()

    def _write_items(self, items: List[_Outbound]) -> None:
        """Frame and write ``items`` in order (write lock held): small ones joined into one
        write, and ``buffered_amount`` lowered after each write of about ``_WRITE_CHUNK``
        bytes, so it drops as bytes reach the OS, not once a long queue is all written."""
        stream = self._stream
        buffers: List[bytes] = []
        size = app_bytes = 0
        for item in items:
            if item.message is not None:
                item.buffers = self._frame(item.message, item.text)
                item.message = None
            buffers += item.buffers
            size += sum(map(len, item.buffers))
            app_bytes += item.app_bytes
            if size >= _WRITE_CHUNK:
                self._write(stream, buffers, app_bytes)
                buffers, size, app_bytes = [], 0, 0
        if buffers or app_bytes:
            self._write(stream, buffers, app_bytes)
        else:
            stream.flush()  # only a wake-up: what TLS produced on its own

    def _write(self, stream: Stream, buffers: List[bytes], app_bytes: int) -> None:
        if buffers:
            stream.send_buffers(buffers)
        if app_bytes or self._flush_waiters:
            with self._cond:
                self._wrote(app_bytes)


def _drop_prefix(buffers: List[bytes], count: int) -> List[bytes]:
    """``buffers`` without their first ``count`` bytes (what a partial write already sent)."""
    rest: List[bytes] = []
    for buf in buffers:
        if count >= len(buf):
            count -= len(buf)
            continue
        rest.append(memoryview(buf)[count:] if count else buf)  # type: ignore[arg-type]
        count = 0
    return rest
