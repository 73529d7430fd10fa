"""The opening handshake (RFC 6455 section 4), sans-I/O, for both ends of a connection.

Client side: :class:`ClientHandshake` builds the request and takes the response's bytes as they
arrive; it reports :class:`Accepted` (a valid 101: subprotocol, negotiated extension, headers,
and the bytes behind the head, which belong to the WebSocket connection) or :class:`Refused`
(any other status, with its body read up to a bound). The response parser is bounded (head
size, line length, header count) so that a server that answers with megabytes of headers gets
a :class:`HandshakeError`, not a memory blow-up.

Server side: :class:`ServerHandshake` takes the request's bytes, parses the head into a
:class:`Request` (bounded by ``max_request_size``), and :func:`check_request` says what makes it
invalid; :func:`accept_headers` and :func:`response_bytes` build the answer.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import http
import os
import re
from typing import Callable, Iterable, List, NamedTuple, Optional, Sequence, Tuple, Union

from ..errors import ConnectionFailed, HandshakeError

__all__ = [
    "GUID",
    "accept_key",
    "new_key",
    "Response",
    "ResponseParser",
    "build_request",
    "check_response",
    "check_header_field",
    "content_length",
    "header_values",
    "PROTOCOL_OWNED_HEADERS",
    "MAX_HEAD_SIZE",
    "MAX_BODY",
    "Accepted",
    "Refused",
    "ClientHandshake",
    "Request",
    "RequestRejected",
    "ServerHandshake",
    "check_request",
    "accept_headers",
    "response_bytes",
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


def header_values(headers: Iterable[Tuple[str, str]], name: str) -> List[str]:
    """Every value of header ``name`` (case-insensitive), in order."""
    lname = name.lower()
    return [value for key, value in headers if key.lower() == lname]


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
        return header_values(self.headers, name)

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
        raise Refused(response._replace(leftover=response.leftover[:MAX_BODY])).error()
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


def content_length(response: Response) -> Optional[int]:
    """The response's Content-Length, or ``None`` when absent or malformed."""
    value = response.get("Content-Length")
    if value is None:
        return None
    # ASCII digits only (str.isdigit also takes "²", which int() refuses), and few enough
    # for int() (it refuses over 4300 digits); a longer one is no limit below MAX_BODY anyway.
    match = _CONTENT_LENGTH.fullmatch(value.strip())
    return int(match.group()) if match else None


# -- the client's side, as one object -----------------------------------------------------


class Accepted(NamedTuple):
    """The server accepted the connection with a valid 101."""

    protocol: str  #: the selected subprotocol, ``""`` for none
    extension: object  #: what ``accept_extensions`` returned (the codec), or ``None``
    response: Response  #: status, headers; ``leftover`` holds the first WebSocket bytes

    @property
    def leftover(self) -> bytes:
        """Bytes that came behind the response head: the start of the WebSocket stream."""
        return self.response.leftover


class Refused(NamedTuple):
    """The server answered with another status than 101; ``response.leftover`` is its body
    (at most ``MAX_BODY`` bytes, and no more than its ``Content-Length``)."""

    response: Response

    def error(self) -> HandshakeError:
        """The :class:`HandshakeError` that reports this refusal (status, headers, body)."""
        response = self.response
        location = response.get("Location") if 300 <= response.status < 400 else None
        return HandshakeError(
            f"server rejected the WebSocket connection: HTTP {response.status}"
            + (f" {response.reason}" if response.reason else "")
            + (
                f" redirecting to {location} (the standard fails redirects; "
                "pass follow_redirects=True to follow them)"
                if location
                else ""
            ),
            status=response.status,
            headers=response.headers,
            body=response.leftover,
        )


HandshakeOutcome = Union[Accepted, Refused]


