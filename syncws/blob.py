"""``Blob``: immutable binary data, as the File API defines it.

A ``Blob`` is what a binary message is delivered as when ``binary_type == "blob"`` (the
default), and one of the things ``send()`` accepts. Its contents are one ``bytes`` object,
shared (not copied) when a Blob wraps received data or another Blob.

Design decisions a caller may want to know:

* ``Blob`` has no ``__len__``: like every JavaScript object it is always truthy, so an empty
  binary message is not mistaken for "no message" by ``if event.data:``. Use ``.size``.
* ``==`` compares contents (the MIME type is ignored) with another Blob or with any bytes-like
  object, so ``blob == b"abc"`` works; ``hash(blob) == hash(blob.bytes())`` accordingly.
* ``.text()`` follows the File API: UTF-8 with a leading BOM removed and invalid sequences
  replaced by U+FFFD.
"""

from __future__ import annotations

import builtins
import operator
from typing import Any, Iterable, Iterator, List, Optional, Tuple, Union

from .text import usv_utf8

__all__ = ["Blob", "BlobPart"]

#: What ``Blob(parts)`` accepts as one part.
BlobPart = Union[bytes, bytearray, memoryview, str, "Blob"]

#: Size of the chunks ``Blob.stream()`` yields by default.
STREAM_CHUNK_SIZE = 64 * 1024

_PyBUF_WRITABLE = 0x0001  # inspect.BufferFlags.WRITABLE, which exists only on Python 3.12+


def _normalize_type(value: str) -> str:
    """The File API rule: lowercase, or ``""`` if any character is outside U+0020..U+007E."""
    if not isinstance(value, str):
        raise TypeError(f"Blob type must be a str, not {value.__class__.__name__}")
    # For ASCII text, isprintable() is exactly the range U+0020..U+007E.
    return value.lower() if value.isascii() and value.isprintable() else ""


def _byte_view(obj: object) -> Union[bytes, memoryview]:
    """The bytes a buffer object exposes, as ``bytes`` or a flat unsigned-byte view.

    Raises TypeError for objects that do not support the buffer protocol.
    """
    if isinstance(obj, bytes):
        return obj
    view = memoryview(obj)  # type: ignore[arg-type]
    return view.cast("B") if view.c_contiguous else view.tobytes()


def _clamp(index: Optional[int], size: int, default: int) -> int:
    """The File API's slice index rule: negative counts from the end; clamp to [0, size]."""
    if index is None:
        return default
    index = operator.index(index)
    if index < 0:
        return max(size + index, 0)
    return min(index, size)


class Blob:
    """Immutable binary data with a MIME type, as the File API's ``Blob``.

    ``parts`` is an iterable of bytes-like objects (copied), ``str`` (encoded as UTF-8 after
    the USVString conversion, so lone surrogates become U+FFFD) and other Blobs. ``type`` is
    lowercased, or set to ``""`` if it holds characters outside U+0020..U+007E.
    """

    __slots__ = ("_data", "_type", "_hash")

    _data: bytes
    _hash: Optional[int]

    def __init__(self, parts: Optional[Iterable[BlobPart]] = (), type: str = "") -> None:
        # Note: the parameter ``type`` (the spec's name) shadows the builtin in this method.
        content_type = _normalize_type(type)
        if parts is None:
            parts = ()
        elif isinstance(parts, (str, bytes, bytearray, memoryview, Blob)):
            raise TypeError(
                "Blob parts must be an iterable of parts, e.g. Blob([data]), "
                f"not a single {parts.__class__.__name__}"
            )
        items = list(parts)
        if len(items) == 1 and isinstance(items[0], (Blob, bytes)):
            data = items[0]._data if isinstance(items[0], Blob) else items[0]
            self._assign(data, content_type)  # share, no copy: both are immutable
            return
        chunks: List[Union[bytes, memoryview]] = []
        for part in items:
            if isinstance(part, str):
                chunks.append(usv_utf8(part))
            elif isinstance(part, Blob):
                chunks.append(part.bytes())
            else:
                try:
                    chunks.append(_byte_view(part))
                except TypeError:
                    raise TypeError(
                        "Blob parts must be bytes-like objects, str or Blob, "
                        f"not {part.__class__.__name__}"
                    ) from None
        self._assign(b"".join(chunks), content_type)

    def _assign(self, data: builtins.bytes, content_type: str) -> None:
        """Set every slot."""
        self._data = data
        self._type = content_type
        self._hash = None

    @property
    def size(self) -> int:
        """Length in bytes."""
        return len(self._data)

    @property
    def type(self) -> str:
        """The MIME type given at construction, lowercased (``""`` if unknown)."""
        return self._type

    # Below this method, ``bytes`` in the class body names it: annotations use builtins.bytes.
    def bytes(self) -> bytes:
        """The whole contents."""
        return self._data

    def text(self) -> str:
        """The contents decoded as UTF-8, a leading BOM removed, errors replaced by U+FFFD."""
        return self.bytes().decode("utf-8-sig", "replace")

    def slice(
        self, start: Optional[int] = 0, end: Optional[int] = None, content_type: str = ""
    ) -> Blob:
        """A new Blob of the bytes ``[start, end)``, with the File API's index rules.

        Negative indices count from the end, indices are clamped to ``[0, size]``, and an end
        before the start gives an empty Blob. The new Blob's type is ``content_type``
        (normalized), not this Blob's.
        """
        size = len(self._data)
        first = _clamp(start, size, 0)
        last = _clamp(end, size, size)
        blob = Blob.__new__(Blob)
        data = self._data if (first, last) == (0, size) else self._data[first:max(last, first)]
        blob._assign(data, _normalize_type(content_type))
        return blob

    def stream(self, chunk_size: int = STREAM_CHUNK_SIZE) -> Iterator[builtins.bytes]:
        """Yield the contents as consecutive ``bytes`` chunks of at most ``chunk_size``."""
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        data = self._data
        for pos in range(0, len(data), chunk_size):
            yield data[pos : pos + chunk_size]

    def __bytes__(self) -> builtins.bytes:
        return self.bytes()

    def __buffer__(self, flags: int) -> memoryview:
        """Read-only buffer protocol (Python 3.12+), so ``memoryview(blob)`` works."""
        if flags & _PyBUF_WRITABLE:
            raise BufferError("a Blob is read-only")
        return memoryview(self.bytes())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Blob):
            return self._data == other._data
        if isinstance(other, (bytes, bytearray, memoryview)):
            view = _byte_view(other)
            return len(view) == len(self._data) and self._data == view
        return NotImplemented

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(self.bytes())
        return self._hash

    def __reduce__(self) -> Tuple[Any, ...]:
        return (Blob, ([self.bytes()], self._type))

    def __repr__(self) -> str:
        return f"<Blob size={len(self._data)} type={self._type!r}>"
