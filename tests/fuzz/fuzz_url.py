"""Fuzz target: ``parse_ws_url``, the WebSocket constructor's URL parser (WHATWG URL rules).

The input is decoded as UTF-8 (lone surrogates allowed, as a Python ``str`` may hold them),
or as Latin-1 when it is not UTF-8. ``DOMSyntaxError`` is the only exception allowed. A URL
that parses must describe a usable endpoint (ws/wss, a host, a port from 0 to 65535, a
resource name starting with "/", no whitespace or controls in ``href``), and parsing its
``href`` again must give the same URL: what syncws shows is what it connects to.

Run it (atheris needed): ``python tests/fuzz/run.py url -max_len=8192 tests/fuzz/corpus/url``.
"""

from __future__ import annotations


from syncws.errors import DOMSyntaxError
from syncws.url import parse_ws_url


def decode(data: bytes) -> str:
    try:
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def test_one_input(data: bytes) -> None:
    text = decode(data)
    try:
        url = parse_ws_url(text)
    except DOMSyntaxError:
        return
    assert url.scheme in ("ws", "wss"), url.scheme
    assert url.host, url
    assert 0 <= url.port <= 65535, url.port
    assert url.resource_name.startswith("/"), url.resource_name
    href = url.href
    assert not any(ord(c) <= 0x20 or c == "\x7f" for c in href), href
    href.encode("ascii")  # every non-ASCII character is percent-encoded or punycode
    again = parse_ws_url(href)
    assert again == url, (url, again)

