"""pytest plugin (entry point ``pytest11``): fixtures that start syncws's scriptable server.

- ``ws_server``: a started echo :class:`~syncws.server.WebSocketServer` on 127.0.0.1.
- ``ws_server_factory``: ``ws_server_factory(handler=None, **options)`` starts a server with
  any of ``WebSocketServer``'s options (``handshake=``, ``ssl_context=``, ``host="::1"``, …).
- ``ws_tls``: ``(server_context, client_context)`` from a throwaway ``trustme`` CA whose
  certificate is valid for ``localhost``, ``127.0.0.1`` and ``::1`` (skips without trustme).

Every server is stopped at teardown, and an exception a handler raised (an ``AssertionError``
in a script, say) is re-raised there so it fails the test; clear ``server.errors`` in the
test to accept it. This module is imported by every pytest run in an environment where syncws
is installed, so it imports nothing heavier than pytest until a fixture is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterator, List, NamedTuple, Optional

import pytest

if TYPE_CHECKING:  # pragma: no cover
    import ssl

    from .server import Handler, WebSocketServer

__all__ = ["ws_server", "ws_server_factory", "ws_tls", "TLSContexts"]


class TLSContexts(NamedTuple):
    """A server and a client ``SSLContext`` that trust each other."""

    server: "ssl.SSLContext"
    client: "ssl.SSLContext"


def _stop_all(servers: List["WebSocketServer"]) -> None:
    """Stop every server, then fail with the first unexpected handler exception."""
    for server in servers:
        server.stop()
    errors = [error for server in servers for error in server.errors]
    if errors:
        raise AssertionError(f"a server handler raised {errors[0]!r}") from errors[0]


@pytest.fixture
def ws_server_factory() -> Iterator[Callable[..., "WebSocketServer"]]:
    """A function that starts a ``WebSocketServer(handler, **options)``; all stop at teardown."""
    from .server import WebSocketServer

    servers: List[WebSocketServer] = []

    def factory(handler: Optional["Handler"] = None, **options: Any) -> WebSocketServer:
        server = WebSocketServer(handler, **options)
        servers.append(server)
        return server.start()

    yield factory
    _stop_all(servers)


@pytest.fixture
def ws_server(ws_server_factory: Callable[..., "WebSocketServer"]) -> "WebSocketServer":
    """A started echo server on 127.0.0.1 (``ws_server.url``), stopped after the test."""
    return ws_server_factory()


@pytest.fixture(scope="session")
def ws_tls() -> TLSContexts:
    """TLS contexts from a test CA (``trustme``) for ``localhost``, ``127.0.0.1`` and ``::1``."""
    import ssl

    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1", "::1").configure_cert(server)
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(client)
    return TLSContexts(server, client)
