"""Masking (RFC 6455 section 5.3): the C accelerator and the pure-Python fallback.

Both implementations are checked against a trivially correct per-byte reference on short
inputs and against each other on long ones. Tests that need ``syncws._speedups`` are
skipped when it was not compiled; set ``SYNCWS_REQUIRE_EXTENSIONS=1`` to make its absence
a failure instead (for CI runs that are expected to have a C compiler).
"""

from __future__ import annotations

import array
import os
import random
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable, List

import pytest

import syncws
from syncws.protocol import mask

try:
    from syncws import _speedups  # type: ignore[attr-defined]
except ImportError:  # not compiled: the C-specific tests are skipped
    _speedups = None

MaskFn = Callable[..., bytes]

needs_c = pytest.mark.skipif(_speedups is None, reason="syncws._speedups is not built")

IMPLEMENTATIONS: List[object] = [pytest.param(mask.apply_mask_python, id="python")]
IMPLEMENTATIONS.append(
    pytest.param(
        _speedups.apply_mask if _speedups is not None else None, id="c", marks=needs_c
    )
)

KEY = b"\x37\xfa\x21\x3d"

# Lengths around every boundary either implementation has: the C loops' 8/16/64-byte
# steps, a page, the Python fallback's 16 KiB chunks and the C GIL-release threshold.
SHORT_LENGTHS = list(range(0, 71))
LONG_LENGTHS = [
    4095,
    4096,
    4097,
    16 * 1024 - 1,
    16 * 1024,
    16 * 1024 + 1,
    3 * 16 * 1024 + 3,
    64 * 1024 - 1,
    64 * 1024,
    64 * 1024 + 5,
    1 << 20,
]


def reference(data: bytes, key: bytes) -> bytes:
    return bytes(b ^ key[i & 3] for i, b in enumerate(data))


def random_bytes(length: int, seed: int) -> bytes:
    if length == 0:
        return b""
    return random.Random(seed).getrandbits(8 * length).to_bytes(length, "little")


def random_key(seed: int) -> bytes:
    return random.Random(seed ^ 0x5A5A).getrandbits(32).to_bytes(4, "little")


# --- both implementations ---------------------------------------------------------------


@pytest.mark.parametrize("apply_mask", IMPLEMENTATIONS)
def test_short_lengths_match_reference(apply_mask: MaskFn) -> None:
    for length in SHORT_LENGTHS:
        data = random_bytes(length, length)
        key = random_key(length)
        assert apply_mask(data, key) == reference(data, key), length


@pytest.mark.parametrize("apply_mask", IMPLEMENTATIONS)
@pytest.mark.parametrize("length", [n for n in LONG_LENGTHS if n < (1 << 20)])
def test_long_lengths_match_reference(apply_mask: MaskFn, length: int) -> None:
    data = random_bytes(length, length)
    key = random_key(length)
    assert apply_mask(data, key) == reference(data, key)


@pytest.mark.parametrize("apply_mask", IMPLEMENTATIONS)
def test_masking_twice_restores_the_payload(apply_mask: MaskFn) -> None:
    data = random_bytes(1 << 20, 99)
    masked = apply_mask(data, KEY)
    assert masked != data
    assert apply_mask(masked, KEY) == data


@pytest.mark.parametrize("apply_mask", IMPLEMENTATIONS)
def test_known_vector(apply_mask: MaskFn) -> None:
    # RFC 6455 section 5.7: a masked "Hello" from a client.
    key = bytes.fromhex("37fa213d")
    assert apply_mask(b"Hello", key) == bytes.fromhex("7f9f4d5158")
    assert apply_mask(bytes.fromhex("7f9f4d5158"), key) == b"Hello"


