"""``Blob``: immutable binary data, as the File API defines it.

A ``Blob`` is what a binary message is delivered as when ``binary_type == "blob"`` (the
default), and one of the things ``send()`` accepts. Its contents live either in memory (a
``bytes`` object) or, for large received messages, in a temporary file that the Blob owns and
only reads (see ``Blob._from_file``). Both kinds have the same interface.

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
import os
import tempfile
import threading
import weakref
from typing import IO, Any, Iterable, Iterator, List, Optional, Tuple, Union

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


def _pread_fd(fileobj: IO[bytes]) -> Optional[int]:
    """A descriptor usable with ``os.pread`` (lock-free positional reads), if there is one."""
    if not hasattr(os, "pread") or isinstance(fileobj, tempfile.SpooledTemporaryFile):
        # fileno() on a SpooledTemporaryFile would force it onto disk: use seek+read instead.
        return None
    try:
        return fileobj.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        return None


class _FileSource:
    """A read-only file shared by a spooled Blob and the slices taken from it.

    The file is closed (and, being a temporary file, deleted) once no Blob refers to it.
    Reads are positional, so concurrent readers on several threads never disturb each other.
    """

    __slots__ = ("_file", "_fd", "_lock", "__weakref__")

    def __init__(self, fileobj: IO[bytes]) -> None:
        fileobj.flush()
        self._file = fileobj
        self._fd = _pread_fd(fileobj)
        self._lock = threading.Lock()
        weakref.finalize(self, fileobj.close)

    def read(self, offset: int, size: int) -> bytes:
        """Read ``size`` bytes at ``offset`` (fewer only if the file is shorter)."""
        if self._fd is None:
            with self._lock:
                self._file.seek(offset)
                return self._file.read(size)
        chunks = []
        while size > 0:
            chunk = os.pread(self._fd, size, offset)
            if not chunk:
                break
            chunks.append(chunk)
            offset += len(chunk)
            size -= len(chunk)
        return b"".join(chunks)


class Blob:
    """Immutable binary data with a MIME type, as the File API's ``Blob``.

    ``parts`` is an iterable of bytes-like objects (copied), ``str`` (encoded as UTF-8 after
    the USVString conversion, so lone surrogates become U+FFFD) and other Blobs. ``type`` is
    lowercased, or set to ``""`` if it holds characters outside U+0020..U+007E.
    """

    __slots__ = ("_data", "_source", "_offset", "_size", "_type", "_hash")

    _data: Optional[bytes]
    _source: Optional[_FileSource]
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
        if len(items) == 1 and isinstance(items[0], Blob):
            self._assign_slice(items[0], 0, items[0]._size, content_type)  # share, no copy
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
        data = b"".join(chunks)
        self._assign(data, None, 0, len(data), content_type)

    def _assign(
        self,
        data: Optional[bytes],
        source: Optional[_FileSource],
        offset: int,
        size: int,
        content_type: str,
    ) -> None:
        """Set every slot: contents are ``data``, or ``size`` bytes of ``source`` at ``offset``."""
        self._data, self._source, self._offset, self._size = data, source, offset, size
        self._type = content_type
        self._hash = None

    def _assign_slice(self, other: Blob, start: int, size: int, content_type: str) -> None:
        """Make this Blob the bytes ``[start, start + size)`` of ``other``, sharing its file."""
        if other._data is None:
            self._assign(None, other._source, other._offset + start, size, content_type)
        else:
            self._assign(other._read(start, size), None, 0, size, content_type)

    @classmethod
    def _from_file(
        cls, fileobj: IO[bytes], size: Optional[int] = None, type: str = "", *, offset: int = 0
    ) -> Blob:
        """A Blob backed by ``fileobj`` (e.g. a spooled temporary file of a large message).

        The Blob takes ownership: the file must be seekable, must not be written or closed by
        anyone else afterwards, and is closed when the last Blob using it is collected. The
        contents are the ``size`` bytes at ``offset`` (default: up to the end of the file).
        """
        if offset < 0:
            raise ValueError("offset must not be negative")
        end = fileobj.seek(0, os.SEEK_END)
        if size is None:
            size = max(end - offset, 0)
        elif size < 0 or offset + size > end:
            raise ValueError(f"the file holds {end} bytes, fewer than offset + size")
        blob = cls.__new__(cls)
        blob._assign(None, _FileSource(fileobj), offset, size, _normalize_type(type))
        return blob

    @property
    def size(self) -> int:
        """Length in bytes."""
        return self._size

    @property
    def type(self) -> str:
        """The MIME type given at construction, lowercased (``""`` if unknown)."""
        return self._type

    def _read(self, start: int, size: int) -> bytes:
        if self._data is not None:
            if start == 0 and size == len(self._data):
                return self._data
            return self._data[start : start + size]
        assert self._source is not None
        return self._source.read(self._offset + start, size)

    # Below this method, ``bytes`` in the class body names it: annotations use builtins.bytes.
    def bytes(self) -> bytes:
        """The whole contents (read from the file for a spooled Blob)."""
        return self._read(0, self._size)

    def text(self) -> str:
        """The contents decoded as UTF-8, a leading BOM removed, errors replaced by U+FFFD."""
        return self.bytes().decode("utf-8-sig", "replace")

    def slice(
        self, start: Optional[int] = 0, end: Optional[int] = None, content_type: str = ""
    ) -> Blob:
        """A new Blob of the bytes ``[start, end)``, with the File API's index rules.

        Negative indices count from the end, indices are clamped to ``[0, size]``, and an end
        before the start gives an empty Blob. The new Blob's type is ``content_type``
        (normalized), not this Blob's. Slices of a spooled Blob share its file.
        """
        size = self._size
        first = _clamp(start, size, 0)
        last = _clamp(end, size, size)
        blob = Blob.__new__(Blob)
        blob._assign_slice(self, first, max(last - first, 0), _normalize_type(content_type))
        return blob

    def stream(self, chunk_size: int = STREAM_CHUNK_SIZE) -> Iterator[builtins.bytes]:
        """Yield the contents as consecutive ``bytes`` chunks of at most ``chunk_size``."""
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        for pos in range(0, self._size, chunk_size):
            yield self._read(pos, min(chunk_size, self._size - pos))

    def __bytes__(self) -> builtins.bytes:
        return self.bytes()

    def __buffer__(self, flags: int) -> memoryview:
        """Read-only buffer protocol (Python 3.12+), so ``memoryview(blob)`` works."""
        if flags & _PyBUF_WRITABLE:
            raise BufferError("a Blob is read-only")
        return memoryview(self.bytes())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Blob):
            if self._size != other._size:
                return False
            if self._data is not None and other._data is not None:
                return self._data == other._data
            return all(a == b for a, b in zip(self.stream(), other.stream()))
        if isinstance(other, (bytes, bytearray, memoryview)):
            view = _byte_view(other)
            return len(view) == self._size and self.bytes() == view
        return NotImplemented

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(self.bytes())
        return self._hash

    def __reduce__(self) -> Tuple[Any, ...]:
        return (Blob, ([self.bytes()], self._type))

    def __repr__(self) -> str:
        spooled = " spooled" if self._source is not None else ""
        return f"<Blob size={self._size} type={self._type!r}{spooled}>"
