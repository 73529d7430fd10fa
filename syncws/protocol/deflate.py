"""permessage-deflate (RFC 7692): negotiation for both roles and a bounded, sans-I/O codec.

One :class:`PerMessageDeflate` per connection compresses whole outgoing messages and inflates
incoming ones frame by frame. It touches no socket, thread or clock; only the stdlib ``zlib``.

Negotiation. :func:`client_offer` writes the request header (by default exactly the browsers'
``permessage-deflate; client_max_window_bits``); :func:`client_accept` checks the server's
answer strictly and raises :class:`~syncws.errors.HandshakeError`, so a bad answer fails the
connection before ``open`` (RFC 6455 4.1 and RFC 7692 5: the client must fail the connection;
there is no open connection to send a 1010 Close on yet). The rules, from RFC 7692 7.1:

- ``server_no_context_takeover`` may appear even if not offered, and *must* appear if offered
  (accepting that offer is defined as echoing it);
- ``client_no_context_takeover`` may always appear; once offered, we keep to it even if the
  server does not echo it (the offer is a promise);
- ``server_max_window_bits`` may appear even if not offered, and must appear with a value no
  larger than ours if offered;
- ``client_max_window_bits`` may appear only if offered, with a value no larger than the one
  offered (if any); when absent we use the value we offered, or 15;
- values are ``8``..``15`` without leading zeros, as a token or a quoted-string; no parameter
  twice, no unknown parameter, no value on the two flags, one permessage-deflate element at most.

An offer that asks the server for something (its window, no context takeover) is followed by a
fallback offer without those requests, and an answer must fit one of the two (see
:func:`client_offer`): servers that ignore such requests still get compression.

The 8-bit window. zlib refuses ``wbits=-8`` for raw deflate *compression* since 1.2.9 (it used
to silently use 9), so when 8 is agreed for our direction we compress with 9. That is safe:
zlib's deflate never emits a distance longer than ``window - 262`` (``MAX_DIST``), i.e. 250
bytes with a 512-byte window, so every back-reference fits the 256-byte window the peer agreed
to keep. ``tests/protocol/test_deflate.py`` checks this against an 8-bit inflater fed one byte at a time
(whole-buffer inflation does not notice a too-far distance, so a plain round trip would prove
nothing). Chromium does the same; the ``websockets`` package instead refuses to agree to 8.
Inflating with an 8-bit window is supported by zlib and used as is.

Corrupt compressed data raises :class:`~syncws.errors.ProtocolError` with close code 1002.
RFC 7692 names no code; 1007 (RFC 6455 7.4.1) is for data inconsistent with the *message type*
(bad UTF-8 in text), while undecodable DEFLATE data breaks the negotiated framing, the same
family as a bad RSV bit. The websockets package also fails with 1002.

A message whose inflated size would pass ``max_size`` raises
:class:`~syncws.errors.MessageTooBig` (1009) having inflated at most ``max_size + 1`` bytes, so a
decompression bomb costs memory bounded by the limit, not by the bomb.

A DEFLATE block with BFINAL set (RFC 7692 7.2.3.4 lets a sender end its data that way; its
example follows the block with 0x00, which the appended tail completes into an empty stored
block) ends the zlib stream: inflation goes on with a fresh inflater, which drops the window, as
Chromium does. When nothing followed the final block, the tail is not fed at all.

Defaults, measured with CPython 3.11 / zlib 1.2.13 on JSON-like chat events (2,000 messages
per size; ``SYNCWS_BENCH=1 pytest tests/protocol/test_deflate.py -k throughput -s`` reruns the codec
throughput part):

- ``compress_level=3``: at 1 KiB per message with context takeover, level 1/3/6 give
  0.126/0.109/0.092 of the size at 149/143/80 MB/s; at 64 KiB 0.097/0.086/0.073 at
  439/334/137 MB/s. Level 3 is the last of zlib's fast levels: nearly level 1's speed, most of
  level 6's ratio.
- ``threshold=64``: without context takeover deflate does not pay below about 48 bytes of JSON
  (compressed/raw = 1.12 at 16 B, 1.03 at 32 B, 0.92 at 64 B, 0.78 at 128 B). With context
  takeover even short messages shrink a lot (0.1-0.25), but what is saved under 64 bytes is
  small next to the 60-90 bytes of TCP/IP/TLS/WebSocket headers each such message costs anyway,
  while each compress + inflate costs a few microseconds on both ends. Set ``threshold=0`` when
  bytes matter more than CPU.
- ``mem_level=8``: zlib's default; 9 did not help and 5 lost little on the same data.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, replace
from typing import Dict, Iterable, List, Mapping, NamedTuple, Optional, Tuple, Union

from ..errors import HandshakeError, MessageTooBig, ProtocolError

__all__ = [
    "NAME",
    "PARAMETER_NAMES",
    "DeflateOptions",
    "DeflateParameters",
    "PerMessageDeflate",
    "options_from_user",
    "client_offer",
    "client_accept",
    "server_negotiate",
    "server_response",
    "parse_extensions",
]

NAME = "permessage-deflate"
SERVER_NO_CONTEXT_TAKEOVER = "server_no_context_takeover"
CLIENT_NO_CONTEXT_TAKEOVER = "client_no_context_takeover"
SERVER_MAX_WINDOW_BITS = "server_max_window_bits"
CLIENT_MAX_WINDOW_BITS = "client_max_window_bits"
_FLAGS = (SERVER_NO_CONTEXT_TAKEOVER, CLIENT_NO_CONTEXT_TAKEOVER)
_WINDOWS = (SERVER_MAX_WINDOW_BITS, CLIENT_MAX_WINDOW_BITS)
PARAMETER_NAMES = _FLAGS + _WINDOWS

DEFAULT_THRESHOLD = 64
DEFAULT_COMPRESS_LEVEL = 3
DEFAULT_MEM_LEVEL = 8

# What a sync (or full) flush ends with; RFC 7692 7.2.1 strips it, 7.2.2 puts it back.
_TAIL = b"\x00\x00\xff\xff"

# A parameter value: True for a parameter without a value, else the window bits.
ParamValue = Union[bool, int]
Extension = Tuple[str, List[Tuple[str, Optional[str]]]]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int(name: str, value: object, low: int, high: Optional[int]) -> None:
    if not _is_int(value):
        raise TypeError(f"{name} must be an int, not {value!r}")
    if value < low or (high is not None and value > high):  # type: ignore[operator]
        bound = f"from {low} to {high}" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be {bound}, not {value}")


def _check_bits(name: str, value: object, *, allow_true: bool = False) -> None:
    """Raise unless ``value`` is None, an int from 8 to 15 (or a bool where True means bare)."""
    if value is not None and not (allow_true and isinstance(value, bool)):
        _check_int(name, value, 8, 15)


@dataclass(frozen=True)
class DeflateOptions:
    """What one end wants from permessage-deflate, plus how hard it compresses.

    For a client these are the offer's parameters; for the server role (syncws's test server)
    the same fields say what it insists on: a flag set is always answered, ``*_max_window_bits``
    caps the window. ``client_max_window_bits=True`` offers the bare parameter (browsers do:
    "I can use a smaller window if you ask"); an int offers that value; None/False omits it.

    Attributes:
        server_no_context_takeover: ask the server to compress each message on its own
            (its compressor then keeps no memory between messages).
        client_no_context_takeover: promise to compress each message on its own.
        server_max_window_bits: ask the server for a window of at most 2**N bytes (8-15);
            ``None`` leaves the parameter out.
        client_max_window_bits: ``True``: the bare parameter (the server may choose our
            window); 8-15: our window is at most 2**N bytes; ``None``: left out.
        threshold: messages shorter than this many bytes are sent uncompressed (default 64).
        compress_level: zlib compression level, -1 to 9 (default 3).
        mem_level: zlib memory level, 1 to 9 (default 8); lower uses less memory per
            connection.

    Bad values raise ``TypeError`` or ``ValueError`` when the object is created.
    """

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: Optional[int] = None
    client_max_window_bits: Optional[Union[int, bool]] = True
    threshold: int = DEFAULT_THRESHOLD
    compress_level: int = DEFAULT_COMPRESS_LEVEL
    mem_level: int = DEFAULT_MEM_LEVEL

    def __post_init__(self) -> None:
        """Check every field (``TypeError``/``ValueError`` for a bad one)."""
        for name in _FLAGS:
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, not {getattr(self, name)!r}")
        _check_bits(SERVER_MAX_WINDOW_BITS, self.server_max_window_bits)
        _check_bits(CLIENT_MAX_WINDOW_BITS, self.client_max_window_bits, allow_true=True)
        _check_int("threshold", self.threshold, 0, None)
        _check_int("compress_level", self.compress_level, -1, 9)  # -1: zlib's default (6)
        _check_int("mem_level", self.mem_level, 1, 9)


class DeflateParameters(NamedTuple):
    """The parameters in force after negotiation; window bits are always concrete (8-15)."""

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int = 15
    client_max_window_bits: int = 15


_USER_KEYS = frozenset(DeflateOptions.__dataclass_fields__)


def options_from_user(compression: object) -> Optional[DeflateOptions]:
    """Map the ``compression=`` argument of ``WebSocket`` to options, or None for "off".

    ``True`` is the browsers' offer, ``False``/``None`` turn compression off, a
    :class:`DeflateOptions` is used as is, and a mapping holds :class:`DeflateOptions` fields.
    """
    if compression is True:
        return DeflateOptions()
    if compression is None or compression is False:
        return None
    if isinstance(compression, DeflateOptions):
        return compression
    if isinstance(compression, Mapping):
        unknown = [key for key in compression if key not in _USER_KEYS]
        if unknown:
            raise TypeError(
                f"unknown compression option(s) {', '.join(map(repr, unknown))}; "
                f"expected some of {', '.join(sorted(_USER_KEYS))}"
            )
        return DeflateOptions(**compression)
    raise TypeError(
        "compression must be True, False, None, a dict or a DeflateOptions, "
        f"not {type(compression).__name__}"
    )


# --- Sec-WebSocket-Extensions syntax (RFC 6455 9.1 with RFC 7230's token and quoted-string) ---

_OWS = r"[ \t]*"
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = r'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"'
_SKIP_RE = re.compile(r"[ \t,]*")  # OWS and empty list elements, which RFC 7230 7 tolerates
_TOKEN_RE = re.compile(_TOKEN)
_PARAM_RE = re.compile(rf"{_OWS};{_OWS}({_TOKEN})(?:{_OWS}={_OWS}({_TOKEN}|{_QUOTED}))?")
_END_RE = re.compile(rf"{_OWS}(?:,|\Z)")
_UNESCAPE_RE = re.compile(r"\\(.)")
_BITS_RE = re.compile(r"(?:[89]|1[0-5])\Z")


def parse_extensions(header_values: Iterable[str]) -> List[Extension]:
    """Parse every ``Sec-WebSocket-Extensions`` value into ``(name, [(param, value)])``.

    Values may be tokens or quoted-strings (returned unquoted); a parameter without a value
    has ``None``. Raises ValueError on any syntax error: a header that cannot be read must not
    be half-understood.
    """
    result: List[Extension] = []
    for text in header_values:
        pos, end = 0, len(text)
        while True:
            pos = _SKIP_RE.match(text, pos).end()  # type: ignore[union-attr]
            if pos == end:
                break
            match = _TOKEN_RE.match(text, pos)
            if match is None:
                raise ValueError(f"expected an extension name at offset {pos} of {text!r}")
            name, pos = match.group(), match.end()
            params: List[Tuple[str, Optional[str]]] = []
            while (match := _PARAM_RE.match(text, pos)) is not None:
                value = match.group(2)
                if value is not None and value[0] == '"':
                    value = _UNESCAPE_RE.sub(r"\1", value[1:-1])
                params.append((match.group(1), value))
                pos = match.end()
            match = _END_RE.match(text, pos)
            if match is None:
                raise ValueError(f"unexpected text at offset {pos} of {text!r}")
            pos = match.end()
            result.append((name, params))
    return result


def _parse_parameters(
    params: List[Tuple[str, Optional[str]]], *, offer: bool
) -> Dict[str, ParamValue]:
    """Check one permessage-deflate element's parameters (RFC 7692 7.1) and return them.

    Raises ValueError on an unknown or repeated parameter, a value on a flag, or a missing or
    invalid window size. Only an offer may carry a bare ``client_max_window_bits``.
    """
    result: Dict[str, ParamValue] = {}
    for key, value in params:
        if key in result:
            raise ValueError(f"{key} appears more than once")
        if key in _FLAGS:
            if value is not None:
                raise ValueError(f"{key} must not have a value (got {value!r})")
            result[key] = True
        elif key in _WINDOWS:
            if value is None:
                if not (offer and key == CLIENT_MAX_WINDOW_BITS):
                    raise ValueError(f"{key} needs a value")
                result[key] = True
            elif _BITS_RE.match(value) is None:
                raise ValueError(f"{key}={value!r} is not an integer from 8 to 15")
            else:
                result[key] = int(value)
        else:
            raise ValueError(f"unknown parameter {key!r}")
    return result


def _format(params: Mapping[str, Optional[ParamValue]]) -> str:
    """The header element for ``params``: True means "no value", None/False "left out"."""
    parts = [NAME]
    for key, value in params.items():
        if value is True:
            parts.append(key)
        elif value is not None and value is not False:
            parts.append(f"{key}={value}")
    return "; ".join(parts)


# --- client role ---


def client_offer(options: DeflateOptions) -> str:
    """The ``Sec-WebSocket-Extensions`` request value offering ``options``.

    An offer that asks something of the server (``server_no_context_takeover`` or
    ``server_max_window_bits``) is followed by a fallback offer without those requests (RFC 7692
    5 lets a client send several, in order of preference). A server that accepts
    permessage-deflate but ignores such a request (gorilla/websocket answers every offer with
    the same two flags) then still negotiates compression: its answer fits the fallback, which
    :func:`client_accept` checks it against, instead of failing the tuned offer. The fallback
    keeps what the client promises about its own direction (``client_*``), which a server can
    always accept.
    """
    offers = [_offer_text(options)]
    fallback = _fallback(options)
    if fallback is not None:
        offers.append(_offer_text(fallback))
    return ", ".join(offers)


def _offer_text(options: DeflateOptions) -> str:
    return _format(
        {
            SERVER_NO_CONTEXT_TAKEOVER: options.server_no_context_takeover,
            CLIENT_NO_CONTEXT_TAKEOVER: options.client_no_context_takeover,
            SERVER_MAX_WINDOW_BITS: options.server_max_window_bits,
            CLIENT_MAX_WINDOW_BITS: options.client_max_window_bits,
        }
    )


def _fallback(options: DeflateOptions) -> Optional[DeflateOptions]:
    """``options`` without its requests to the server, or None if it makes none."""
    if not options.server_no_context_takeover and options.server_max_window_bits is None:
        return None
    return replace(
        options, server_no_context_takeover=False, server_max_window_bits=None
    )


def client_accept(
    header_values: List[str], options: Optional[DeflateOptions]
) -> Optional[PerMessageDeflate]:
    """Check every ``Sec-WebSocket-Extensions`` response value against what we offered.

    ``options`` is what was offered (None: nothing was). Returns the client-role codec, or None
    when the server accepted no extension. Raises :class:`HandshakeError` for any answer RFC
    6455/7692 tells the client to reject: syncws offers only permessage-deflate, so any other
    extension name is one that was not offered. An answer is accepted when it fits the tuned
    offer or, failing that, the fallback offer :func:`client_offer` sent after it.
    """
    try:
        elements = parse_extensions(header_values)
    except ValueError as exc:
        raise HandshakeError(f"unreadable Sec-WebSocket-Extensions: {exc}") from None
    if not elements:
        return None
    for name, _ in elements:
        if options is None or name != NAME:
            raise HandshakeError(f"the server accepted extension {name!r}, which was not offered")
    if len(elements) > 1:
        raise HandshakeError(f"the server accepted {NAME} more than once")
    try:
        params = _parse_parameters(elements[0][1], offer=False)
    except ValueError as exc:
        raise HandshakeError(f"invalid {NAME} response: {exc}") from None
    assert options is not None
    agreed = _agreement_with_any_offer(params, options)
    # ws.extensions shows the server's answer as it was sent (RFC 6455's "extensions in use").
    raw = ", ".join(part.strip() for value in header_values for part in value.split(",") if part.strip())
    return PerMessageDeflate("client", agreed, response_text=raw or _format(params), options=options)


def _agreement_with_any_offer(
    params: Mapping[str, ParamValue], options: DeflateOptions
) -> DeflateParameters:
    """The agreement with the tuned offer, else with its fallback; HandshakeError if neither."""
    try:
        return _client_agreement(params, options)
    except HandshakeError as tuned_error:
        fallback = _fallback(options)
        if fallback is None:
            raise
        try:
            return _client_agreement(params, fallback)
        except HandshakeError as fallback_error:
            raise HandshakeError(
                f"{tuned_error} (and for the fallback offer: {fallback_error})"
            ) from None


def _client_agreement(params: Mapping[str, ParamValue], options: DeflateOptions) -> DeflateParameters:
    """Combine the server's answer with our offer (RFC 7692 7.1); HandshakeError on a mismatch."""
    if options.server_no_context_takeover and SERVER_NO_CONTEXT_TAKEOVER not in params:
        raise HandshakeError(f"the server did not accept the offered {SERVER_NO_CONTEXT_TAKEOVER}")

    server_bits = params.get(SERVER_MAX_WINDOW_BITS)
    if options.server_max_window_bits is not None:
        if server_bits is None:
            raise HandshakeError(
                f"the server did not accept the offered "
                f"{SERVER_MAX_WINDOW_BITS}={options.server_max_window_bits}"
            )
        if server_bits > options.server_max_window_bits:
            raise HandshakeError(
                f"{SERVER_MAX_WINDOW_BITS}={server_bits} is larger than the offered "
                f"{options.server_max_window_bits}"
            )

    offered = options.client_max_window_bits
    client_bits = params.get(CLIENT_MAX_WINDOW_BITS)
    if client_bits is None:
        client_bits = 15 if offered is None or isinstance(offered, bool) else offered
    elif offered is None or offered is False:
        raise HandshakeError(f"the server sent {CLIENT_MAX_WINDOW_BITS}, which was not offered")
    elif offered is not True and client_bits > offered:
        raise HandshakeError(
            f"{CLIENT_MAX_WINDOW_BITS}={client_bits} is larger than the offered {offered}"
        )

    return DeflateParameters(
        server_no_context_takeover=SERVER_NO_CONTEXT_TAKEOVER in params,
        client_no_context_takeover=(
            options.client_no_context_takeover or CLIENT_NO_CONTEXT_TAKEOVER in params
        ),
        server_max_window_bits=int(server_bits or 15),
        client_max_window_bits=int(client_bits),
    )


