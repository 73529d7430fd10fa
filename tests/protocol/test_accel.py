"""The compiled protocol helpers (``syncws._speedups``) against their pure-Python twins.

Every helper of :mod:`syncws.protocol._accel` must give exactly the same result with and
without the accelerator: both are run on edge cases (every header length boundary, every
protocol error, every cut point) and on seeded random inputs, and the pure-Python ones are
also checked against an independent reference (frames built with ``struct``). The C-only tests are skipped when the accelerator was not compiled; set
``SYNCWS_REQUIRE_EXTENSIONS=1`` to make its absence a failure.
"""

from __future__ import annotations

import os
import random
import struct
import subprocess
import sys
from typing import Callable, List, Optional

import pytest

import syncws
from syncws.protocol import _accel
from syncws.protocol.mask import apply_mask_python

try:
    from syncws import _speedups  # type: ignore[attr-defined]
except ImportError:
    _speedups = None

needs_c = pytest.mark.skipif(_speedups is None, reason="syncws._speedups is not built")

KEY = b"\x9a\x01\xfe\x42"


def reference_frame(first: int, payload: bytes, *, key: Optional[bytes], length_bytes: int = 0) -> bytes:
    """A frame built with struct, independently of the code under test."""
    n = len(payload)
    mask_bit = 0x80 if key is not None else 0
    if length_bytes == 8 or n >= 65536:
        head = struct.pack("!BBQ", first, mask_bit | 127, n)
    elif length_bytes == 2 or (length_bytes == 0 and n >= 126):
        head = struct.pack("!BBH", first, mask_bit | 126, n)
    else:
        head = struct.pack("!BB", first, mask_bit | n)
    if key is None:
        return head + payload
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + masked


# -- parse_frame ---------------------------------------------------------------------------

PARSERS: List[object] = [pytest.param(_accel.parse_frame_python, id="python")]
PARSERS.append(
    pytest.param(_speedups.parse_frame if _speedups else None, id="c", marks=needs_c)
)


@pytest.mark.parametrize("parse", PARSERS)
@pytest.mark.parametrize("length", [0, 1, 125, 126, 127, 65535, 65536, 70000])
@pytest.mark.parametrize("masked", [False, True])
def test_parse_frame_round_trips_every_length_boundary(parse: Callable, length: int, masked: bool) -> None:
    payload = os.urandom(length)
    wire = reference_frame(0x82, payload, key=KEY if masked else None)
    buf = bytearray(wire + b"\x81\x00")  # the next frame must stay in the buffer
    assert parse(buf, masked, -1) == (0x82, payload)
    assert buf == bytearray(b"\x81\x00")


@pytest.mark.parametrize("parse", PARSERS)
def test_parse_frame_waits_for_every_missing_byte_and_leaves_the_buffer(parse: Callable) -> None:
    for masked in (False, True):
        for length in (5, 300, 70000):
            wire = reference_frame(0x01, b"a" * length, key=KEY if masked else None)
            for cut in sorted({c for c in range(0, 16) if c < len(wire)} | {len(wire) - 1}):
                buf = bytearray(wire[:cut])
                assert parse(buf, masked, -1) is None
                assert buf == wire[:cut]


ERROR_CASES = [
    # (wire, expect_masked, max_payload, code)
    (b"\x83\x00", False, -1, _accel.PARSE_RESERVED_OPCODE),
    (b"\x8b\x00", False, -1, _accel.PARSE_RESERVED_OPCODE),
    (b"\x8f\x00", False, -1, _accel.PARSE_RESERVED_OPCODE),
    (b"\x09\x00", False, -1, _accel.PARSE_FRAGMENTED_CONTROL),
    (b"\x89\x7e\x00\x7e", False, -1, _accel.PARSE_CONTROL_TOO_LONG),
    (b"\x88\x7f", False, -1, _accel.PARSE_CONTROL_TOO_LONG),  # before the length arrives
    (b"\x82\x80" + KEY, False, -1, _accel.PARSE_UNEXPECTED_MASK),
    (b"\x82\x00", True, -1, _accel.PARSE_MISSING_MASK),
    (b"\x82\x7f\x80" + b"\x00" * 7, False, -1, _accel.PARSE_LENGTH_TOP_BIT),
    (b"\x82\x7f\xff" + b"\xff" * 7, False, 10, _accel.PARSE_LENGTH_TOP_BIT),
    (b"\x82\x0b", False, 10, _accel.PARSE_TOO_BIG),  # before the payload arrives
    (b"\x82\x7e\x01\x00", False, 255, _accel.PARSE_TOO_BIG),
    # The first rule broken is the one reported.
    (b"\x03\x80", False, -1, _accel.PARSE_RESERVED_OPCODE),
    (b"\x08\xfe", True, -1, _accel.PARSE_FRAGMENTED_CONTROL),
    (b"\x88\xfe", False, -1, _accel.PARSE_CONTROL_TOO_LONG),
]


