"""Helpers shared by the test modules: timeouts, waiting, recording events, thread checks.

Written once here instead of once per module; import what you need (``from helpers import
...``: ``tests/`` is on ``sys.path`` through its conftest).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from syncws import WebSocket
from syncws.server import ClientClosed, CloseInfo, ServerConnection

#: Options for sockets whose tests do not care about compression or proxies from the
#: environment (so a developer's HTTP_PROXY cannot change a result).
OPTS: Dict[str, Any] = dict(compression=False, proxy=None)
#: How long a test waits for something that should happen at once on an idle machine.
TIMEOUT = 5.0

#: The name prefixes of every thread syncws starts for a connection.
THREAD_PREFIXES = (
    "syncws-reader-",
    "syncws-writer-",
    "syncws-dispatch-",
    "syncws-reconnect-",
)

Events = List[Tuple[str, Any]]


def wait_until(predicate: Callable[[], bool], timeout: float = 2 * TIMEOUT) -> None:
    """Poll ``predicate`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def syncws_threads() -> List[threading.Thread]:
    """The syncws connection threads alive now."""
    return [t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIXES)]


def wait_no_syncws_threads(timeout: float = 3.0) -> List[threading.Thread]:
    """The syncws threads still alive after ``timeout`` (they should all end)."""
    deadline = time.monotonic() + timeout
    while True:
        alive = syncws_threads()
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.01)


def wait_gone(threads: List[threading.Thread], timeout: float = 3.0) -> List[str]:
    """Names of ``threads`` still alive after ``timeout``."""
    deadline = time.monotonic() + timeout
    while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
        time.sleep(0.01)
    return [t.name for t in threads if t.is_alive()]


def record(url: str, **options: Any) -> Tuple[WebSocket, Events]:
    """A socket whose handlers (given to the constructor: nothing is missed) log every event
    as ``(type, event)``."""
    events: Events = []
    handlers = {
        f"on{kind}": (lambda e: events.append((e.type, e)))
        for kind in ("open", "message", "error", "close")
    }
    ws = WebSocket(url, **{**OPTS, **handlers, **options})
    return ws, events


def types(events: Events) -> List[str]:
    """The event types of a :func:`record` log, in order."""
    return [kind for kind, _ in events]


def only(events: Events, kind: str) -> Any:
    """The one event of ``kind`` in a :func:`record` log (fails if there are several)."""
    (event,) = [e for k, e in events if k == kind]
    return event


def client_close_of(conn: ServerConnection) -> Optional[CloseInfo]:
    """Server side: read until the client ends the connection; its Close (None without one)."""
    try:
        while True:
            conn.recv()
    except ClientClosed as exc:
        return exc.close
