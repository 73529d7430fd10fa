"""Callbacks as in a browser, and ``ws.wait()`` as the script's event loop.

    python examples/callbacks.py                 # against an echo server started in this process
    python examples/callbacks.py ws://host:port/ # or against any echo server

The constructor returns at once and connects in the background; passing the handlers to it
makes sure ``open`` is seen. The handlers run one at a time, in order, on a thread syncws
starts for this socket (the default executor). ``wait()`` returns once the ``close`` event
has been handled.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from typing import Any, Dict, List, Optional

import syncws
from syncws.server import WebSocketServer

OUTBOX = ["hello", "ünïcødé ✓", "goodbye"]


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", help="echo server URL (default: one in this process)")
    args = parser.parse_args(argv)
    received: List[str] = []
    closes: List[syncws.CloseEvent] = []

    def on_open(event: syncws.Event) -> None:
        ws = event.target
        print(f"open: ready_state={ws.ready_state.name}")
        for text in OUTBOX:
            ws.send(text)  # never blocks: queued, counted in buffered_amount
        print(f"sent {len(OUTBOX)} messages, buffered_amount={ws.buffered_amount}")

    def on_message(event: syncws.MessageEvent) -> None:
        received.append(event.data)
        print(f"message: {event.data!r} from {event.origin}")
        if len(received) == len(OUTBOX):
            event.target.close(1000, "thanks")

    def on_error(event: syncws.ErrorEvent) -> None:
        print(f"error: {event.message}")

    def on_close(event: syncws.CloseEvent) -> None:
        closes.append(event)
        print(f"close: code={event.code} reason={event.reason!r} was_clean={event.was_clean}")

    with ExitStack() as stack:
        options: Dict[str, Any] = {}
        url = args.url
        if url is None:
            url = stack.enter_context(WebSocketServer()).url
            options["proxy"] = None  # loopback: never through a proxy from the environment
        ws = syncws.WebSocket(
            url, onopen=on_open, onmessage=on_message, onerror=on_error, onclose=on_close, **options
        )
        if not ws.wait(15):  # a script's event loop: until the close event was handled
            print("no close event within 15 s")
            ws.close()
            return 1
    ok = received == OUTBOX and closes[0].was_clean and closes[0].code == 1000
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