class ClientHandshake:
    """The client's opening handshake: request bytes out, response bytes in, one outcome.

    Send :attr:`request`, then feed what the server answers to :meth:`receive_data` until it
    returns an outcome; call :meth:`receive_eof` when the stream ends (or fails) first. An
    invalid 101 or a malformed head raises :class:`HandshakeError`.

    :param host: the ``Host`` header (unless ``headers`` has one).
    :param resource: path and query of the request line.
    :param protocols: the subprotocols offered, by preference.
    :param extension_offer: the ``Sec-WebSocket-Extensions`` value, or ``None``.
    :param headers: further request headers (checked by the caller).
    :param accept_extensions: given every ``Sec-WebSocket-Extensions`` value of the response,
        returns the negotiated extension (or ``None``); raises ``HandshakeError`` to refuse.
    :param key: the ``Sec-WebSocket-Key``; a fresh random one by default (tests fix it).
    :param max_body: how much of a refusal's body is kept.
    """

    def __init__(
        self,
        *,
        host: str,
        resource: str,
        protocols: Sequence[str] = (),
        extension_offer: Optional[str] = None,
        headers: Iterable[Tuple[str, str]] = (),
        accept_extensions: Callable[[List[str]], object] = lambda values: None,
        key: Optional[str] = None,
        max_body: int = MAX_BODY,
    ) -> None:
        self.key = key if key is not None else new_key()
        self.protocols = list(protocols)
        self.request = build_request(
            host=host,
            resource=resource,
            key=self.key,
            protocols=self.protocols,
            extensions=extension_offer,
            headers=headers,
        )
        self._accept_extensions = accept_extensions
        self._max_body = max_body
        self._parser = ResponseParser()
        self._refusal: Optional[Response] = None  # a non-101 head whose body is still coming
        self._body = bytearray()
        self._body_limit = 0
        self._done = False

    @property
    def reading_body(self) -> bool:
        """Whether the head was a refusal whose body is still being read."""
        return self._refusal is not None and not self._done

    def receive_data(self, data: bytes) -> Optional[HandshakeOutcome]:
        """Feed response bytes; the outcome once known, else ``None`` (more bytes needed)."""
        if self._done:
            raise RuntimeError("the opening handshake is already over")
        if self._refusal is not None:
            self._body += data
            return self._refused() if len(self._body) >= self._body_limit else None
        response = self._parser.feed(data)
        if response is None:
            return None
        if response.status == 101:
            self._done = True
            protocol, extension = check_response(
                response,
                key=self.key,
                protocols=self.protocols,
                accept_extensions=self._accept_extensions,
            )
            return Accepted(protocol, extension, response)
        wanted = content_length(response)
        self._body_limit = self._max_body if wanted is None else min(wanted, self._max_body)
        self._refusal = response
        self._body += response.leftover
        return self._refused() if len(self._body) >= self._body_limit else None

    def receive_eof(self) -> Refused:
        """The stream ended (or broke): a refusal with the body so far, if its head came;
        ``ConnectionFailed`` otherwise."""
        if self._refusal is None:
            self._done = True
            raise ConnectionFailed("the server closed the connection during the opening handshake")
        return self._refused()

    def _refused(self) -> Refused:
        self._done = True
        assert self._refusal is not None
        body = bytes(self._body[: self._body_limit])
        return Refused(self._refusal._replace(leftover=body))


# -- the server's side ---------------------------------------------------------------------