@pytest.mark.parametrize("apply_mask", IMPLEMENTATIONS)
@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "memoryview-of-bytearray"])
def test_input_types(apply_mask: MaskFn, kind: str) -> None:
    data = random_bytes(1000, 7)
    wrapped = {
        "bytes": data,
        "bytearray": bytearray(data),
        "memoryview": memoryview(data),
        "memoryview-of-bytearray": memoryview(bytearray(data)),
    }[kind]
    result = apply_mask(wrapped, KEY)
    assert type(result) is bytes
    assert result == reference(data, KEY)


@pytest.mark.parametrize("apply_mask", IMPLEMENTATIONS)
@pytest.mark.parametrize("key_type", [bytes, bytearray, memoryview])
def test_key_types(apply_mask: MaskFn, key_type: Callable[[bytes], object]) -> None:
    data = random_bytes(100, 8)
    assert apply_mask(data, key_type(KEY)) == reference(data, KEY)


@pytest.mark.parametrize("apply_mask", IMPLEMENTATIONS)
@pytest.mark.parametrize("offset", range(8))
@pytest.mark.parametrize("length", [0, 1, 7, 63, 64, 65, 4097, 70000])
def test_unaligned_memoryview_slices(apply_mask: MaskFn, offset: int, length: int) -> None:
    backing = bytearray(random_bytes(length + 16, length + offset))
    view = memoryview(backing)[offset : offset + length]
    expected = reference(bytes(view), KEY)
    assert apply_mask(view, KEY) == expected


@pytest.mark.parametrize("apply_mask", IMPLEMENTATIONS)
def test_non_contiguous_and_multibyte_views(apply_mask: MaskFn) -> None:
    data = random_bytes(4096, 11)
    strided = memoryview(data)[1::3]
    assert apply_mask(strided, KEY) == reference(strided.tobytes(), KEY)
    ints = array.array("i", range(1000))
    assert apply_mask(ints, KEY) == reference(ints.tobytes(), KEY)
    assert apply_mask(memoryview(ints), KEY) == reference(ints.tobytes(), KEY)
    grid = memoryview(bytearray(data)).cast("B", (64, 64))
    assert apply_mask(grid, KEY) == reference(data, KEY)
    strided_key = memoryview(b"\x37\x00\xfa\x00\x21\x00\x3d\x00")[::2]
    assert apply_mask(data[:50], strided_key) == reference(data[:50], KEY)


@pytest.mark.parametrize("apply_mask", IMPLEMENTATIONS)
def test_result_is_independent_of_a_mutable_input(apply_mask: MaskFn) -> None:
    source = bytearray(random_bytes(200, 12))
    result = apply_mask(source, KEY)
    expected = reference(bytes(source), KEY)
    source[:] = bytes(len(source))
    assert result == expected


@pytest.mark.parametrize("apply_mask", IMPLEMENTATIONS)
@pytest.mark.parametrize("key", [b"", b"\x01", b"abc", b"abcde", b"abcdefgh"])
@pytest.mark.parametrize("length", [0, 1, 100])
def test_bad_key_length(apply_mask: MaskFn, key: bytes, length: int) -> None:
    with pytest.raises(ValueError, match="4 bytes"):
        apply_mask(bytes(length), key)


@pytest.mark.parametrize("apply_mask", IMPLEMENTATIONS)
@pytest.mark.parametrize("data", [None, 1234, "text", [1, 2, 3], 1.5])
def test_bad_data_type(apply_mask: MaskFn, data: object) -> None:
    with pytest.raises(TypeError):
        apply_mask(data, KEY)


@pytest.mark.parametrize("apply_mask", IMPLEMENTATIONS)
@pytest.mark.parametrize("key", [None, 1234, "abcd", [1, 2, 3, 4]])
def test_bad_key_type(apply_mask: MaskFn, key: object) -> None:
    with pytest.raises(TypeError):
        apply_mask(b"payload", key)


@pytest.mark.parametrize("apply_mask", IMPLEMENTATIONS)
def test_wrong_argument_count(apply_mask: MaskFn) -> None:
    with pytest.raises(TypeError):
        apply_mask(b"payload")
    with pytest.raises(TypeError):
        apply_mask(b"payload", KEY, KEY)


