"""Following an HTTP redirect of the opening handshake, safely (``follow_redirects=True``).

The WebSocket standard fails a connection whose handshake is answered with a redirect, and that
stays syncws's default. When asked, syncws follows 301, 302, 303, 307 and 308 like a careful
HTTP client, deciding here (sans-I/O: URLs and headers in, URLs and headers out):

- at most :data:`MAX_REDIRECTS` hops;
- never from ``wss://`` to ``ws://`` (that would send the request, cookies and all, in clear);
- the ``Location`` may be relative or use ``http(s)://`` (which means ``ws(s)://``); its
  fragment is dropped and so are credentials in it (a server does not get to choose them);
- within one origin (scheme, host and port) everything is sent again, credentials from the
  original URL included; to another origin the URL's credentials, and ``Authorization``,
  ``Cookie`` and ``Host`` from ``headers=``, are dropped. Cookies from a jar are matched again
  for each new URL by the caller.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import replace
from typing import List, Sequence, Tuple

from .errors import HandshakeError
from .protocol.handshake import MAX_BODY, Response
from .url import WebSocketURL, parse_ws_url

__all__ = [
    "REDIRECT_STATUSES",
    "MAX_REDIRECTS",
    "is_redirect",
    "redirect_url",
    "same_origin",
    "headers_for",
]

#: The statuses that are followed; the others fail the handshake as any non-101 answer does.
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: Hops followed before giving up (the first request is not a hop).
MAX_REDIRECTS = 5

# Headers from ``headers=`` that belong to the first origin and are not sent to another one.
_ORIGIN_BOUND_HEADERS = frozenset({"authorization", "cookie", "host"})


def is_redirect(response: Response) -> bool:
    """Whether ``response`` is a redirect that ``follow_redirects=True`` would follow."""
    return response.status in REDIRECT_STATUSES


def _refusal(message: str, response: Response) -> HandshakeError:
    return HandshakeError(
        message,
        status=response.status,
        headers=response.headers,
        body=response.leftover[:MAX_BODY],
    )


def redirect_url(current: WebSocketURL, response: Response, hops_so_far: int) -> WebSocketURL:
    """The URL ``response`` redirects ``current`` to, or ``HandshakeError`` if not to follow it.

    ``hops_so_far`` counts the redirects already followed for this connection. The result
    carries no credentials; :func:`same_origin` tells whether to give it ``current``'s.
    """
    status = f"HTTP {response.status}"
    location = response.get("Location")
    if location is None or not location.strip():
        raise _refusal(f"{status} redirect without a Location header", response)
    if hops_so_far >= MAX_REDIRECTS:
        raise _refusal(
            f"{status} redirect to {location}: more than {MAX_REDIRECTS} redirects", response
        )
    base = ("https" if current.secure else "http") + current.href[current.href.index(":") :]
    try:
        target = urllib.parse.urldefrag(urllib.parse.urljoin(base, location.strip()))[0]
        new = parse_ws_url(target)
    except ValueError as exc:  # DOMSyntaxError, or urljoin's "Invalid IPv6 URL"
        raise _refusal(f"{status} redirect to an unusable Location {location!r}: {exc}", response) from None
    if current.secure and not new.secure:
        raise _refusal(
            f"{status} redirect from {current.redacted} to {new.redacted} refused: "
            "never from wss:// to ws://",
            response,
        )
    return replace(new, username="", password="")


def same_origin(a: WebSocketURL, b: WebSocketURL) -> bool:
    """Whether ``a`` and ``b`` have the same scheme, host and port."""
    return (a.scheme, a.host, a.port) == (b.scheme, b.host, b.port)


def headers_for(
    headers: Sequence[Tuple[str, str]], *, same_origin: bool
) -> List[Tuple[str, str]]:
    """The ``headers=`` pairs to send after a redirect: all of them within the origin, else
    without ``Authorization``, ``Cookie`` and ``Host``."""
    if same_origin:
        return list(headers)
    return [(name, value) for name, value in headers if name.lower() not in _ORIGIN_BOUND_HEADERS]
