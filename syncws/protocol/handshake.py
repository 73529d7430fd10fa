"""The opening handshake (RFC 6455 section 4): request building and strict response checks.

The response parser is bounded (head size, line length, header count) so that a server that
answers with megabytes of headers gets a :class:`HandshakeError`, not a memory blow-up. Bytes
that arrive behind the response head belong to the WebSocket connection and are handed back
untouched as ``Response.leftover``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from typing import Callable, Iterable, List, NamedTuple, Optional, Sequence, Tuple

from ..errors import HandshakeError

__all__ = [
    "GUID",
    "accept_key",
    "new_key",
    "Response",
    "ResponseParser",
    "build_request",
    "check_response",
    "check_header_field",
    "PROTOCOL_OWNED_HEADERS",
    "MAX_HEAD_SIZE",
]

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

MAX_HEAD_SIZE = 64 * 1024
MAX_LINE = 8 * 1024
MAX_HEADERS = 256
MAX_BODY = 64 * 1024  # what a HandshakeError keeps of a refusal's body

#: Headers syncws writes itself; ``headers=`` may not set them.
PROTOCOL_OWNED_HEADERS = frozenset(
    {
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-accept",
        "upgrade",
        "connection",
        "sec-websocket-protocol",
        "sec-websocket-extensions",
    }
)

Headers = List[Tuple[str, str]]

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")  # \Z: "$" would allow a final "\n"
_FORBIDDEN_IN_FIELDS = re.compile(r"[\r\n\x00]")
# RFC 9110 15: a status code is three digits, the first (its class) from 1 to 5.
_STATUS_LINE = re.compile(r"HTTP/1\.[01] ([1-5][0-9]{2})(?: (.*))?\Z")
_CONTENT_LENGTH = re.compile(r"[0-9]{1,18}")


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key``: base64(SHA-1(key + GUID))."""
    digest = hashlib.sha1((key + GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def new_key() -> str:
    """A fresh ``Sec-WebSocket-Key``: 16 random bytes, base64."""
    return base64.b64encode(os.urandom(16)).decode("ascii")


def check_header_field(name: str, value: str) -> None:
    """Reject header names that are not tokens and any CR, LF or NUL (header injection)."""
    if not isinstance(name, str) or not isinstance(value, str):
        raise TypeError("header names and values must be str")
    if not _TOKEN.match(name):
        raise ValueError(f"invalid header name {name!r}")
    if _FORBIDDEN_IN_FIELDS.search(value):
        raise ValueError(f"header {name!r} contains CR, LF or NUL")


def build_request(
    *,
    host: str,
    resource: str,
    key: str,
    protocols: Sequence[str] = (),
    extensions: Optional[str] = None,
    headers: Iterable[Tuple[str, str]] = (),
) -> bytes:
    """The GET request: protocol headers first, then the caller's (``Host`` may be overridden)."""
    extra = list(headers)
    names = {name.lower() for name, _ in extra}
    lines = [f"GET {resource} HTTP/1.1"]
    if "host" not in names:
        lines.append(f"Host: {host}")
    lines += [
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if protocols:
        lines.append("Sec-WebSocket-Protocol: " + ", ".join(protocols))
    if extensions:
        lines.append(f"Sec-WebSocket-Extensions: {extensions}")
    lines += [f"{name}: {value}" for name, value in extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


class Response(NamedTuple):
    status: int
    reason: str
    headers: Headers
    leftover: bytes  #: bytes after the head: WebSocket frames on success, a body otherwise

    def get_all(self, name: str) -> List[str]:
        lname = name.lower()
        return [v for k, v in self.headers if k.lower() == lname]

    def get(self, name: str) -> Optional[str]:
        values = self.get_all(name)
        return ", ".join(values) if values else None


class ResponseParser:
    """Accumulates bytes until the response head is complete; bounded by ``max_size``."""

    def __init__(self, max_size: int = MAX_HEAD_SIZE) -> None:
        self.max_size = max_size
        self._buffer = bytearray()

    def feed(self, data: bytes) -> Optional[Response]:
        """The response once its head is complete, else ``None``; raises ``HandshakeError``."""
        start = max(0, len(self._buffer) - 3)
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n", start)
        if end < 0:
            if len(self._buffer) > self.max_size:
                raise HandshakeError(
                    f"the response head exceeds {self.max_size} bytes without ending"
                )
            return None
        if end > self.max_size:
            raise HandshakeError(f"the response head exceeds {self.max_size} bytes")
        head = bytes(self._buffer[:end])
        leftover = bytes(self._buffer[end + 4 :])
        self._buffer.clear()
        return _parse_head(head, leftover)


def _parse_head(head: bytes, leftover: bytes) -> Response:
    try:
        text = head.decode("iso-8859-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes everything
        raise HandshakeError("the response head is not text")
    lines = text.split("\r\n")
    status_line = lines[0]
    match = _STATUS_LINE.match(status_line)
    if not match:
        raise HandshakeError(f"malformed status line {status_line[:100]!r}")
    status = int(match.group(1))
    reason = match.group(2) or ""
    if len(lines) - 1 > MAX_HEADERS:
        raise HandshakeError(f"more than {MAX_HEADERS} response headers")
    headers: Headers = []
    for line in lines[1:]:
        if len(line) > MAX_LINE:
            raise HandshakeError("a response header line is too long")
        if line[:1] in (" ", "\t"):
            raise HandshakeError("obsolete folded header lines are not accepted")
        name, sep, value = line.partition(":")
        if not sep or not _TOKEN.match(name):
            raise HandshakeError(f"malformed response header line {line[:100]!r}")
        headers.append((name, value.strip(" \t")))
    return Response(status, reason, headers, leftover)


def _tokens(values: Iterable[str]) -> List[str]:
    return [t.strip().lower() for v in values for t in v.split(",") if t.strip()]


def check_response(
    response: Response,
    *,
    key: str,
    protocols: Sequence[str],
    accept_extensions: Callable[[List[str]], object],
) -> Tuple[str, object]:
    """Validate a 101 response; return ``(protocol, negotiated_extension)``.

    ``accept_extensions`` gets every ``Sec-WebSocket-Extensions`` value and returns the
    negotiated extension (or ``None``); it raises ``HandshakeError`` for anything not offered.
    """

    def fail(message: str) -> HandshakeError:
        return HandshakeError(
            message, status=response.status, headers=response.headers, body=b""
        )

    if response.status != 101:
        body = response.leftover[:MAX_BODY]
        return _refused(response, body)
    if "websocket" not in _tokens(response.get_all("Upgrade")):
        raise fail("the response's Upgrade header is missing or is not 'websocket'")
    if "upgrade" not in _tokens(response.get_all("Connection")):
        raise fail("the response's Connection header does not contain 'Upgrade'")
    accepts = response.get_all("Sec-WebSocket-Accept")
    if len(accepts) != 1 or accepts[0] != accept_key(key):
        raise fail("Sec-WebSocket-Accept does not match the key sent")
    selected = response.get_all("Sec-WebSocket-Protocol")
    if len(selected) > 1 or (selected and "," in selected[0]):
        raise fail("the server selected more than one subprotocol")
    protocol = selected[0] if selected else ""
    if protocol and protocol not in protocols:
        raise fail(f"the server selected subprotocol {protocol!r}, which was not offered")
    if protocols and not protocol:
        raise fail("the server selected no subprotocol although some were offered")
    try:
        extension = accept_extensions(response.get_all("Sec-WebSocket-Extensions"))
    except HandshakeError as error:
        if error.status is None:  # like every other failed 101: say what the server sent
            error.status, error.headers = response.status, list(response.headers)
        raise
    return protocol, extension


def _refused(response: Response, body: bytes) -> "Tuple[str, object]":
    raise HandshakeError(
        f"server rejected the WebSocket connection: HTTP {response.status}"
        + (f" {response.reason}" if response.reason else ""),
        status=response.status,
        headers=response.headers,
        body=body,
    )


def content_length(response: Response) -> Optional[int]:
    """The response's Content-Length, or ``None`` when absent or malformed."""
    value = response.get("Content-Length")
    if value is None:
        return None
    # ASCII digits only (str.isdigit also takes "²", which int() refuses), and few enough
    # for int() (it refuses over 4300 digits); a longer one is no limit below MAX_BODY anyway.
    match = _CONTENT_LENGTH.fullmatch(value.strip())
    return int(match.group()) if match else None
