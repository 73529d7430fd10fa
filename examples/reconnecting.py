"""A ticker that survives its server restarting: ``syncws.ReconnectingWebSocket``.

    python examples/reconnecting.py ws://host:port/   # against any echo server: restart it!
    python examples/reconnecting.py                   # demo: an echo server in this process,
                                                      # restarted twice on the same port

Every ``--interval`` seconds the main thread sends ``tick N``. While the connection is down,
ticks wait in the socket's offline queue (``max_pending``) and go out, in order, right after
the next ``open`` handler. The handlers print every event: each ``open``, each echo, and each
``close`` with whether another attempt follows and when. Ctrl-C closes with 1000 and exits
once the final ``close`` event has been handled (exit status 0).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from typing import Any, Dict, List, Optional

import syncws
from syncws.server import WebSocketServer


def say(line: str) -> None:
    """Print one line in one write: handlers, the demo's server thread and the main thread all
    print, and ``print()`` writes the text and its newline separately, so two threads' lines
    could otherwise run together."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def on_open(event: syncws.Event) -> None:
    ws = event.target
    say(f"open: {ws.url} (after {ws.retry_count} failed attempts)")


def on_message(event: syncws.MessageEvent) -> None:
    say(f"echo: {event.data}")


def on_error(event: syncws.ErrorEvent) -> None:
    say(f"error: {event.message}")


def on_close(event: syncws.ReconnectingCloseEvent) -> None:
    if event.reconnecting:
        say(
            f"lost: code {event.code}; reconnecting in {event.retry_delay:.1f} s "
            f"(failed attempts: {event.target.retry_count})"
        )
    else:
        say(f"closed: code {event.code} {event.reason!r}; not reconnecting")


def restart_twice(
    server: WebSocketServer,
    ws: syncws.ReconnectingWebSocket,
    opened: threading.Semaphore,
    downtime: float,
    uptime: float,
) -> None:
    """The demo's flaky server, on the same port: each time the client is connected, serve it
    for ``uptime`` seconds, then stop for ``downtime``; after two restarts the demo closes the
    socket and stops the server."""
    port = server.port
    for _ in range(2):
        opened.acquire()
        time.sleep(uptime)
        say("-- demo: stopping the server")
        server.stop()
        time.sleep(downtime)
        server = WebSocketServer(port=port).start()
        say("-- demo: server is back")
    opened.acquire()
    time.sleep(uptime)
    ws.close(1000, "demo over")
    ws.wait(15)
    server.stop()


def tick_until_closed(ws: syncws.ReconnectingWebSocket, interval: float) -> None:
    """The main loop: a tick every ``interval`` until the socket's final close."""
    count = 0
    while not ws.wait(interval):
        if ws.ready_state in (syncws.CLOSING, syncws.CLOSED):
            continue  # closing: wait for the final close event
        count += 1
        try:
            ws.send(f"tick {count}")
        except syncws.BufferFull:
            say(f"offline queue full: tick {count} dropped")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", help="echo server URL (default: a demo server here)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between ticks")
    parser.add_argument("--max-delay", type=float, default=5.0, help="longest wait between attempts")
    args = parser.parse_args(argv)
    options: Dict[str, Any] = {}
    server: Optional[WebSocketServer] = None
    url = args.url
    if url is None:  # demo: our own echo server, restarted twice
        server = WebSocketServer().start()
        url = server.url
        options["proxy"] = None  # loopback: never through a proxy from the environment
    ws = syncws.ReconnectingWebSocket(
        url,
        backoff=syncws.Backoff(initial=0.5, max_delay=args.max_delay),
        max_pending=4096,  # bytes of ticks kept while offline
        onopen=on_open,
        onmessage=on_message,
        onerror=on_error,
        onclose=on_close,
        connect=False,  # listeners first, then connect: no open event can be missed
        **options,
    )
    if server is not None:
        opened = threading.Semaphore(0)
        ws.add_event_listener("open", lambda event: opened.release())
        restarts = (server, ws, opened, 2 * args.interval, 4 * args.interval)
        threading.Thread(target=restart_twice, args=restarts, daemon=True).start()
    ws.connect()
    try:
        tick_until_closed(ws, args.interval)
    except KeyboardInterrupt:
        say("Ctrl-C: closing")
        ws.close(1000, "bye")
        if not ws.wait(15):
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
