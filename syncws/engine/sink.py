"""What the engine reports to the layer above it, and what it asks of that layer."""

from __future__ import annotations

from typing import Callable, List, Optional, Union

from ..protocol.handshake import Response
from ..state import Ending

__all__ = ["EngineSink"]


class EngineSink:
    """The API layer's side of a connection. Every call but :meth:`drained` comes from the
    reader thread; none may block except :meth:`wait_for_room` and :meth:`wait_delivered`,
    which are the engine's two documented waits on the layer above (flow control, and the
    bounded protocol-error delay)."""

    def on_open(self, protocol: str, extensions: str, response: Response) -> None:
        """The opening handshake succeeded."""
        raise NotImplementedError

    def on_messages(self, messages: List[Union[str, bytes]]) -> None:
        """The messages of one read, in order (handed over together: one hand-off, not many)."""
        raise NotImplementedError

    def on_closed(self, ending: Ending) -> None:
        """The connection ended (``ending`` is also recorded in the socket's state); called
        exactly once, last."""
        raise NotImplementedError

    def wait_for_room(self) -> bool:
        """Inbound flow control: block while too many events wait for delivery.

        The engine calls it before every read until a Close is under way; the sink must return
        once :meth:`wake` was called. True if it blocked: the reader could not see a pong
        meanwhile, so keepalive starts afresh instead of taking the peer for dead.
        """
        return False

    def wait_delivered(self, timeout: float) -> None:
        """Block until the messages handed over so far were delivered (or ``timeout``)."""

    def wake(self) -> None:
        """``close()`` or ``abort()`` was called: stop blocking in :meth:`wait_for_room`."""

    @property
    def deferring(self) -> bool:
        """Whether events are delivered on the connection's own threads (the default executor):
        the engine then runs two threads that take turns reading and delivering."""
        return False

    def take_deferred(self) -> Optional[Callable[[], object]]:
        """The delivery the calling thread's last report scheduled, to run now (see
        :attr:`deferring`); None when there is nothing to deliver or another thread is."""
        return None

    def drained(self) -> None:
        """Every byte ``send()`` accepted reached the OS (only when asked: ``watch_drain``);
        called from whichever thread wrote the last byte."""
