"""WebSocket URL parsing for the ``WebSocket`` constructor.

Follows the WHATWG WebSockets standard's "get a URL record" steps on top of the WHATWG URL
standard's parser, restricted to what can reach a WebSocket: the special schemes ws, wss, http
and https. There is no base URL, so relative URLs are a ``DOMSyntaxError`` (in a browser they
would resolve against the document).

Deliberate simplifications, all in corner cases:

* Internationalized host names go through Python's ``encodings.idna`` (IDNA 2003 with
  nameprep), not UTS #46, so a few names map differently (``ß`` becomes ``ss``) and labels that
  DNS rejects (empty or longer than 63 characters) are an error when the host is not ASCII.
  ASCII hosts are only lowercased, as the URL standard does.
* ``xn--`` labels are not checked for valid Punycode.

Paths use the current URL standard's path percent-encode set, which includes ``^``.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass
from typing import FrozenSet, Iterable, List, NoReturn, Optional, Tuple, Union
from urllib.parse import unquote

from .errors import DOMSyntaxError
from .text import to_usv

__all__ = ["WebSocketURL", "parse_ws_url", "validate_protocols"]

_DEFAULT_PORTS = {"ws": 80, "wss": 443}
_SCHEMES = {"ws": "ws", "wss": "wss", "http": "ws", "https": "wss"}

_C0_CONTROL_OR_SPACE = "".join(map(chr, range(0x21)))
_REMOVE_TAB_NEWLINE = str.maketrans("", "", "\t\n\r")
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_AUTHORITY_END_RE = re.compile(r"[/\\?]")
_PORT_RE = re.compile(r"[0-9]*")
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

# The URL standard's percent-encode sets, as the printable ASCII characters they add to the
# C0 control percent-encode set (C0 controls and everything above U+007E).
_SPECIAL_QUERY_SET = frozenset(" \"#<>'")
_PATH_SET = frozenset(" \"#<>?^`{}")
_USERINFO_SET = _PATH_SET | frozenset("/:;=@[\\]|")

_FORBIDDEN_DOMAIN_CHARS = frozenset(" #%/:<>?@[\\]^|\x7f")
_IPV4_DIGITS = {8: frozenset("01234567"), 10: frozenset("0123456789"),
                16: frozenset("0123456789abcdefABCDEF")}


# ``[scheme:][//]user:password@`` at the start of a URL as given: group 1 is what precedes the
# password. Greedy up to the last "@" before the path, as the parser splits the authority, so
# an unescaped "@" in a password is masked too; without a scheme (``user:pw@host``) the first
# ``name:`` is taken as the user.
_PASSWORD_AS_GIVEN = re.compile(
    r"^([\x00-\x20]*(?:[A-Za-z][A-Za-z0-9+.\-]*:)?[/\\]*[^/\\?#@:]*):[^/\\?#]*@"
)


def _fail(url: str, reason: str) -> NoReturn:
    """Raise ``DOMSyntaxError`` quoting ``url`` with any password masked (``user:***@``)."""
    shown = _PASSWORD_AS_GIVEN.sub(r"\1:***@", url)
    raise DOMSyntaxError(f"invalid WebSocket URL {shown!r}: {reason}")


def _percent_encode(text: str, encode_set: FrozenSet[str]) -> str:
    """Percent-encode (as UTF-8) the characters of ``text`` in ``encode_set`` or outside ASCII."""
    out: List[str] = []
    for char in text:
        if char < " " or char > "~" or char in encode_set:
            out.extend(f"%{byte:02X}" for byte in char.encode("utf-8"))
        else:
            out.append(char)
    return "".join(out)


def _ipv4_number(text: str) -> Optional[int]:
    """The URL standard's IPv4 number parser: decimal, ``0x`` hex or leading-zero octal."""
    if not text:
        return None
    radix = 10
    if text[:2] in ("0x", "0X"):
        text, radix = text[2:], 16
    elif len(text) > 1 and text[0] == "0":
        text, radix = text[1:], 8
    if not text:
        return 0
    if not set(text) <= _IPV4_DIGITS[radix]:
        return None
    if radix == 10 and len(text) > 20:
        # Out of range anyway; int() refuses decimal strings over 4300 digits (Python 3.11+).
        return 1 << 64
    return int(text, radix)