@pytest.mark.parametrize("parse", PARSERS)
@pytest.mark.parametrize("wire, expect_masked, max_payload, code", ERROR_CASES)
def test_parse_frame_reports_each_broken_rule(
    parse: Callable, wire: bytes, expect_masked: bool, max_payload: int, code: int
) -> None:
    buf = bytearray(wire)
    assert parse(buf, expect_masked, max_payload) == code
    assert buf == wire


@pytest.mark.parametrize("parse", PARSERS)
def test_parse_frame_accepts_a_payload_exactly_at_the_limit(parse: Callable) -> None:
    assert parse(bytearray(b"\x82\x0a" + b"x" * 10), False, 10) == (0x82, b"x" * 10)
    assert parse(bytearray(b"\x82\x00"), False, 0) == (0x82, b"")


@pytest.mark.parametrize("parse", PARSERS)
def test_parse_frame_rejects_a_buffer_that_is_not_a_bytearray(parse: Callable) -> None:
    with pytest.raises(TypeError):
        parse(b"\x81\x00", False, -1)


@needs_c
@pytest.mark.skipif(sys.version_info >= (3, 12), reason="None is immortal from Python 3.12 on")
def test_parse_frame_c_returns_none_without_stealing_a_reference() -> None:
    # A module built with the 3.13.0 headers for the 3.9 stable ABI got Py_RETURN_NONE without
    # its Py_INCREF: on 3.9-3.11 every incomplete frame then freed a reference to None.
    buf = bytearray(b"\x81")
    before = sys.getrefcount(None)
    for _ in range(20_000):
        assert _speedups.parse_frame(buf, False, -1) is None
    assert sys.getrefcount(None) > before - 1000


@needs_c
def test_parse_frame_c_equals_python_on_random_streams() -> None:
    """Random byte soup (mostly invalid) and random valid streams cut at random points."""
    rng = random.Random(6455)
    for _ in range(3000):
        wire = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 16)))
        for expect_masked in (False, True):
            for limit in (-1, 0, 5, 200):
                a, b = bytearray(wire), bytearray(wire)
                assert _speedups.parse_frame(a, expect_masked, limit) == _accel.parse_frame_python(
                    b, expect_masked, limit
                ), wire
                assert a == b
    for _ in range(300):
        masked = rng.random() < 0.5
        stream = b"".join(
            reference_frame(
                rng.choice([0x00, 0x01, 0x02, 0x80, 0x81, 0x82, 0x89, 0x8A, 0x88, 0xC1, 0xF2]),
                os.urandom(rng.choice([0, 1, 3, 100, 125, 126, 1000, 70000])),
                key=os.urandom(4) if masked else None,
                length_bytes=rng.choice([0, 0, 2, 8]),
            )
            for _ in range(rng.randrange(1, 6))
        )
        a, b = bytearray(), bytearray()
        position = 0
        while position < len(stream):
            step = rng.randrange(1, 4000)
            a += stream[position : position + step]
            b += stream[position : position + step]
            position += step
            while True:
                ra = _speedups.parse_frame(a, masked, -1)
                rb = _accel.parse_frame_python(b, masked, -1)
                assert ra == rb
                assert a == b
                if not isinstance(ra, tuple):
                    break


def test_parse_frame_python_agrees_with_the_reference_builder() -> None:
    rng = random.Random(17)
    for _ in range(200):
        first = rng.choice([0x81, 0x82, 0x01, 0x00, 0x80, 0xC1])
        payload = os.urandom(rng.randrange(0, 300))
        key = os.urandom(4)
        buf = bytearray(reference_frame(first, payload, key=key))
        assert _accel.parse_frame_python(buf, True, -1) == (first, payload)
        assert not buf


# -- client_frame --------------------------------------------------------------------------

BUILDERS: List[object] = [pytest.param(_accel.client_frame_python, id="python")]
BUILDERS.append(
    pytest.param(_speedups.client_frame if _speedups else None, id="c", marks=needs_c)
)


@pytest.mark.parametrize("build", BUILDERS)
@pytest.mark.parametrize("length", [0, 1, 125, 126, 1000, 1010, 1011, 65535, 65536, 200000])
def test_client_frame_matches_the_reference_and_joins_small_frames(build: Callable, length: int) -> None:
    payload = os.urandom(length)
    buffers = build(0x82, payload, KEY)
    assert b"".join(buffers) == reference_frame(0x82, payload, key=KEY)
    assert len(buffers) == (1 if len(b"".join(buffers)) <= 1024 else 2)


@pytest.mark.parametrize("build", BUILDERS)
def test_client_frame_takes_any_bytes_like_payload(build: Callable) -> None:
    data = bytes(range(256)) * 5
    expected = reference_frame(0x81, data, key=KEY)
    for payload in (bytearray(data), memoryview(data), memoryview(data * 2)[::2], data):
        source = bytes(payload) if not isinstance(payload, memoryview) else payload.tobytes()
        assert b"".join(build(0x81, payload, KEY)) == reference_frame(0x81, source, key=KEY)
    assert b"".join(build(0x81, memoryview(data), memoryview(KEY))) == expected


