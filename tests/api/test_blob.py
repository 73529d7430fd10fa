"""Tests for syncws.blob (the File API's Blob) and syncws.text (USVString conversion)."""

from __future__ import annotations

import pickle
import sys
from array import array

import pytest

from syncws.blob import Blob
from syncws.text import to_usv, usv_utf8


# --- syncws.text -------------------------------------------------------------------------

@pytest.mark.parametrize(
    "raw, expected",
    [
        ("plain", "plain"),
        ("\ud83d\udd0c", "\U0001f50c"),  # a surrogate pair becomes one code point
        ("a\ud800b", "a\ufffdb"),  # lone high surrogate
        ("a\udc00b", "a\ufffdb"),  # lone low surrogate
        ("\udc00\ud800", "\ufffd\ufffd"),  # wrong order: two lone surrogates
        ("\ud800\ud800\udc00", "\ufffd\U00010000"),
        ("\ud800", "\ufffd"),
        ("", ""),
    ],
)
def test_to_usv(raw: str, expected: str) -> None:
    assert to_usv(raw) == expected


def test_usv_utf8() -> None:
    assert usv_utf8("\U0001f50c" * 31) == "\U0001f50c".encode() * 31
    assert len(usv_utf8("\U0001f50c" * 31)) == 124
    assert len(usv_utf8("\ud83d\udd0c" * 31)) == 124
    assert usv_utf8("a\ud800") == b"a\xef\xbf\xbd"  # U+FFFD, not "?"


# --- construction -------------------------------------------------------------------------

def test_empty_blob() -> None:
    blob = Blob()
    assert blob.size == 0
    assert blob.type == ""
    assert blob.bytes() == b""
    assert blob.text() == ""
    assert list(blob.stream()) == []
    assert bool(blob) is True  # no __len__: always truthy, like a JavaScript object
    assert not hasattr(blob, "__len__")


def test_parts_of_every_kind_are_concatenated() -> None:
    inner = Blob([b"in"])
    blob = Blob([b"a", bytearray(b"b"), memoryview(b"xcx")[1:2], "d\u00e9", inner, "\ud800"])
    assert blob.bytes() == b"abcd\xc3\xa9in\xef\xbf\xbd"
    assert blob.size == len(blob.bytes())


def test_buffer_parts_copy_raw_bytes() -> None:
    assert Blob([array("H", [1, 2])]).bytes() == array("H", [1, 2]).tobytes()
    assert Blob([memoryview(b"abcdef")[::2]]).bytes() == b"ace"  # non-contiguous view


def test_parts_are_copied() -> None:
    source = bytearray(b"abc")
    blob = Blob([source])
    source[0] = ord("z")
    assert blob.bytes() == b"abc"


def test_parts_from_generator_and_none() -> None:
    assert Blob(part for part in [b"a", "b"]).bytes() == b"ab"
    assert Blob(None).size == 0


@pytest.mark.parametrize("parts", ["text", b"bytes", bytearray(b"x"), Blob([b"x"])])
def test_a_single_part_instead_of_an_iterable_is_rejected(parts: object) -> None:
    with pytest.raises(TypeError, match=r"Blob\(\[data\]\)"):
        Blob(parts)  # type: ignore[arg-type]


@pytest.mark.parametrize("part", [1, None, 1.5, object()])
def test_bad_parts_raise_type_error(part: object) -> None:
    with pytest.raises(TypeError):
        Blob([part])  # type: ignore[list-item]


@pytest.mark.parametrize(
    "given, expected",
    [
        ("", ""),
        ("Text/Plain", "text/plain"),
        ("application/octet-stream; charset=UTF-8", "application/octet-stream; charset=utf-8"),
        ("text/pl\u00e4in", ""),
        ("text/plain\n", ""),
        ("a\x7fb", ""),
        ("~ !", "~ !"),
    ],
)
def test_type_normalization(given: str, expected: str) -> None:
    assert Blob([], type=given).type == expected
    assert Blob([b"x"]).slice(content_type=given).type == expected


