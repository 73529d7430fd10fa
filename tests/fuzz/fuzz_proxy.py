"""Fuzz target: what syncws reads from proxies and proxy settings.

Byte 0 of an input (modulo 3) picks the part, the rest is its input:

0. the HTTP proxy's answer to CONNECT, read by ``syncws.proxy._read_response_head`` from an
   in-memory stream (byte 1: the size of each read, 1-256) exactly as from the proxy's socket:
   a ``Response`` whose ``leftover`` is what followed the head, or ``HandshakeError`` (which
   the tunnel turns into ``ProxyError``), or ``ConnectionResetError`` when the stream ends
   first; the parser's buffer stays within ``MAX_HEAD_SIZE`` plus one read;
1. a proxy URL (``proxy=`` or ``HTTPS_PROXY``), decoded as in ``fuzz_url``: ``ValueError``
   from ``validate_proxy_url`` or a URL whose CONNECT request can be built;
2. a ``NO_PROXY`` list and a host, separated by the first NUL (byte 1: the port's low byte):
   ``_bypasses`` answers True or False and never raises.

Run it (atheris needed): ``python tests/fuzz/run.py proxy tests/fuzz/corpus/proxy``.
"""

from __future__ import annotations

from typing import Optional

from syncws import proxy as proxy_module
from syncws.errors import HandshakeError
from syncws.protocol.handshake import MAX_HEAD_SIZE
from syncws.streams import Stream


class ScriptedStream(Stream):
    """A stream that returns ``data`` in reads of ``step`` bytes, then end of stream."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = memoryview(data)
        self._step = step

    def recv_into(self, buffer: memoryview, timeout: Optional[float] = None) -> Optional[int]:
        count = min(self._step, len(buffer), len(self._data))
        buffer[:count] = self._data[:count]
        self._data = self._data[count:]
        return count


def decode(data: bytes) -> str:
    try:
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _connect_answer(data: bytes, step: int) -> None:
    stream = ScriptedStream(data, step)
    try:
        response = proxy_module._read_response_head(stream, None, lambda: False)
    except (HandshakeError, ConnectionResetError):
        return
    end = data.index(b"\r\n\r\n")
    assert end <= MAX_HEAD_SIZE
    consumed = len(data) - len(stream._data)
    assert response.leftover == data[end + 4 : consumed]
    assert consumed - end <= step + 4


def _proxy_url(text: str) -> None:
    try:
        proxy_module.validate_proxy_url(text)
    except ValueError:
        return
    proxy = proxy_module._parse_proxy_url(text)
    assert proxy.scheme in proxy_module.PROXY_SCHEMES
    assert 0 <= proxy.port <= 65535
    proxy.address.encode("ascii")
    if not proxy.scheme.startswith("socks"):
        proxy_module._connect_request(proxy, "example.com:443", "syncws-fuzz")


def _no_proxy(data: bytes, port: int) -> None:
    no_proxy, _, host = decode(data).partition("\x00")
    result = proxy_module._bypasses(no_proxy, host, port)
    assert result is True or result is False


def test_one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    mode = data[0] % 3
    if mode == 0:
        _connect_answer(data[2:], 1 + data[1])
    elif mode == 1:
        _proxy_url(decode(data[1:]))
    else:
        _no_proxy(data[2:], data[1])