def _ipv4_parts(domain: str) -> List[str]:
    parts = domain.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    return parts


def _ends_in_a_number(domain: str) -> bool:
    """The URL standard's test for hosts that must be parsed as IPv4 (``1.2.3.4``, ``0x7f.1``)."""
    last = _ipv4_parts(domain)[-1]
    return (last != "" and set(last) <= _IPV4_DIGITS[10]) or _ipv4_number(last) is not None


def _parse_ipv4(url: str, domain: str) -> str:
    numbers = []
    for part in _ipv4_parts(domain):
        number = _ipv4_number(part)
        if number is None:
            _fail(url, f"invalid IPv4 address {domain!r}")
        numbers.append(number)
    if len(numbers) > 4:
        _fail(url, f"invalid IPv4 address {domain!r}")
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        _fail(url, f"IPv4 address {domain!r} out of range")
    value = last
    for i, n in enumerate(head):
        value += n << (8 * (3 - i))
    return str(ipaddress.IPv4Address(value))


def _serialize_ipv6(value: int) -> str:
    """The URL standard's IPv6 serializer: lowercase hex, longest run of 2+ zero pieces as ``::``.

    (``ipaddress`` is not used for this because Python 3.13 prints IPv4-mapped addresses
    in dotted form.)
    """
    pieces = [(value >> (16 * (7 - i))) & 0xFFFF for i in range(8)]
    best_start, best_len, i = -1, 1, 0
    while i < 8:
        if pieces[i]:
            i += 1
            continue
        j = i
        while j < 8 and not pieces[j]:
            j += 1
        if j - i > best_len:
            best_start, best_len = i, j - i
        i = j
    hexes = [format(piece, "x") for piece in pieces]
    if best_start < 0:
        return ":".join(hexes)
    return ":".join(hexes[:best_start]) + "::" + ":".join(hexes[best_start + best_len :])


def _parse_host(url: str, text: str) -> str:
    """Parse a special URL's host; return its serialization (punycode, ``[v6]``, dotted v4)."""
    if text.startswith("["):
        inner = text[1:-1]
        if not text.endswith("]") or "%" in inner:  # no zone identifiers in URLs
            _fail(url, f"invalid IPv6 address {text!r}")
        try:
            return f"[{_serialize_ipv6(int(ipaddress.IPv6Address(inner)))}]"
        except ValueError:
            _fail(url, f"invalid IPv6 address {text!r}")
    domain = unquote(text, encoding="utf-8", errors="replace")
    if domain.isascii():
        domain = domain.lower()
    else:
        try:
            domain = domain.encode("idna").decode("ascii").lower()
        except UnicodeError as exc:
            _fail(url, f"invalid international domain name {domain!r} ({exc})")
    if not domain:
        _fail(url, "missing host")
    bad = [c for c in domain if c < " " or c in _FORBIDDEN_DOMAIN_CHARS]
    if bad:
        _fail(url, f"character {bad[0]!r} is not allowed in a host name")
    if _ends_in_a_number(domain):
        return _parse_ipv4(url, domain)
    return domain


def _split_host_port(hostport: str) -> Tuple[str, Optional[str]]:
    """Split at the first ``:`` outside ``[...]``; the port is ``None`` if there is no ``:``."""
    inside_brackets = False
    for i, char in enumerate(hostport):
        if char == "[":
            inside_brackets = True
        elif char == "]":
            inside_brackets = False
        elif char == ":" and not inside_brackets:
            return hostport[:i], hostport[i + 1 :]
    return hostport, None


