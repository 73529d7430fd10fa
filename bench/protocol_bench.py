#!/usr/bin/env python3
"""CPU cost of syncws's protocol layer per message, without sockets or threads.

    python bench/protocol_bench.py            # with the compiled accelerator, if built
    SYNCWS_NO_EXTENSIONS=1 python bench/protocol_bench.py   # pure Python

Measures what the reader and writer threads spend in ``syncws.protocol`` for each message:
building a small frame (``send_message``), parsing small frames as they arrive in 16 KiB reads
(``receive_data``), and receiving a 1 MiB message in direct mode (``direct_buffer`` /
``receive_direct``, with a ``memcpy`` into the view standing in for the kernel's copy in
``recv_into``). Times are thread CPU time (``time.thread_time``), median of several repeats,
so they hold up on a machine that other work keeps busy, unlike the wall-clock figures of
``bench/run.py``. Uses only the protocol API, so it runs against older syncws versions too.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from typing import Callable, List

from syncws.protocol import mask
from syncws.protocol.connection import ClientConnection, Message

REPEATS = 7
SMALL = 64
SMALL_COUNT = 20_000
BIG = 1 << 20
BIG_COUNT = 32
READ = 16 * 1024  # the engine's first receive buffer size
DIRECT_READ = 256 * 1024  # a typical recv_into() result for a large frame on loopback


def server_frame(opcode: int, payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 127)) + n.to_bytes(8, "big")
    return head + payload


def cpu_ns(run: Callable[[], int]) -> float:
    """Median thread CPU time per unit of work (ns); ``run`` returns the number of units."""
    samples = []
    for _ in range(REPEATS):
        start = time.thread_time_ns()
        units = run()
        samples.append((time.thread_time_ns() - start) / units)
    return statistics.median(samples)


def send_small() -> int:
    connection = ClientConnection()
    payload = os.urandom(SMALL)
    send = connection.send_message
    for _ in range(SMALL_COUNT):
        send(payload, False)
    return SMALL_COUNT


def receive_stream(wire: bytes, expected: int) -> int:
    connection = ClientConnection()
    view = memoryview(wire)
    received = 0
    for start in range(0, len(wire), READ):
        for event in connection.receive_data(view[start : start + READ]):
            if type(event) is Message:
                received += 1
    assert received == expected, received
    return expected


SMALL_BINARY = server_frame(2, os.urandom(SMALL)) * SMALL_COUNT
SMALL_TEXT = server_frame(1, b"x" * SMALL) * SMALL_COUNT
BIG_WIRE = server_frame(2, os.urandom(BIG))


def receive_big() -> int:
    """BIG_COUNT 1 MiB binary messages the way the engine reads them."""
    connection = ClientConnection()
    source = memoryview(BIG_WIRE)
    for _ in range(BIG_COUNT):
        position = min(READ, len(BIG_WIRE))
        events: List[object] = list(connection.receive_data(source[:position]))
        while not events:
            direct = connection.direct_buffer()
            if direct is None:
                step = min(READ, len(BIG_WIRE) - position)
                events = connection.receive_data(source[position : position + step])
            else:
                step = min(DIRECT_READ, len(direct), len(BIG_WIRE) - position)
                direct[:step] = source[position : position + step]  # the kernel's copy
                events = connection.receive_direct(step)
            position += step
        message = events[0]
        assert type(message) is Message and len(message.data) == BIG  # type: ignore[attr-defined]
    return BIG_COUNT


def main() -> int:
    try:
        from syncws.protocol import _accel  # type: ignore[attr-defined]

        accelerated = f"mask {mask.ACCELERATED}, protocol helpers {_accel.ACCELERATED}"
    except ImportError:
        accelerated = f"mask {mask.ACCELERATED}, no protocol helpers (older syncws)"
    print(f"syncws from {os.path.dirname(mask.__file__)}; accelerated: {accelerated}")
    print(f"Python {sys.version.split()[0]}; thread CPU time, median of {REPEATS}")
    send = cpu_ns(send_small)
    binary = cpu_ns(lambda: receive_stream(SMALL_BINARY, SMALL_COUNT))
    text = cpu_ns(lambda: receive_stream(SMALL_TEXT, SMALL_COUNT))
    big = cpu_ns(receive_big)
    print(f"send 64 B binary message:      {send:8.0f} ns")
    print(f"receive 64 B binary message:   {binary:8.0f} ns")
    print(f"receive 64 B text message:     {text:8.0f} ns")
    print(f"receive 1 MiB binary message:  {big / 1000:8.1f} µs ({BIG / big * 1e3:.0f} MB/s of CPU)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