# --- server role (syncws's test server) ---


def server_negotiate(
    offer_header_values: List[str], server_options: Optional[DeflateOptions] = None
) -> Optional[Tuple[str, PerMessageDeflate]]:
    """Accept the first acceptable permessage-deflate offer: ``(response value, codec)`` or None.

    ``offer_header_values`` are the client's ``Sec-WebSocket-Extensions`` header values;
    ``server_options`` what the server insists on (default: ``DeflateOptions()``). This is a
    :data:`syncws.server.ServerExtension`: ``WebSocketServer(extensions=[server_negotiate])``.

    An offer that breaks RFC 7692 (unknown or repeated parameter, bad value) is declined, as
    section 5 requires, and so is one that cannot satisfy ``server_options``: a server that
    wants a smaller client window can only ask for it if the client offered
    ``client_max_window_bits``. An unreadable header gives None (no compression).
    """
    options = server_options if server_options is not None else DeflateOptions()
    try:
        elements = parse_extensions(offer_header_values)
    except ValueError:
        return None
    for name, raw in elements:
        if name != NAME:
            continue
        try:
            offer = _parse_parameters(raw, offer=True)
        except ValueError:
            continue
        response: Dict[str, ParamValue] = {}
        for flag in _FLAGS:  # offered ones are accepted; ours are always sent
            if flag in offer or getattr(options, flag):
                response[flag] = True
        caps = [b for b in (offer.get(SERVER_MAX_WINDOW_BITS), options.server_max_window_bits) if b]
        if caps:
            response[SERVER_MAX_WINDOW_BITS] = min(caps)
        wanted = options.client_max_window_bits
        if wanted is not None and not isinstance(wanted, bool):
            offered = offer.get(CLIENT_MAX_WINDOW_BITS)
            if offered is None:
                continue
            response[CLIENT_MAX_WINDOW_BITS] = wanted if offered is True else min(wanted, offered)
        return server_response(response, options)
    return None


