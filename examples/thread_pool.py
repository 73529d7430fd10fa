"""Several WebSockets sharing one ThreadPoolExecutor: in order per socket, parallel across them.

    python examples/thread_pool.py                 # against an echo server started in this process
    python examples/thread_pool.py ws://host:port/ # or against any echo server

Each socket sends numbered messages and its ``onmessage`` handler checks, for each echo, that
it is the next number and that no other handler of the same socket is running at that moment.
syncws hands a pool one event of a socket at a time, so both hold even with 8 workers; the
handlers of different sockets do run at the same time. Exits 0 when every check passed.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any, Dict, List, Optional

import syncws
from syncws.server import WebSocketServer

SOCKETS = 6
MESSAGES = 200
WORK = 0.0005  # seconds of pretend work per message, so that handlers get a chance to overlap


class Peak:
    """How many handlers run at once (across all sockets), and the most ever seen."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.most = 0

    def __enter__(self) -> None:
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self.now -= 1


class Client:
    """One socket that sends MESSAGES numbered messages and checks the echoes' order."""

    def __init__(self, number: int, url: str, pool: ThreadPoolExecutor, peak: Peak, **options: Any) -> None:
        self.number = number
        self.peak = peak
        self.received = 0
        self.problems: List[str] = []
        self.running = 0  # handlers of this socket running now: must never exceed 1
        self.close_code: Optional[int] = None
        self.ws = syncws.WebSocket(
            url,
            executor=pool,
            onopen=self.on_open,
            onmessage=self.on_message,
            onerror=lambda event: self.problems.append(f"error: {event.message}"),
            onclose=self.on_close,
            **options,
        )

    def on_open(self, event: syncws.Event) -> None:
        for i in range(MESSAGES):
            event.target.send(str(i))  # not self.ws: this may run before __init__ returns

    def on_message(self, event: syncws.MessageEvent) -> None:
        # No lock around self.running/self.received: syncws never runs two handlers of one
        # socket at once, which is exactly what these checks show.
        self.running += 1
        with self.peak:
            if self.running != 1:
                self.problems.append(f"{self.running} handlers running at once")
            if event.data != str(self.received):
                self.problems.append(f"expected {self.received}, got {event.data}")
            time.sleep(WORK)
            self.received += 1
        self.running -= 1
        if self.received == MESSAGES:
            event.target.close(1000, "all echoed")

    def on_close(self, event: syncws.CloseEvent) -> None:
        self.close_code = event.code


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", help="echo server URL (default: one in this process)")
    args = parser.parse_args(argv)
    with ExitStack() as stack:
        options: Dict[str, Any] = {}
        url = args.url
        if url is None:
            url = stack.enter_context(WebSocketServer()).url
            options["proxy"] = None  # loopback: never through a proxy from the environment
        pool = stack.enter_context(ThreadPoolExecutor(max_workers=8))
        peak = Peak()
        clients = [Client(n, url, pool, peak, **options) for n in range(SOCKETS)]
        ok = True
        for client in clients:
            finished = client.ws.wait(30)
            good = finished and client.received == MESSAGES and client.close_code == 1000
            good = good and not client.problems
            ok = ok and good
            print(f"socket {client.number}: {client.received}/{MESSAGES} echoes, "
                  f"{'in order, one handler at a time' if good else 'PROBLEMS'}; "
                  f"close code {client.close_code}")
            for problem in client.problems[:5]:
                print(f"    {problem}")
        print(f"most handlers running at once, across sockets: {peak.most} (pool of 8)")
    print("all sockets delivered in order" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