def test_type_must_be_str() -> None:
    with pytest.raises(TypeError):
        Blob([], type=None)  # type: ignore[arg-type]


# --- reading --------------------------------------------------------------------------------

def test_bytes_and_dunder_bytes() -> None:
    blob = Blob([b"\x00\xff"])
    assert bytes(blob) == b"\x00\xff"
    assert blob.bytes() == b"\x00\xff"


def test_text_replaces_invalid_utf8_and_strips_bom() -> None:
    assert Blob([b"ok \xff\xfe!"]).text() == "ok \ufffd\ufffd!"
    assert Blob([b"\xef\xbb\xbfhi"]).text() == "hi"
    assert Blob(["caf\u00e9"]).text() == "caf\u00e9"


def test_stream_chunks() -> None:
    data = bytes(range(256)) * 1000
    blob = Blob([data])
    chunks = list(blob.stream())
    assert b"".join(chunks) == data
    assert max(len(chunk) for chunk in chunks) <= 64 * 1024
    assert [len(c) for c in blob.stream(100_000)] == [100_000, 100_000, 56_000]
    with pytest.raises(ValueError):
        list(blob.stream(0))


@pytest.mark.skipif(sys.version_info < (3, 12), reason="__buffer__ needs Python 3.12")
def test_memoryview_on_312() -> None:
    view = memoryview(Blob([b"abc"]))
    assert view.readonly
    assert view.tobytes() == b"abc"


# --- slice ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "args, expected",
    [
        ((), b"0123456789"),
        ((2,), b"23456789"),
        ((2, 5), b"234"),
        ((-3,), b"789"),
        ((-3, -1), b"78"),
        ((0, -1), b"012345678"),
        ((-100, 2), b"01"),
        ((5, 100), b"56789"),
        ((100,), b""),
        ((7, 3), b""),
        ((-1, -3), b""),
        ((None, None), b"0123456789"),
        ((3, None), b"3456789"),
    ],
)
def test_slice_index_rules(args: tuple, expected: bytes) -> None:
    assert Blob([b"0123456789"], type="text/plain").slice(*args).bytes() == expected


def test_slice_type_defaults_to_empty() -> None:
    blob = Blob([b"abc"], type="text/plain")
    assert blob.slice(1).type == ""
    assert blob.slice(1, content_type="Image/PNG").type == "image/png"


def test_slice_of_slice() -> None:
    blob = Blob([b"0123456789"]).slice(2, 8).slice(1, -1)
    assert blob.bytes() == b"3456"
    assert blob.size == 4


def test_slice_rejects_non_integers() -> None:
    with pytest.raises(TypeError):
        Blob([b"abc"]).slice(1.5)  # type: ignore[arg-type]


# --- equality, hashing, repr, pickling ------------------------------------------------------

def test_equality_compares_contents_only() -> None:
    a = Blob([b"ab", "c"], type="text/plain")
    b = Blob([b"abc"])
    assert a == b
    assert hash(a) == hash(b) == hash(b"abc")
    assert a != Blob([b"abd"])
    assert a != Blob([b"ab"])
    assert a == b"abc"
    assert b"abc" == a
    assert a == bytearray(b"abc")
    assert a == memoryview(b"abc")
    assert a != "abc"
    assert a != 3
    assert len({a, b}) == 1


def test_repr() -> None:
    assert repr(Blob([b"abc"], type="text/plain")) == "<Blob size=3 type='text/plain'>"


def test_pickle_roundtrip() -> None:
    blob = Blob([b"abc"], type="text/plain")
    copy = pickle.loads(pickle.dumps(blob))
    assert copy == blob
    assert copy.type == "text/plain"


def test_blob_is_immutable() -> None:
    blob = Blob([b"abc"])
    with pytest.raises(AttributeError):
        blob.size = 5  # type: ignore[misc]
    with pytest.raises(AttributeError):
        blob.foo = 1  # type: ignore[attr-defined]


def test_blob_from_one_blob_shares_contents() -> None:
    inner = Blob([b"abc"], type="text/plain")
    outer = Blob([inner], type="x/y")
    assert outer == inner
    assert outer.type == "x/y"
