"""Command line: ``python -m syncws demo | serve | URL``.

- ``demo`` starts syncws's echo server on a free loopback port, connects to it and prints the
  events of a short session: the first thing a newcomer runs.
- ``serve`` runs the same echo server until interrupted.
- ``URL`` is an interactive client: each line typed is sent as a text message, messages
  received are printed, Ctrl-D (end of input) closes cleanly.
"""

from __future__ import annotations

import argparse
import logging
import queue
import ssl
import sys
import threading
import time
from typing import List, Optional, Sequence, TextIO

from ._version import __version__
from .blob import Blob
from .events import CloseEvent, ErrorEvent, Event, MessageEvent
from .websocket import WebSocket


def _show(data: object) -> str:
    if isinstance(data, Blob):
        data = data.bytes()
    if isinstance(data, bytes):
        return f"<{len(data)} bytes: {data[:32].hex(' ')}{' …' if len(data) > 32 else ''}>"
    return repr(data)


def demo() -> int:
    """Echo server + client, printing each event as the user's handlers would see it."""
    from .protocol.deflate import server_negotiate
    from .server import WebSocketServer

    print(f"syncws {__version__} demo")
    with WebSocketServer(extensions=[server_negotiate]) as server:
        print(f"echo server listening on {server.url}")
        done = threading.Event()
        outbox = ["Hello, syncws!", "ünïcødé ✓", b"\x00\x01\x02 binary"]

        def onopen(event: Event) -> None:
            ws = event.target
            print(f"open     ready_state={ws.ready_state.name} protocol={ws.protocol!r} "
                  f"extensions={ws.extensions!r}")
            for message in outbox:
                ws.send(message)
                print(f"sent     {_show(message)}  (buffered_amount={ws.buffered_amount})")

        received: List[object] = []

        def onmessage(event: MessageEvent) -> None:
            received.append(event.data)
            print(f"message  {_show(event.data)}  from {event.origin}")
            if len(received) == len(outbox):
                print("closing  code=1000 reason='demo finished'")
                event.target.close(1000, "demo finished")

        def onerror(event: ErrorEvent) -> None:
            print(f"error    {event.message}")

        def onclose(event: CloseEvent) -> None:
            print(f"close    code={event.code} reason={event.reason!r} was_clean={event.was_clean}")
            done.set()

        ws = WebSocket(
            server.url,
            onopen=onopen,
            onmessage=onmessage,
            onerror=onerror,
            onclose=onclose,
            proxy=None,
        )
        if not ws.wait(15):
            print("the demo did not finish within 15 s", file=sys.stderr)
            return 1
        ok = ws.ready_state == WebSocket.CLOSED and len(received) == len(outbox)
        print("done." if ok else "something went wrong.")
        return 0 if ok else 1


def serve(host: str, port: int) -> int:
    """Run the echo server; a port that cannot be bound is a message and status 1."""
    from .server import serve_forever

    try:
        serve_forever(host, port)
    except OSError as exc:
        print(f"python -m syncws serve: cannot listen on {host} port {port}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def interactive(
    url: str,
    protocols: Sequence[str],
    headers: Sequence[str],
    compression: bool,
    linger: float = 0.5,
    ssl_context: Optional[ssl.SSLContext] = None,
) -> int:
    """Lines from stdin go out as text; messages received are printed; EOF closes cleanly.

    At end of input the client sends what is queued, then waits until the server has been
    quiet for ``linger`` seconds before closing, so replies to piped input are not lost.
    ``ssl_context`` is the ``ssl=`` of the connection (None: syncws's default).
    """
    pairs = []
    for header in headers:
        name, sep, value = header.partition(":")
        if not sep:
            print(f"--header needs 'Name: value', got {header!r}", file=sys.stderr)
            return 2
        pairs.append((name.strip(), value.strip()))
    opened = threading.Event()
    closed = threading.Event()
    status = {"code": 0}
    last_message = [time.monotonic()]

    def onmessage(event: MessageEvent) -> None:
        last_message[0] = time.monotonic()
        print(f"< {_show(event.data)}", flush=True)

    def onopen(event: Event) -> None:
        ws = event.target
        extra = f" protocol={ws.protocol!r}" if ws.protocol else ""
        print(f"* connected to {ws.url}{extra} (Ctrl-D to close)", file=sys.stderr)
        opened.set()

    def onclose(event: CloseEvent) -> None:
        print(f"* closed: code={event.code} reason={event.reason!r} clean={event.was_clean}",
              file=sys.stderr)
        status["code"] = 0 if event.was_clean else 1
        opened.set()
        closed.set()

    ws = WebSocket(
        url,
        list(protocols) or None,
        headers=pairs,
        compression=compression,
        binary_type="arraybuffer",
        onopen=onopen,
        onmessage=onmessage,
        onerror=lambda e: print(f"* error: {e.message}", file=sys.stderr),
        onclose=onclose,
        ssl=ssl_context,
    )
    opened.wait()
    lines = _read_lines_in_background(sys.stdin)
    try:
        while not closed.is_set():
            try:
                line = lines.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is None:
                break  # end of input: the user is done
            ws.send(line.rstrip("\n"))
    except KeyboardInterrupt:
        pass
    else:
        if closed.is_set():
            # Refused, or the server went away while the user still had input to send.
            print("* the connection has ended; exiting", file=sys.stderr)
            ws.wait()
            return 1
        ws.flush(5)
        last_message[0] = max(last_message[0], time.monotonic())
        while not closed.is_set() and time.monotonic() - last_message[0] < linger:
            closed.wait(linger / 10)
    ws.close(1000)
    ws.wait()
    return status["code"]