@dataclasses.dataclass
class Request:
    """A client's opening handshake request, as received.

    ``method``, ``path`` and ``version`` come from the request line, ``headers`` is the list
    of ``(name, value)`` pairs in order, ``raw`` the bytes of the whole head.
    """

    method: str
    path: str
    version: str
    headers: List[Tuple[str, str]]
    raw: bytes = b""

    @classmethod
    def parse(cls, head: bytes) -> "Request":
        """Parse a request head (ending with an empty line); ``ValueError`` if malformed."""
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            raise ValueError(f"malformed request line {lines[0]!r}")
        headers = []
        for line in lines[1:]:
            if not line:
                continue
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                raise ValueError(f"malformed header line {line!r}")
            headers.append((name, value.strip()))
        return cls(parts[0], parts[1], parts[2], headers, head)

    def header(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """All values of header ``name`` (case-insensitive) joined by ``", "``, or ``default``."""
        values = header_values(self.headers, name)
        return ", ".join(values) if values else default

    def header_list(self, name: str) -> List[str]:
        """Each value of header ``name`` as a separate string, in order."""
        return header_values(self.headers, name)

    def tokens(self, name: str) -> List[str]:
        """The comma-separated items of header ``name``, stripped, case preserved."""
        return [item.strip() for value in self.header_list(name) for item in value.split(",")
                if item.strip()]


def check_request(request: Request) -> Optional[str]:
    """Why ``request`` is not a valid RFC 6455 opening handshake, or ``None`` if it is."""
    if request.method != "GET":
        return f"method {request.method} is not GET"
    if request.version != "HTTP/1.1":
        return f"{request.version} is not HTTP/1.1"
    if "websocket" not in (t.lower() for t in request.tokens("Upgrade")):
        return "Upgrade: websocket is missing"
    if "upgrade" not in (t.lower() for t in request.tokens("Connection")):
        return "Connection: Upgrade is missing"
    keys = request.header_list("Sec-WebSocket-Key")
    try:
        valid_key = len(keys) == 1 and len(base64.b64decode(keys[0], validate=True)) == 16
    except binascii.Error:
        valid_key = False
    if not valid_key:
        return "Sec-WebSocket-Key is missing or invalid"
    if request.header_list("Sec-WebSocket-Version") != ["13"]:
        return "Sec-WebSocket-Version is not 13"
    return None


class RequestRejected(NamedTuple):
    """A request head the server cannot even parse: answer ``status`` with ``body``."""

    status: int  #: 431 for a head over the size limit, 400 for a malformed one
    body: bytes


class ServerHandshake:
    """The server's side: request bytes in until the head is complete.

    :meth:`receive_data` returns the parsed :class:`Request` (then :attr:`leftover` holds the
    bytes behind the head: the client's first frames), a :class:`RequestRejected` for a head
    that is too large or malformed, or ``None`` while more bytes are needed. Whether a parsed
    request is a valid opening handshake is :func:`check_request`'s question.

    :param max_request_size: the largest request head accepted, in bytes.
    """

    def __init__(self, max_request_size: int = MAX_HEAD_SIZE) -> None:
        self.max_request_size = max_request_size
        self.leftover = b""
        self._buffer = bytearray()

    def receive_data(self, data: bytes) -> Optional[Union[Request, RequestRejected]]:
        """Feed request bytes; the request (or why it is rejected) once known."""
        buf = self._buffer
        start = max(0, len(buf) - 3)
        buf += data
        end = buf.find(b"\r\n\r\n", start)
        limit = self.max_request_size
        if end < 0:
            if len(buf) > limit:
                return RequestRejected(431, b"request head too large")
            return None
        if end + 4 > limit:
            return RequestRejected(431, b"request head too large")
        self.leftover = bytes(buf[end + 4 :])
        head = bytes(buf[: end + 4])
        buf.clear()
        try:
            return Request.parse(head)
        except ValueError as exc:
            return RequestRejected(400, str(exc).encode())


def accept_headers(
    request: Request, *, protocol: Optional[str] = None, extensions: Optional[str] = None
) -> List[Tuple[str, str]]:
    """The headers of a 101 that accepts ``request`` (with the right ``Sec-WebSocket-Accept``);
    ``protocol``/``extensions`` add ``Sec-WebSocket-Protocol``/``-Extensions``."""
    key = request.header("Sec-WebSocket-Key") or ""
    headers = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", accept_key(key)),
    ]
    if protocol is not None:
        headers.append(("Sec-WebSocket-Protocol", protocol))
    if extensions is not None:
        headers.append(("Sec-WebSocket-Extensions", extensions))
    return headers


def response_bytes(
    status: int, reason: Optional[str], headers: Iterable[Tuple[str, str]], body: bytes = b""
) -> bytes:
    """An HTTP/1.1 response: status line (``reason`` ``None``: the standard phrase), headers
    as given, then ``body``; a ``Content-Length`` is added when a status with a body lacks one."""
    headers = list(headers)
    if reason is None:
        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = ""
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{name}: {value}" for name, value in headers]
    no_body = status < 200 or status in (204, 304)
    if not no_body and not header_values(headers, "Content-Length"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