def server_response(
    params: Mapping[str, Optional[ParamValue]], options: Optional[DeflateOptions] = None
) -> Tuple[str, PerMessageDeflate]:
    """The response value and server-role codec for exactly ``params``, whatever was offered.

    ``params`` maps parameter names to True (a flag), an int 8-15 (a window) or None/False
    (left out). For tests that script a server's answer; ``options`` only supplies the codec's
    threshold and levels.
    """
    for key, value in params.items():
        if key in _FLAGS:
            if not isinstance(value, bool) and value is not None:
                raise TypeError(f"{key} must be a bool or None, not {value!r}")
        elif key in _WINDOWS:
            if value is not False:
                _check_bits(key, value)
        else:
            raise ValueError(f"unknown {NAME} parameter {key!r}")
    agreed = DeflateParameters(
        server_no_context_takeover=bool(params.get(SERVER_NO_CONTEXT_TAKEOVER)),
        client_no_context_takeover=bool(params.get(CLIENT_NO_CONTEXT_TAKEOVER)),
        server_max_window_bits=int(params.get(SERVER_MAX_WINDOW_BITS) or 15),
        client_max_window_bits=int(params.get(CLIENT_MAX_WINDOW_BITS) or 15),
    )
    text = _format(params)
    return text, PerMessageDeflate("server", agreed, response_text=text, options=options)


