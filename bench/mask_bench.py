"""Throughput of WebSocket masking: the C accelerator and the pure-Python fallback.

Usage: python bench/mask_bench.py [--runs N] [--sizes 1M,16M] [--check]

Prints the median (and best) GB/s (10**9 bytes per second) over several timed runs for
each payload size; the median is the figure compared with the targets (accelerator
>= 5 GB/s, fallback >= 0.4 GB/s). ``--check`` exits with status 1 when one is missed.
Timings on a busy machine vary a lot, so CI should not gate on it.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

try:
    import syncws  # noqa: F401  (installed, or editable)
except ImportError:  # run from a source checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from syncws.protocol import mask

try:
    from syncws import _speedups  # type: ignore[attr-defined]
except ImportError:
    _speedups = None

TARGETS = {"accelerator": 5.0, "python": 0.4}
MIN_RUN_SECONDS = 0.05  # each timed run repeats the call until it lasts at least this


def parse_size(text: str) -> int:
    text = text.strip().upper()
    for suffix, factor in (("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30)):
        if text.endswith(suffix):
            return int(text[:-1]) * factor
    return int(text)


def format_size(size: int) -> str:
    for suffix, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {suffix}"
    return f"{size} B"


def measure(
    fn: Callable[[bytes, bytes], bytes], data: bytes, key: bytes, runs: int
) -> Tuple[float, float]:
    """Median and best GB/s of ``fn(data, key)`` over ``runs`` timed runs."""
    fn(data, key)  # warm up: allocator, caches, lazy imports
    start = time.perf_counter()
    fn(data, key)
    once = max(time.perf_counter() - start, 1e-9)
    repeat = max(1, int(MIN_RUN_SECONDS / once))
    rates: List[float] = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(repeat):
            fn(data, key)
        elapsed = time.perf_counter() - start
        rates.append(len(data) * repeat / elapsed / 1e9)
    return statistics.median(rates), max(rates)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="timed runs per measurement")
    parser.add_argument("--sizes", default="1M,16M", help="payload sizes, e.g. 1M,16M,64K")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)

    implementations: Dict[str, Callable[[bytes, bytes], bytes]] = {}
    if _speedups is not None:
        implementations["accelerator"] = _speedups.apply_mask
    implementations["python"] = mask.apply_mask_python

    detail = getattr(_speedups, "MASK_IMPLEMENTATION", None)
    print(
        f"Python {platform.python_version()} ({platform.machine()}); "
        f"accelerator: {'built, ' + str(detail) if _speedups is not None else 'not built'}; "
        f"in use: {'accelerator' if mask.ACCELERATED else 'python'}"
    )
    print(f"{'path':<12} {'size':>8} {'median':>8} {'best':>8} {'target':>8}  (GB/s)")

    key = os.urandom(4)
    missed = []
    for size in (parse_size(s) for s in args.sizes.split(",") if s.strip()):
        data = os.urandom(size)
        for name, fn in implementations.items():
            rate, best = measure(fn, data, key, args.runs)
            target = TARGETS[name]
            mark = "ok" if rate >= target else "MISSED"
            if rate < target:
                missed.append(f"{name} at {format_size(size)}")
            print(
                f"{name:<12} {format_size(size):>8} {rate:8.2f} {best:8.2f} "
                f"{'>=' + str(target):>8}  {mark}"
            )
    if _speedups is None:
        print("accelerator not built: install with a C compiler and Python headers")
    if missed:
        print("missed targets: " + ", ".join(missed))
    return 1 if (args.check and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
