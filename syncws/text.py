"""String conversions shared by ``send()``, ``close()``, ``Blob`` and the URL parser.

Python strings may hold lone surrogates; JavaScript strings may too, but the WebSocket API
converts them to USVStrings (sequences of Unicode scalar values) before encoding. These helpers
do the same conversion so that syncws sends exactly what a browser would.
"""

from __future__ import annotations

__all__ = ["to_usv", "usv_utf8"]


def to_usv(s: str) -> str:
    """Return ``s`` converted as JavaScript converts a string to a USVString.

    A high surrogate followed by a low surrogate becomes the single code point they encode,
    and every other (lone) surrogate becomes U+FFFD. Python's ``errors="replace"`` would give
    ``"?"`` instead, which is why this exists.
    """
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        # UTF-16 round trip: "surrogatepass" writes each surrogate as its own code unit, the
        # decoder then joins valid pairs and replaces each lone unit with U+FFFD.
        return s.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return s


def usv_utf8(s: str) -> bytes:
    """Return the UTF-8 encoding of ``to_usv(s)`` (the bytes a browser would send for ``s``)."""
    try:
        return s.encode("utf-8")
    except UnicodeEncodeError:
        return to_usv(s).encode("utf-8")
