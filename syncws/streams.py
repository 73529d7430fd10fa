"""Byte streams the engine reads and writes: a TCP socket, and TLS layered over any stream.

Every stream is used by exactly two threads once a connection is open: the reader calls
``recv_into`` and the writer calls ``send_buffers``. TLS never hands one ``ssl.SSLSocket`` to
both (OpenSSL forbids concurrent use of one ``SSL`` object, and CPython's ``SSLSocket`` read in
one thread while written in another has hung real clients). Instead :class:`TLSStream` drives an
``ssl.SSLObject`` over two ``ssl.MemoryBIO``: each thread does its own I/O on the layer below and
touches the ``SSLObject`` only under a short lock that is never held across I/O. Records the
reader's side makes TLS emit (a key update reply, say) are sent by the writer: the reader calls
``output_waker`` and the writer's next ``flush`` drains them, so bytes leave in order.
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
import time
from typing import Any, Callable, Iterable, List, Optional, Sequence, Tuple, Union

BytesLike = Union[bytes, bytearray, memoryview]

__all__ = ["Stream", "SocketStream", "TLSStream", "wait_readable", "wait_writable", "time_left"]

# Largest chunk handed to SSLObject.write at once: keeps the encrypted copy of a huge message
# from doubling its memory, and lets the writer report progress as it goes.
_TLS_WRITE_CHUNK = 256 * 1024
# Frames this small on average (or this small in all) are joined into one buffer before a
# write: one copy of a few KiB costs less than a memoryview and an iovec per frame.
_JOIN_AVERAGE = 1024
_JOIN_TOTAL = 64 * 1024


def _poll_wait(sock: socket.socket, events: int, timeout: Optional[float]) -> bool:
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, events)
        ms = None if timeout is None else max(0, int(timeout * 1000 + 0.999))
        return bool(poller.poll(ms))
    # Windows has no poll(); select() there is not limited to descriptors below 1024.
    want_read = events & select.POLLIN if hasattr(select, "POLLIN") else events == 1
    readers = [sock] if want_read else []
    writers = [] if want_read else [sock]
    r, w, x = select.select(readers, writers, [sock], timeout)
    return bool(r or w or x)


_POLLIN = getattr(select, "POLLIN", 1)
_POLLOUT = getattr(select, "POLLOUT", 4)


def wait_readable(sock: socket.socket, timeout: Optional[float]) -> bool:
    """True when ``sock`` has data (or EOF/error) before ``timeout`` seconds pass."""
    return _poll_wait(sock, _POLLIN, timeout)


def wait_writable(sock: socket.socket, timeout: Optional[float]) -> bool:
    """True when ``sock`` can be written (or has failed) before ``timeout`` seconds pass."""
    return _poll_wait(sock, _POLLOUT, timeout)


class Stream:
    """A connected byte stream: one reader thread, one writer thread."""

    #: The TCP socket at the bottom of the stack (for shutdown, polling and options).
    sock: socket.socket

    def recv_into(self, buffer: memoryview, timeout: Optional[float] = None) -> Optional[int]:
        """Read into ``buffer``; the count, 0 at end of stream, ``None`` when ``timeout`` passed."""
        raise NotImplementedError

    def send_buffers(self, buffers: Sequence[BytesLike]) -> None:
        """Write every buffer, in order, blocking until the OS has taken them all."""
        raise NotImplementedError

    def sendall(self, data: BytesLike) -> None:
        self.send_buffers((data,))

    def flush(self) -> None:
        """Send whatever a lower layer produced on its own (TLS records); a no-op for TCP."""

    def shutdown(self) -> None:
        """Wake both threads: blocked reads return EOF, blocked writes fail. Idempotent."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class SocketStream(Stream):
    """A TCP (or Unix domain) socket in blocking mode; waits use poll() so timers keep running."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        sock.setblocking(True)
        self._sendmsg = getattr(sock, "sendmsg", None)

    def recv_into(self, buffer: memoryview, timeout: Optional[float] = None) -> Optional[int]:
        if timeout is not None and not wait_readable(self.sock, timeout):
            return None
        return self.sock.recv_into(buffer)

    def send_buffers(self, buffers: Sequence[BytesLike]) -> None:
        if len(buffers) > 1 and _worth_joining(buffers):
            buffers = (b"".join(buffers),)
        sendmsg = self._sendmsg
        if sendmsg is None or len(buffers) == 1:
            for buf in buffers:
                self.sock.sendall(buf)
            return
        _sendmsg_all(sendmsg, buffers)


def _worth_joining(buffers: Sequence[BytesLike]) -> bool:
    """Whether ``buffers`` are small enough that one joined copy beats a view per buffer."""
    total = sum(map(len, buffers))
    return total <= _JOIN_TOTAL or total <= _JOIN_AVERAGE * len(buffers)


def _sendmsg_all(sendmsg: Callable[[List[memoryview]], int], buffers: Sequence[BytesLike]) -> None:
    """Write every buffer with blocking ``sendmsg`` calls (a signal may cut one short)."""
    pending: List[memoryview] = [memoryview(b).cast("B") for b in buffers if len(b)]
    first = 0
    while first < len(pending):
        # Linux caps a sendmsg at IOV_MAX (1024) buffers.
        sent = sendmsg(pending[first : first + 1024])
        while sent:
            head = pending[first]
            if sent >= len(head):
                sent -= len(head)
                first += 1
            else:
                pending[first] = head[sent:]
                sent = 0


class TLSStream(Stream):
    """TLS over another stream via ``SSLObject`` + ``MemoryBIO`` (see the module docstring)."""

    def __init__(
        self,
        inner: Stream,
        context: ssl.SSLContext,
        server_hostname: Optional[str],
    ) -> None:
        self.inner = inner
        self.sock = inner.sock
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._obj = context.wrap_bio(
            self._incoming, self._outgoing, server_side=False, server_hostname=server_hostname
        )
        self._lock = threading.Lock()
        self._raw = bytearray(64 * 1024)
        self._raw_view = memoryview(self._raw)
        #: Set by the engine once the writer runs; until then the reader sends TLS output itself.
        self.output_waker: Optional[Callable[[], None]] = None

    # -- handshake (reader thread only, before the writer starts) ---------------------------

    def handshake(self, deadline: Optional[float]) -> None:
        """Run the TLS handshake; raises ``ssl.SSLError`` (e.g. certificate failures) or timeouts."""
        while True:
            with self._lock:
                try:
                    self._obj.do_handshake()
                    done = True
                except ssl.SSLWantReadError:
                    done = False
                data = self._outgoing.read()
            if data:
                self.inner.sendall(data)
            if done:
                return
            if not self._fill(time_left(deadline)):
                raise ConnectionResetError("connection closed during the TLS handshake")

    # -- reading ------------------------------------------------------------------------

    def _fill(self, timeout: Optional[float]) -> bool:
        """Move raw bytes from below into the incoming BIO; False at end of stream."""
        n = self.inner.recv_into(self._raw_view, timeout)
        if n is None:
            raise socket.timeout("timed out")
        with self._lock:
            if n:
                self._incoming.write(self._raw_view[:n])
            else:
                self._incoming.write_eof()
        return bool(n)

    def recv_into(self, buffer: memoryview, timeout: Optional[float] = None) -> Optional[int]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                n: int
                try:
                    # With a buffer, read() returns the count (typeshed says bytes).
                    n = self._obj.read(len(buffer), buffer)  # type: ignore[assignment]
                except ssl.SSLWantReadError:
                    n = -1
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    n = 0
                produced = self._outgoing.pending
            if produced:
                self._reader_output()
            if n >= 0:
                return n
            try:
                remaining = time_left(deadline)
                got = self.inner.recv_into(self._raw_view, remaining)
            except OSError:
                raise
            if got is None:
                return None
            with self._lock:
                if got:
                    self._incoming.write(self._raw_view[:got])
                else:
                    self._incoming.write_eof()

    def _reader_output(self) -> None:
        waker = self.output_waker
        if waker is None:
            self.flush()
        else:
            waker()

    # -- writing (writer thread) ----------------------------------------------------------

    def send_buffers(self, buffers: Sequence[BytesLike]) -> None:
        if len(buffers) > 1 and sum(len(b) for b in buffers) <= _TLS_WRITE_CHUNK:
            buffers = (b"".join(buffers),)  # one TLS record instead of one per frame part
        for buf in buffers:
            view = memoryview(buf).cast("B") if not isinstance(buf, bytes) else buf
            for start in range(0, len(view), _TLS_WRITE_CHUNK):
                chunk = view[start : start + _TLS_WRITE_CHUNK]
                with self._lock:
                    written = 0
                    while written < len(chunk):
                        written += self._obj.write(chunk[written:])
                    data = self._outgoing.read()
                self.inner.sendall(data)
        self.flush()

    def flush(self) -> None:
        with self._lock:
            data = self._outgoing.read() if self._outgoing.pending else b""
        if data:
            self.inner.sendall(data)
        self.inner.flush()

    def shutdown(self) -> None:
        self.inner.shutdown()

    def close(self) -> None:
        self.inner.close()


def time_left(deadline: Optional[float]) -> Optional[float]:
    """Seconds until ``deadline`` (a ``time.monotonic()`` value; None = no limit).

    Raises ``socket.timeout`` once it has passed, so a loop of timed reads cannot overrun it.
    """
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise socket.timeout("timed out")
    return left


def iter_addresses(host: str, port: int) -> Iterable[Tuple[Any, ...]]:
    """``getaddrinfo`` results for a TCP connection, in the resolver's order."""
    return socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