def _read_lines_in_background(stream: TextIO) -> "queue.Queue[Optional[str]]":
    """Lines of ``stream`` on a queue, ``None`` at its end, read by a daemon thread.

    The main thread then waits for input *or* the end of the connection: a blocking read on
    the main thread would keep waiting for a line after the server has gone. The thread may
    stay blocked in ``readline`` when the connection ends first; it is a daemon and the
    process is exiting then.
    """
    lines: "queue.Queue[Optional[str]]" = queue.Queue()

    def read() -> None:
        try:
            for line in stream:
                lines.put(line)
        finally:
            lines.put(None)

    threading.Thread(target=read, name="syncws-cli-stdin", daemon=True).start()
    return lines


_INSECURE_WARNING = (
    "*** WARNING: --insecure: the server's certificate is NOT verified. Anyone between you and\n"
    "*** the server can read and change this session. Use --cafile for a private CA instead."
)


def client_context(cafile: Optional[str], insecure: bool) -> Optional[ssl.SSLContext]:
    """The ``ssl=`` for ``--cafile``/``--insecure``, or None for syncws's default.

    ``--insecure`` turns verification off and prints a warning to stderr; a ``--cafile`` that
    cannot be read raises ``OSError`` (or ``ssl.SSLError`` for a file that holds no PEM).
    """
    if insecure:
        print(_INSECURE_WARNING, file=sys.stderr, flush=True)
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if cafile is not None:
        return ssl.create_default_context(cafile=cafile)
    return None


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "demo":
        argparse.ArgumentParser(
            prog="python -m syncws demo",
            description="Start syncws's echo server on a free loopback port, connect to it and "
            "print the events of a short session.",
        ).parse_args(args[1:])
        return demo()
    if args and args[0] == "serve":
        parser = argparse.ArgumentParser(
            prog="python -m syncws serve",
            description="Run syncws's echo server (permessage-deflate on) until Ctrl-C.",
        )
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
        parser.add_argument("--port", type=int, default=8765, help="port to listen on")
        options = parser.parse_args(args[1:])
        return serve(options.host, options.port)
    parser = argparse.ArgumentParser(
        prog="python -m syncws",
        description="Interactive WebSocket client. Also: 'python -m syncws demo' and "
        "'python -m syncws serve [--port N]'.",
    )
    parser.add_argument("url", help="ws://, wss://, http:// or https:// URL")
    parser.add_argument("--protocol", action="append", default=[], help="subprotocol to offer")
    parser.add_argument("--header", action="append", default=[], help='extra header "Name: value"')
    parser.add_argument("--no-compression", action="store_true", help="do not offer permessage-deflate")
    parser.add_argument(
        "--linger", type=float, default=0.5, metavar="SECONDS",
        help="at end of input, wait until the server is quiet this long before closing",
    )
    trust = parser.add_mutually_exclusive_group()
    trust.add_argument(
        "--cafile", metavar="PEM",
        help="trust the CA certificates in this file for wss:// (instead of certifi's bundle, "
        "or SSL_CERT_FILE/SSL_CERT_DIR when set)",
    )
    trust.add_argument(
        "--insecure", action="store_true",
        help="do not verify the server's certificate (dangerous: for testing only)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log frames (DEBUG)")
    parser.add_argument("--version", action="version", version=f"syncws {__version__}")
    options = parser.parse_args(args)
    if options.verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(name)s %(message)s")
    try:
        context = client_context(options.cafile, options.insecure)
    except OSError as exc:  # ssl.SSLError too: a file that holds no certificate
        parser.error(f"--cafile {options.cafile}: {exc.strerror or exc}")
    return interactive(
        options.url,
        options.protocol,
        options.header,
        not options.no_compression,
        options.linger,
        ssl_context=context,
    )


if __name__ == "__main__":
    sys.exit(main())
