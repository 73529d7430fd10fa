"""A small Tkinter chat window on a syncws WebSocket.

    python examples/tk_chat.py                 # talks to an echo server started in this process
    python examples/tk_chat.py ws://host:port/ # or to any WebSocket server
    python examples/tk_chat.py --selftest      # sends one message, waits for the echo, exits

Type a line and press Enter (or Send): it goes out with ``ws.send()``, which never blocks, so
calling it from the GUI thread is fine. The log shows open, message, error and close events;
the status line shows ``ready_state`` and ``buffered_amount`` (bytes sent but not yet handed to
the operating system). The handlers run on the Tk main loop through
``syncws.executors.TkExecutor``, so they may touch the widgets; they must not block, or the
window freezes. Closing the window closes the socket with code 1000, waits for the ``close``
event (at most ``close_timeout`` seconds), then stops the in-process echo server.
"""

from __future__ import annotations

import argparse
import sys
import tkinter as tk
from typing import Any, Callable, Dict, List, Optional, Set

import syncws
from syncws.executors import TkExecutor
from syncws.server import WebSocketServer

CLOSE_TIMEOUT = 5.0
STATUS_INTERVAL = 0.1  # buffered_amount drains without an event: refresh the status line


def describe(data: Any) -> str:
    """A message's data as one log line: text as is, binary as its size."""
    if isinstance(data, str):
        return data
    return f"<{len(data)} bytes>"