# --- the codec ---


class PerMessageDeflate:
    """The agreed permessage-deflate of one connection, seen from ``role``.

    ``encode`` compresses whole outgoing messages; call it in the order the messages go on the
    wire, one at a time (the compressor's window is shared). ``decode_frame`` inflates incoming
    frames in order. The two sides hold separate zlib objects, so one thread may encode while
    another decodes. zlib objects are made on first use and, with context takeover, kept for
    the whole connection.
    """

    name = NAME

    def __init__(
        self,
        role: str,
        agreed: DeflateParameters,
        *,
        response_text: Optional[str] = None,
        options: Optional[DeflateOptions] = None,
    ) -> None:
        if role not in ("client", "server"):
            raise ValueError(f"role must be 'client' or 'server', not {role!r}")
        self.role = role
        self.agreed = agreed
        self.response_text = response_text if response_text is not None else _format(agreed._asdict())
        options = options if options is not None else DeflateOptions()
        # Only the codec settings of ``options`` count here: the parameters are ``agreed``.
        self.threshold = options.threshold
        self.compress_level = options.compress_level
        self.mem_level = options.mem_level
        client = role == "client"
        local_bits = agreed.client_max_window_bits if client else agreed.server_max_window_bits
        self._remote_bits = agreed.server_max_window_bits if client else agreed.client_max_window_bits
        # zlib cannot compress with an 8-bit raw window; 9 is safe (see the module docstring).
        self._local_bits = max(local_bits, 9)
        self._local_no_context = (
            agreed.client_no_context_takeover if client else agreed.server_no_context_takeover
        )
        self._remote_no_context = (
            agreed.server_no_context_takeover if client else agreed.client_no_context_takeover
        )
        # A full flush is a sync flush that also forgets the history: the next message starts
        # afresh without the cost of a new compressor (RFC 7692 7.2.1, no context takeover).
        self._flush_mode = zlib.Z_FULL_FLUSH if self._local_no_context else zlib.Z_SYNC_FLUSH
        self._encoder: Optional["zlib._Compress"] = None
        self._decoder: Optional["zlib._Decompress"] = None
        # Bytes given to the current zlib stream in this message: no tail is due without them.
        self._fed = 0

    def __repr__(self) -> str:
        return f"<PerMessageDeflate {self.role} {self.response_text!r}>"

    def encode(self, payload: bytes) -> Tuple[bytes, bool]:
        """Compress one whole message: ``(wire payload, RSV1)``.

        Below ``threshold`` the message goes out as it is. Without context takeover a message
        that would not shrink also goes out as it is (the next one starts afresh anyway); with
        it, it must be sent compressed, because the peer's window has to see it.
        """
        if len(payload) < self.threshold:
            return payload, False
        encoder = self._encoder
        if encoder is None:
            encoder = self._encoder = zlib.compressobj(
                self.compress_level, zlib.DEFLATED, -self._local_bits, self.mem_level
            )
        head = encoder.compress(payload)
        tail = encoder.flush(self._flush_mode)  # always ends with _TAIL
        data = head + tail[:-4] if head else tail[:-4]
        # Unreachable with zlib (hence not covered): a sync flush after compress() always
        # emits an empty stored block (00 00 00 ff ff), so data is never empty. A zlib that
        # emitted nothing for an empty message would leave the peer's inflater inside a
        # stored block without this.
        if not data:  # pragma: no cover
            data = b"\x00"  # RFC 7692 7.2.3.6
        if self._local_no_context and len(data) >= len(payload):
            return payload, False
        return data, True

    def decode_frame(
        self,
        payload: bytes,
        *,
        first: bool,
        fin: bool,
        compressed: bool,
        max_size: Optional[int],
    ) -> bytes:
        """Inflate one frame of a message; ``compressed`` is RSV1 of the message's first frame.

        ``max_size`` is what this message may still grow by (None: no limit); at most
        ``max_size + 1`` bytes are inflated before :class:`MessageTooBig` is raised. Corrupt
        data raises :class:`ProtocolError` (1002). Uncompressed messages pass through.
        """
        if not compressed:
            if max_size is not None and len(payload) > max_size:
                raise MessageTooBig(f"message larger than the {max_size} bytes still allowed")
            return payload
        if first:
            self._fed = 0
        if self._decoder is None:
            self._decoder = zlib.decompressobj(-self._remote_bits)
        data = self._inflate(payload, max_size)
        if fin:
            # The tail completes the empty stored block a flush starts. After no data at all
            # (an empty message sent as nothing) or right after a BFINAL block there is no
            # such block, and the tail would leave the inflater inside a bogus one.
            if self._fed:
                more = self._inflate(_TAIL, None if max_size is None else max_size - len(data))
                if more:
                    data += more
            if self._remote_no_context:
                self._decoder = None  # also frees the window between messages
        return data

    def _inflate(self, data: bytes, max_size: Optional[int]) -> bytes:
        limit = 0 if max_size is None else max_size + 1  # zlib: 0 = unlimited
        decoder = self._decoder
        assert decoder is not None
        self._fed += len(data)
        try:
            out = decoder.decompress(data, limit)
            while decoder.eof:
                # A BFINAL block ended the stream: go on with a fresh one, as Chromium does.
                data = decoder.unused_data
                decoder = self._decoder = zlib.decompressobj(-self._remote_bits)
                self._fed = len(data)
                if not data or (limit and len(out) >= limit):
                    break
                out += decoder.decompress(data, limit - len(out) if limit else 0)
        except zlib.error as exc:
            raise ProtocolError(f"invalid compressed data: {exc}") from None
        if max_size is not None and len(out) > max_size:
            raise MessageTooBig("message larger than the allowed size once decompressed")
        return out