# --- the accelerator against the fallback ------------------------------------------------


@needs_c
@pytest.mark.parametrize("length", SHORT_LENGTHS + LONG_LENGTHS)
def test_c_matches_python(length: int) -> None:
    data = random_bytes(length, length + 1000)
    key = random_key(length + 1000)
    assert _speedups.apply_mask(data, key) == mask.apply_mask_python(data, key)


@needs_c
@pytest.mark.parametrize("offset", range(1, 8))
def test_c_matches_python_on_unaligned_large_slices(offset: int) -> None:
    backing = random_bytes((1 << 20) + 16, offset)
    view = memoryview(backing)[offset : offset + (1 << 20) + offset]
    key = random_key(offset)
    assert _speedups.apply_mask(view, key) == mask.apply_mask_python(view, key)


@needs_c
def test_c_with_concurrent_threads() -> None:
    # Large inputs are masked with the GIL released: several threads at once must each
    # get their own correct result.
    payloads = [random_bytes(1 << 20, 500 + i) for i in range(4)]
    expected = [mask.apply_mask_python(p, KEY) for p in payloads]
    results: List[object] = [None] * len(payloads)

    def work(index: int) -> None:
        for _ in range(5):
            results[index] = _speedups.apply_mask(payloads[index], KEY)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(payloads))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == expected


@needs_c
def test_c_reports_its_implementation() -> None:
    assert _speedups.MASK_IMPLEMENTATION in ("sse2", "uint64")


# --- which implementation is in use ------------------------------------------------------


def test_accelerated_flag_matches_what_is_loaded() -> None:
    disabled = bool(os.environ.get("SYNCWS_NO_EXTENSIONS"))
    assert mask.ACCELERATED is (_speedups is not None and not disabled)
    if mask.ACCELERATED:
        assert mask.apply_mask is _speedups.apply_mask
    else:
        assert mask.apply_mask is mask.apply_mask_python


def test_extension_built_when_required() -> None:
    if not os.environ.get("SYNCWS_REQUIRE_EXTENSIONS"):
        pytest.skip("set SYNCWS_REQUIRE_EXTENSIONS=1 to require the compiled accelerator")
    assert _speedups is not None, "syncws._speedups was not built (no C compiler/headers?)"


def _accelerated_in_subprocess(no_extensions: bool) -> str:
    env = dict(os.environ)
    env.pop("SYNCWS_NO_EXTENSIONS", None)
    if no_extensions:
        env["SYNCWS_NO_EXTENSIONS"] = "1"
    # Import the same syncws as this test run, whether installed or from the source tree.
    package_parent = str(Path(syncws.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(
        [package_parent] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    code = "import syncws.protocol.mask as m; print(m.ACCELERATED, m.apply_mask.__module__)"
    completed = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return completed.stdout.strip()


def test_env_var_forces_the_python_fallback() -> None:
    assert _accelerated_in_subprocess(no_extensions=True) == "False syncws.protocol.mask"


@needs_c
def test_accelerator_used_without_the_env_var() -> None:
    assert _accelerated_in_subprocess(no_extensions=False) == "True syncws._speedups"


def test_pure_python_fallback_without_the_accelerator(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the C accelerator was not compiled (no compiler at install time), masking falls
    back to the pure-Python function instead of failing the import."""
    monkeypatch.delenv("SYNCWS_NO_EXTENSIONS", raising=False)
    monkeypatch.setitem(sys.modules, "syncws._speedups", None)  # import raises ImportError
    monkeypatch.delattr(syncws, "_speedups", raising=False)  # not even from the package
    assert mask._load_accelerated() is mask.apply_mask_python
    monkeypatch.setenv("SYNCWS_NO_EXTENSIONS", "1")
    assert mask._load_accelerated() is mask.apply_mask_python
