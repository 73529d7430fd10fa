"""The I/O engine: one connection's reader thread, its writer, and the deadlines they keep.

- :mod:`.opening`: the stream (TCP, proxy, TLS) and the opening handshake;
- :mod:`.reader`: the read loop, keepalive and ``close_timeout``;
- :mod:`.writer`: direct writes and the on-demand writer thread;
- :mod:`.engine`: the :class:`Engine` the API layer talks to, and the one place a connection
  ends;
- :mod:`.sink`: what the engine reports to the API layer.
"""

from .engine import Engine
from .opening import EngineOptions, HandshakeSpec
from .sink import EngineSink

__all__ = ["Engine", "EngineOptions", "EngineSink", "HandshakeSpec"]
