#!/usr/bin/env python3
"""End-to-end throughput with and without permessage-deflate (issue 3).

    python bench/compression_bench.py              # 1 KiB and 64 KiB JSON-like text messages
    python bench/compression_bench.py --quick      # fewer messages, one run

syncws's client echoes JSON-like text messages through syncws's own server (run in a child
process, with permessage-deflate negotiated as the browsers' offer asks, i.e. 15-bit windows and
context takeover both ways), keeping a window of messages in flight. Each figure is the median of
``--runs`` runs; MB/s counts the application bytes of the messages echoed (one direction).
"wire/raw" is what permessage-deflate puts on the wire per byte of message, measured on the same
messages with syncws's codec.

Both ends are Python on one machine, so this measures CPU cost, not a network: compression
pays off where bandwidth, not CPU, is the limit.
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

import syncws  # noqa: E402
from syncws.protocol import deflate  # noqa: E402

SERVER = """
import sys
from syncws.protocol.deflate import server_negotiate
from syncws.server import WebSocketServer
with WebSocketServer(extensions=[server_negotiate]) as server:
    print(server.url, flush=True)
    sys.stdin.read()  # until the benchmark closes our stdin
"""


def json_messages(count, size, seed=0):
    """``count`` texts of ``size`` characters, consecutive pieces of a stream of JSON-like chat
    events: no message repeats another, as in real traffic."""
    rnd = random.Random(seed)
    words = ["hello", "there", "ok", "thanks", "see", "you", "tomorrow", "status", "online",
             "typing", "message", "reply", "channel", "price", "update"]
    events = []
    total = 0
    while total < count * size:
        event = json.dumps({
            "event": rnd.choice(["message", "presence", "typing", "trade"]),
            "user": {"id": rnd.randrange(10000), "name": f"user{rnd.randrange(500)}"},
            "text": " ".join(rnd.choices(words, k=rnd.randrange(1, 12))),
            "price": round(rnd.uniform(1, 60000), 2),
            "seq": rnd.randrange(10**9),
        })
        events.append(event)
        total += len(event) + 1
    corpus = ",".join(events)
    return [corpus[start : start + size] for start in range(0, count * size, size)]


def wire_ratio(messages):
    """Bytes on the wire per message byte with the default client codec and a 15-bit window."""
    _, codec = deflate.server_response({})  # any role does: both compress the same way
    raw = wire = 0
    for message in messages:
        payload = message.encode()
        data, _ = codec.encode(payload)
        raw += len(payload)
        wire += len(data)
    return wire / raw


def echo_run(url, messages, compression, window):
    """Seconds to echo ``messages`` with at most ``window`` of them in flight."""
    with syncws.connect(url, compression=compression, ping_interval=None) as ws:
        assert bool(ws.extensions) == bool(compression), ws.extensions
        for message in messages[:50]:  # warm-up
            ws.send(message)
            ws.recv(10)
        started = time.perf_counter()
        pending = 0
        for message in messages:
            ws.send(message)
            pending += 1
            if pending > window:
                ws.recv(10)
                pending -= 1
        for _ in range(pending):
            ws.recv(10)
        return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer messages, one run")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = 1 if args.quick else args.runs
    scale = 10 if args.quick else 1

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        url = server.stdout.readline().strip()
        print(f"syncws {syncws.__version__}, Python {sys.version.split()[0]}, "
              f"zlib {__import__('zlib').ZLIB_RUNTIME_VERSION}; server {url} (child process)")
        print(f"{'message':>8} {'compression':>11} {'messages/s':>11} {'MB/s':>8} {'wire/raw':>9}")
        for size, count, window in ((1024, 20000, 64), (64 * 1024, 1000, 16)):
            messages = json_messages(count // scale, size)
            ratio = wire_ratio(messages)
            for compression in (True, False):
                seconds = statistics.median(echo_run(url, messages, compression, window) for _ in range(runs))
                rate = len(messages) / seconds
                print(f"{size // 1024:>6}Ki {'on' if compression else 'off':>11} {rate:>11,.0f} "
                      f"{rate * size / 1e6:>8.1f} {ratio if compression else 1.0:>9.3f}")
    finally:
        server.stdin.close()
        server.wait(10)


if __name__ == "__main__":
    main()
