"""A plain blocking script: syncws.connect(), send(), recv(), no handlers at all.

    python examples/script.py                 # against an echo server started in this process
    python examples/script.py ws://host:port/ # or against any echo server

``connect()`` blocks until the socket is open (or raises ``HandshakeError``, ``TimeoutError``
or the ``OSError`` that stopped it); ``recv()`` returns the next message's data and raises
``ConnectionClosed`` once the socket is closed and every earlier message has been returned.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from typing import Any, Dict, List, Optional

import syncws
from syncws.server import WebSocketServer


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

        ws = syncws.connect(url, timeout=10, binary_type="arraybuffer", **options)
        with ws:  # closes with 1000 on the way out
            print(f"connected to {ws.url}")
            ws.send("hello")
            print(f"received {ws.recv(timeout=5)!r}")

            for i in range(3):  # send() queues and returns; the echoes come back in order
                ws.send(f"message {i}")
            ws.send(b"\x00\x01\x02")
            for _ in range(4):
                print(f"received {ws.recv(timeout=5)!r}")

            ws.close(1000, "done")
            try:
                ws.recv(timeout=5)
            except syncws.ConnectionClosed as closed:
                print(f"closed: code={closed.code} reason={closed.reason!r} "
                      f"was_clean={closed.was_clean}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