@pytest.mark.parametrize("build", BUILDERS)
def test_client_frame_rejects_bad_arguments(build: Callable) -> None:
    with pytest.raises(ValueError):
        build(0x82, b"x", b"abc")
    with pytest.raises(ValueError):
        build(256, b"x", KEY)
    with pytest.raises(TypeError):
        build(0x82, "text", KEY)
    with pytest.raises(TypeError):
        build(0x82, [1, 2, 3], KEY)


# -- payload_buffer ------------------------------------------------------------------------

ALLOCATORS: List[object] = [pytest.param(_accel.payload_buffer_python, id="python")]
ALLOCATORS.append(
    pytest.param(_speedups.payload_buffer if _speedups else None, id="c", marks=needs_c)
)


@pytest.mark.parametrize("allocate", ALLOCATORS)
def test_payload_buffer_is_filled_through_its_view(allocate: Callable) -> None:
    data, view = allocate(70000)
    assert len(data) == 70000 and len(view) == 70000 and not view.readonly
    chunk = os.urandom(70000)
    view[:1000] = chunk[:1000]
    view[1000:] = chunk[1000:]
    view.release()
    assert bytes(data) == chunk
    with pytest.raises(ValueError):
        allocate(1)


@needs_c
def test_payload_buffer_c_hands_out_a_real_bytes_object_that_works_as_one() -> None:
    data, view = _speedups.payload_buffer(5)
    view[:] = b"hello"
    view.release()
    assert type(data) is bytes and data == b"hello" and hash(data) == hash(b"hello")
    assert data.decode() == "hello" and {data: 1}[b"hello"] == 1


# -- selection -----------------------------------------------------------------------------


def _selection(env_value: Optional[str]) -> str:
    env = dict(os.environ)
    env.pop("SYNCWS_NO_EXTENSIONS", None)
    if env_value is not None:
        env["SYNCWS_NO_EXTENSIONS"] = env_value
    code = "from syncws.protocol import _accel; print(_accel.ACCELERATED, _accel.parse_frame.__module__)"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return result.stdout.strip()


def test_no_extensions_forces_the_pure_python_helpers() -> None:
    assert _selection("1") == "False syncws.protocol._accel"


@needs_c
def test_the_compiled_helpers_are_used_when_built() -> None:
    assert _selection(None).startswith("True")


def test_the_extension_is_required_when_ci_says_so() -> None:
    if os.environ.get("SYNCWS_REQUIRE_EXTENSIONS") != "1":
        pytest.skip("set SYNCWS_REQUIRE_EXTENSIONS=1 to require the compiled accelerator")
    assert _speedups is not None and _accel.ACCELERATED


def test_the_pure_python_helpers_without_the_accelerator(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the accelerator was not compiled (no compiler at install time), the helpers fall
    back to their Python twins instead of failing the import."""
    monkeypatch.delenv("SYNCWS_NO_EXTENSIONS", raising=False)
    monkeypatch.setitem(sys.modules, "syncws._speedups", None)  # import raises ImportError
    monkeypatch.delattr(syncws, "_speedups", raising=False)  # not even from the package
    python = (_accel.parse_frame_python, _accel.client_frame_python, _accel.payload_buffer_python)
    assert _accel._load() == python


def test_apply_mask_python_is_the_reference_for_masking() -> None:
    # parse_frame_python unmasks with the fallback masker: check it is the plain XOR.
    data = os.urandom(1000)
    assert apply_mask_python(data, KEY) == bytes(b ^ KEY[i % 4] for i, b in enumerate(data))


# -- the parser's direct mode: one copy per received byte ----------------------------------


@pytest.mark.parametrize("allocate", ALLOCATORS)
def test_direct_mode_fills_the_payload_in_place_and_releases_its_views(
    allocate: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    from syncws.protocol.frames import FrameParser

    monkeypatch.setattr(_accel, "payload_buffer", allocate)
    payload = os.urandom(300_000)
    wire = reference_frame(0x82, payload, key=None)
    parser = FrameParser()
    assert list(parser.feed(wire[:1000])) == []
    view = parser.begin_direct(64 * 1024, 1 << 30)
    assert view is not None and len(view) == len(wire) - 1000
    view[:100_000] = wire[1000:101_000]
    assert parser.direct_received(100_000) is None
    rest = parser.begin_direct(64 * 1024, 1 << 30)
    assert rest is not None
    with pytest.raises(ValueError):
        view[:1] = b"x"  # the earlier view was released when the next one was handed out
    rest[:] = wire[101_000:]
    frame = parser.direct_received(len(wire) - 101_000)
    assert frame is not None and frame.payload == payload and frame.fin
    with pytest.raises(ValueError):
        rest[:1] = b"x"  # no view can write into a payload that was handed out
    if allocate is not _accel.payload_buffer_python:
        assert type(frame.payload) is bytes  # the final object: no second copy needed
    assert list(parser.feed(b"\x81\x02ok")) == [(1, b"ok", True, False, False, False)]
