"""A small Qt (PySide6) chat window on a syncws WebSocket.

    python examples/qt_chat.py                 # talks to an echo server started in this process
    python examples/qt_chat.py ws://host:port/ # or to any WebSocket server
    python examples/qt_chat.py --selftest      # sends one message, waits for the echo, exits

Type a line and press Enter (or Send): it goes out with ``ws.send()``, which never blocks, so
calling it from the GUI thread is fine. The log shows open, message, error and close events;
the status line shows ``ready_state`` and ``buffered_amount`` (bytes sent but not yet handed to
the operating system). The handlers run on the Qt main thread through
``syncws.executors.QtExecutor``, so they may touch the widgets; they must not block, or the
window freezes. Closing the window closes the socket with code 1000, waits for the ``close``
event (at most ``close_timeout`` seconds), then stops the in-process echo server.

Needs PySide6 (``pip install PySide6``). Without a display, run it with
``QT_QPA_PLATFORM=offscreen``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Dict, List, Optional

try:
    from PySide6.QtCore import QTimer
    from PySide6.QtGui import QCloseEvent
    from PySide6.QtWidgets import (
        QApplication,
        QHBoxLayout,
        QLabel,
        QLineEdit,
        QPlainTextEdit,
        QPushButton,
        QVBoxLayout,
        QWidget,
    )
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise SystemExit(f"this example needs PySide6: pip install PySide6 ({exc})") from exc

import syncws
from syncws.executors import QtExecutor
from syncws.server import WebSocketServer

CLOSE_TIMEOUT = 5.0
STATUS_INTERVAL = 0.1  # buffered_amount drains without an event: refresh the status line


def describe(data: Any) -> str:
    """A message's data as one log line: text as is, binary as its size."""
    if isinstance(data, str):
        return data
    return f"<{len(data)} bytes>"


class ChatWindow(QWidget):
    """The chat window and its socket; create the ``QApplication`` first.

    ``url=None`` starts syncws's echo server on a free loopback port for the life of the
    window. ``entry``, ``send_button``, ``log`` and ``status`` are the widgets; closing the
    window (``close()``) closes the socket first.
    """

    def __init__(self, url: Optional[str] = None) -> None:
        super().__init__()
        self.server: Optional[WebSocketServer] = None
        options: Dict[str, Any] = {}
        if url is None:
            self.server = WebSocketServer().start()
            url = self.server.url
            options["proxy"] = None  # loopback: never through a proxy from the environment
        self.closed = False  # the window has accepted its close event
        self._closing = False  # close(1000) sent, waiting for the close event
        self._gave_up = False  # the close event did not come in time

        self.setWindowTitle(f"syncws chat - {url}")
        self.log = QPlainTextEdit(readOnly=True)
        self.status = QLabel()
        self.entry = QLineEdit()
        self.entry.returnPressed.connect(self.send)
        self.send_button = QPushButton("Send")
        self.send_button.clicked.connect(self.send)
        bar = QHBoxLayout()
        bar.addWidget(self.entry)
        bar.addWidget(self.send_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.log)
        layout.addWidget(self.status)
        layout.addLayout(bar)
        self.resize(480, 320)

        self._status_timer = QTimer(self)
        self._status_timer.timeout.connect(self.update_status)
        self._status_timer.start(int(STATUS_INTERVAL * 1000))
        self._give_up = QTimer(self, singleShot=True)  # closes the window if no close event
        self._give_up.timeout.connect(self._close_anyway)

        self.ws = syncws.WebSocket(
            url,
            # A child of the window: it stops delivering once the window is deleted.
            executor=QtExecutor(self),
            binary_type="arraybuffer",
            close_timeout=CLOSE_TIMEOUT,
            onopen=self.on_open,
            onmessage=self.on_message,
            onerror=self.on_error,
            onclose=self.on_close,
            **options,
        )
        self.write(f"connecting to {self.ws.url}")
        self.update_status()

    # -- event handlers: they run on the Qt main thread, one at a time, in order --------------

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
            self.close()  # the socket is closed now: the window may go

    # -- user actions -----------------------------------------------------------------------

    def send(self) -> None:
        """Send the entry's text (the Send button and the Enter key)."""
        text = self.entry.text()
        if not text:
            return
        if self.ws.ready_state != syncws.OPEN:
            self.write(f"not sent ({self.ws.ready_state.name}): {text}")
            return
        self.ws.send(text)  # queues and returns at once
        self.entry.clear()
        self.write(f"sent: {text}")
        self.update_status()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        if self.ws.ready_state == syncws.CLOSED or self._gave_up:
            self._status_timer.stop()
            self._give_up.stop()
            if self.server is not None:
                self.server.stop()
            self.closed = True
            event.accept()
            return
        event.ignore()  # first close the socket; on_close closes the window again
        if not self._closing:
            self._closing = True
            self.send_button.setEnabled(False)
            self.ws.close(1000)
            self.update_status()
            self._give_up.start(int((CLOSE_TIMEOUT + 1.0) * 1000))

    def _close_anyway(self) -> None:
        self._gave_up = True
        self.close()

    # -- display ----------------------------------------------------------------------------

    def write(self, line: str) -> None:
        self.log.appendPlainText(line)

    def log_text(self) -> str:
        return self.log.toPlainText()

    def update_status(self) -> None:
        self.status.setText(f"{self.ws.ready_state.name}   buffered_amount={self.ws.buffered_amount}")


def selftest(window: ChatWindow, message: str = "hello from the selftest", timeout: float = 10.0) -> None:
    """Drive the window as a user would: type ``message``, press Send, close on the echo."""
    state = {"sent": False}
    timer = QTimer(window)

    def step() -> None:
        if not state["sent"] and window.ws.ready_state == syncws.OPEN:
            window.entry.setText(message)
            window.send_button.click()
            state["sent"] = True
        if f"message: {message}" in window.log_text() or window.ws.ready_state == syncws.CLOSED:
            timer.stop()
            window.close()

    timer.timeout.connect(step)
    timer.start(20)
    QTimer.singleShot(int(timeout * 1000), window, window.close)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="A Qt (PySide6) WebSocket chat window.")
    parser.add_argument("url", nargs="?", help="WebSocket URL (default: an in-process echo server)")
    parser.add_argument("--selftest", action="store_true",
                        help="send one message, wait for its echo, close and exit")
    args = parser.parse_args(argv)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = ChatWindow(args.url)
    window.show()
    message = "hello from the selftest"
    if args.selftest:
        selftest(window, message)
    app.exec()  # until the last window is closed
    if not args.selftest:
        return 0
    transcript = window.log_text()
    print(transcript)
    echoed = f"message: {message}" in transcript
    print("selftest passed" if echoed else "selftest FAILED: no echo")
    return 0 if echoed else 1


if __name__ == "__main__":
    sys.exit(main())