def _parse_path(text: str) -> str:
    """Percent-encode a special URL's path and resolve its ``.`` and ``..`` segments."""
    text = text.replace("\\", "/")
    segments = (text[1:] if text.startswith("/") else text).split("/")
    out: List[str] = []
    for i, raw in enumerate(segments):
        segment = _percent_encode(raw, _PATH_SET)
        is_last = i == len(segments) - 1
        lowered = segment.lower()
        if lowered in ("..", ".%2e", "%2e.", "%2e%2e"):
            if out:
                out.pop()
            if is_last:
                out.append("")
        elif lowered in (".", "%2e"):
            if is_last:
                out.append("")
        else:
            out.append(segment)
    return "/" + "/".join(out)


@dataclass(frozen=True, repr=False)
class WebSocketURL:
    """A parsed WebSocket URL. Build one with ``parse_ws_url``.

    ``host`` is the serialized host (punycode, IPv6 in brackets), ``port`` the actual port
    (the default one included), ``path`` always starts with ``/``, ``query`` is ``None`` when
    the URL has no ``?``. ``username``/``password`` are kept percent-encoded, as in the URL.
    """

    scheme: str
    host: str
    port: int
    path: str = "/"
    query: Optional[str] = None
    username: str = ""
    password: str = ""

    @property
    def secure(self) -> bool:
        """True for ``wss`` (TLS)."""
        return self.scheme == "wss"

    @property
    def default_port(self) -> bool:
        """True if ``port`` is the scheme's default (80 for ws, 443 for wss)."""
        return self.port == _DEFAULT_PORTS[self.scheme]

    @property
    def hostname(self) -> str:
        """The host to connect to and to send as TLS SNI: ``host`` without IPv6 brackets."""
        return self.host[1:-1] if self.host.startswith("[") else self.host

    @property
    def host_header(self) -> str:
        """The ``Host`` request header value: ``host`` plus ``:port`` when not the default."""
        return self.host if self.default_port else f"{self.host}:{self.port}"

    @property
    def origin(self) -> str:
        """The serialized origin, e.g. ``ws://example.com:8080`` (``MessageEvent.origin``)."""
        return f"{self.scheme}://{self.host_header}"

    @property
    def resource_name(self) -> str:
        """Path and query, for the request line (``/chat?room=1``)."""
        return self.path if self.query is None else f"{self.path}?{self.query}"

    @property
    def decoded_username(self) -> str:
        """``username`` percent-decoded (UTF-8), e.g. for HTTP Basic authentication."""
        return unquote(self.username, errors="replace")

    @property
    def decoded_password(self) -> str:
        """``password`` percent-decoded (UTF-8), e.g. for HTTP Basic authentication."""
        return unquote(self.password, errors="replace")

    def _serialize(self, password: str) -> str:
        userinfo = ""
        if self.username or password:
            userinfo = self.username + (f":{password}" if password else "") + "@"
        return f"{self.scheme}://{userinfo}{self.host_header}{self.resource_name}"

    @property
    def href(self) -> str:
        """The full serialization (``WebSocket.url``), credentials included."""
        return self._serialize(self.password)

    @property
    def redacted(self) -> str:
        """``href`` with the password replaced by ``***``, for logs and error messages."""
        return self._serialize("***" if self.password else "")

    def __str__(self) -> str:
        return self.href

    def __repr__(self) -> str:
        return f"WebSocketURL({self.redacted!r})"


def parse_ws_url(url: str) -> WebSocketURL:
    """Parse ``url`` as the ``WebSocket`` constructor does.

    Raises ``TypeError`` if ``url`` is not a ``str`` and ``DOMSyntaxError`` if it does not
    parse, has a scheme other than ws, wss, http or https, has a fragment (even an empty
    ``#``), lacks a host or has a bad port. ``http`` becomes ``ws``, ``https`` becomes ``wss``.
    """
    if not isinstance(url, str):
        raise TypeError(f"url must be a str, not {url.__class__.__name__}")
    return _parse(url)