class ChatApp:
    """The chat window's widgets and socket, built inside ``root`` (a ``tk.Tk``).

    ``url=None`` starts syncws's echo server on a free loopback port for the life of the
    window. ``entry``, ``send_button``, ``log`` and ``status`` are the widgets;
    :meth:`close` is what the window's close button does.
    """

    def __init__(self, root: tk.Tk, url: Optional[str] = None) -> None:
        self.root = root
        self.server: Optional[WebSocketServer] = None
        options: Dict[str, Any] = {}
        if url is None:
            self.server = WebSocketServer().start()
            url = self.server.url
            options["proxy"] = None  # loopback: never through a proxy from the environment
        self.closed = False  # the window is gone
        self.transcript = ""  # the log's text, kept when the window is destroyed
        self._closing = False
        self._timers: Set[str] = set()

        root.title(f"syncws chat - {url}")
        bar = tk.Frame(root)
        bar.pack(side=tk.BOTTOM, fill=tk.X)
        self.entry = tk.Entry(bar)
        self.entry.pack(side=tk.LEFT, fill=tk.X, expand=True)
        self.entry.bind("<Return>", lambda event: self.send())
        self.send_button = tk.Button(bar, text="Send", command=self.send)
        self.send_button.pack(side=tk.RIGHT)
        self.status = tk.Label(root, anchor=tk.W)
        self.status.pack(side=tk.BOTTOM, fill=tk.X)
        self.log = tk.Text(root, width=60, height=15, state=tk.DISABLED)
        self.log.pack(side=tk.TOP, fill=tk.BOTH, expand=True)
        root.protocol("WM_DELETE_WINDOW", self.close)
        self.entry.focus_set()

        self.ws = syncws.WebSocket(
            url,
            executor=TkExecutor(root),
            binary_type="arraybuffer",
            close_timeout=CLOSE_TIMEOUT,
            onopen=self.on_open,
            onmessage=self.on_message,
            onerror=self.on_error,
            onclose=self.on_close,
            **options,
        )
        self.write(f"connecting to {self.ws.url}")
        self._refresh_status()

    # -- event handlers: they run on the Tk main loop, one at a time, in order ----------------

    def on_open(self, event: syncws.Event) -> None:
        self.write(f"open (protocol={self.ws.protocol!r}, extensions={self.ws.extensions!r})")
        self.update_status()

    def on_message(self, event: syncws.MessageEvent) -> None:
        self.write(f"message: {describe(event.data)}")

    def on_error(self, event: syncws.ErrorEvent) -> None:
        self.write(f"error: {event.message}")

    def on_close(self, event: syncws.CloseEvent) -> None:
        self.write(f"close: code={event.code} reason={event.reason!r} was_clean={event.was_clean}")
        self.update_status()
        if self._closing:
            self._finish()

    # -- user actions -----------------------------------------------------------------------

    def send(self) -> None:
        """Send the entry's text (the Send button and the Enter key)."""
        text = self.entry.get()
        if not text:
            return
        if self.ws.ready_state != syncws.OPEN:
            self.write(f"not sent ({self.ws.ready_state.name}): {text}")
            return
        self.ws.send(text)  # queues and returns at once
        self.entry.delete(0, tk.END)
        self.write(f"sent: {text}")
        self.update_status()

    def close(self) -> None:
        """Close the socket with 1000, then the window once the close event has arrived."""
        if self.closed or self._closing:
            return
        if self.ws.ready_state == syncws.CLOSED:
            self._finish()
            return
        self._closing = True
        self.send_button.configure(state=tk.DISABLED)
        self.ws.close(1000)
        self.update_status()
        # Should the close event not come in time, close the window anyway.
        self.later(CLOSE_TIMEOUT + 1.0, self._finish)

    def _finish(self) -> None:
        if self.closed:
            return
        self.closed = True
        for timer in self._timers:
            self.root.after_cancel(timer)
        self.transcript = self.log_text()
        self.root.destroy()  # also ends mainloop() and the TkExecutor
        if self.server is not None:
            self.server.stop()

    # -- display ----------------------------------------------------------------------------

    def write(self, line: str) -> None:
        self.log.configure(state=tk.NORMAL)
        self.log.insert(tk.END, line + "\n")
        self.log.configure(state=tk.DISABLED)
        self.log.see(tk.END)

    def log_text(self) -> str:
        return self.log.get("1.0", "end-1c").rstrip("\n")

    def update_status(self) -> None:
        self.status.configure(
            text=f"{self.ws.ready_state.name}   buffered_amount={self.ws.buffered_amount}"
        )

    def _refresh_status(self) -> None:
        self.update_status()
        self.later(STATUS_INTERVAL, self._refresh_status)

    def later(self, seconds: float, fn: Callable[[], None]) -> None:
        """``root.after``, cancelled when the window closes (Tcl timers outlive a window)."""

        def run() -> None:
            self._timers.discard(timer)
            fn()

        timer = self.root.after(int(seconds * 1000), run)
        self._timers.add(timer)


def selftest(app: ChatApp, message: str = "hello from the selftest", timeout: float = 10.0) -> None:
    """Drive the window as a user would: type ``message``, press Send, close on the echo."""
    state = {"sent": False}

    def step() -> None:
        if app.closed:
            return
        if not state["sent"] and app.ws.ready_state == syncws.OPEN:
            app.entry.insert(0, message)
            app.send_button.invoke()
            state["sent"] = True
        if f"message: {message}" in app.log_text() or app.ws.ready_state == syncws.CLOSED:
            app.close()
        else:
            app.later(0.02, step)

    app.later(0, step)
    app.later(timeout, app.close)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="A Tkinter WebSocket chat window.")
    parser.add_argument("url", nargs="?", help="WebSocket URL (default: an in-process echo server)")
    parser.add_argument("--selftest", action="store_true",
                        help="send one message, wait for its echo, close and exit")
    args = parser.parse_args(argv)
    root = tk.Tk()
    app = ChatApp(root, args.url)
    message = "hello from the selftest"
    if args.selftest:
        selftest(app, message)
    root.mainloop()
    if not args.selftest:
        return 0
    print(app.transcript)
    echoed = f"message: {message}" in app.transcript
    print("selftest passed" if echoed else "selftest FAILED: no echo")
    return 0 if echoed else 1


if __name__ == "__main__":
    sys.exit(main())