@functools.lru_cache(maxsize=256)
def _parse(url: str) -> WebSocketURL:
    """:func:`parse_ws_url` for a ``str``. Cached: the result is immutable, and a program that
    reconnects, or opens many sockets to one server, parses the same few URLs again and again
    (parsing costs more than the rest of the constructor together)."""
    text = to_usv(url).strip(_C0_CONTROL_OR_SPACE).translate(_REMOVE_TAB_NEWLINE)
    match = _SCHEME_RE.match(text)
    if not match:
        _fail(url, "not an absolute URL (expected ws://, wss://, http:// or https://)")
    scheme = match.group(1).lower()
    if scheme not in _SCHEMES:
        _fail(url, f"scheme {scheme!r} is not ws, wss, http or https")
    scheme = _SCHEMES[scheme]
    rest = text[match.end() :]
    if "#" in rest:
        _fail(url, "WebSocket URLs must not have a fragment")

    stripped = rest.lstrip("/\\")
    if len(rest) - len(stripped) > 2:
        # The URL standard skips any number of slashes here (``ws:///path`` has host "path",
        # with a validation error); that is nearly always an empty host spliced into a URL,
        # so it fails here instead of connecting somewhere unintended.
        _fail(url, "missing host (three slashes after the scheme)")
    rest = stripped
    end = _AUTHORITY_END_RE.search(rest)
    split = end.start() if end else len(rest)
    authority, rest = rest[:split], rest[split:]
    userinfo, _, hostport = authority.rpartition("@")
    username, _, password = userinfo.partition(":")
    host_text, port_text = _split_host_port(hostport)
    if not host_text:
        _fail(url, "missing host")
    host = _parse_host(url, host_text)

    port = _DEFAULT_PORTS[scheme]
    if port_text:
        if not _PORT_RE.fullmatch(port_text):
            _fail(url, f"invalid port {port_text!r}")
        # Leading zeros are allowed (":0080" is 80); without them more than 5 digits is out
        # of range, and int() would refuse over 4300 digits (Python 3.11+).
        significant = port_text.lstrip("0")
        port = int(significant or "0") if len(significant) <= 5 else 65536
        if port > 65535:
            _fail(url, f"port {port} out of range")

    path_text, has_query, query = rest.partition("?")
    return WebSocketURL(
        scheme=scheme,
        host=host,
        port=port,
        path=_parse_path(path_text),
        query=_percent_encode(query, _SPECIAL_QUERY_SET) if has_query else None,
        username=_percent_encode(username, _USERINFO_SET),
        password=_percent_encode(password, _USERINFO_SET),
    )


def validate_protocols(protocols: Union[None, str, Iterable[str]]) -> List[str]:
    """Check the constructor's ``protocols`` argument; return them as a list.

    Accepts ``None`` (no protocols), one ``str`` or an iterable of ``str`` (``TypeError``
    otherwise). Raises ``DOMSyntaxError`` for an empty string, a value that is not an
    RFC 7230 token, or a duplicate (compared case-insensitively).
    """
    if protocols is None:
        return []
    if isinstance(protocols, str):
        items: List[str] = [protocols]
    elif isinstance(protocols, (bytes, bytearray, memoryview)):
        raise TypeError("protocols must be a str or an iterable of str, not bytes")
    else:
        try:
            items = list(protocols)
        except TypeError:
            raise TypeError(
                "protocols must be a str or an iterable of str, "
                f"not {protocols.__class__.__name__}"
            ) from None
    seen = set()
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"each protocol must be a str, not {item.__class__.__name__}")
        if not item:
            raise DOMSyntaxError("a WebSocket protocol must not be empty")
        if not _TOKEN_RE.fullmatch(item):
            raise DOMSyntaxError(f"invalid WebSocket protocol {item!r}: not an HTTP token")
        key = item.lower()
        if key in seen:
            raise DOMSyntaxError(f"duplicate WebSocket protocol {item!r}")
        seen.add(key)
    return items
