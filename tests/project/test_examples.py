"""The examples in examples/, run for real.

The Tk chat runs on a private Xvfb display (skipped only when Xvfb or tkinter is missing), the
Qt chat with PySide6 on QT_QPA_PLATFORM=offscreen (skipped when PySide6 is missing). The tests
drive their real widgets: type into the entry, press Send, watch the log, close the window.
Every example is also run once as a script, in a subprocess, as a user would start it.
"""

from __future__ import annotations

import gc
import importlib.util
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Dict, List, Optional

import pytest

from helpers import wait_no_syncws_threads  # tests/ is on sys.path
from gui_support import qt_application, run_qt, run_tk, xvfb_display

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
MESSAGE = "héllo from the test ✓"


def load_example(name: str) -> ModuleType:
    """Import examples/<name>.py as a module (examples/ is not a package)."""
    module_name = f"syncws_example_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


def run_example(name: str, *args: str, env: Optional[Dict[str, str]] = None) -> str:
    """Run examples/<name>.py with this working tree's syncws; return its stdout (exit code 0)."""
    environ = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), environ.get("PYTHONPATH")]))
    environ.update(env or {})
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), *args],
        cwd=ROOT,
        env=environ,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=45,
    )
    assert result.returncode == 0, f"exit code {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def closed_port_url() -> str:
    """A ws:// URL on a loopback port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"ws://127.0.0.1:{port}/"


def assert_not_listening(port: int) -> None:
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def assert_chat_session(log: str, status: str, handler_threads: List[int]) -> None:
    """What the window shows after one message was typed, sent and echoed."""
    lines = log.splitlines()
    assert lines[0].startswith("connecting to ws://127.0.0.1:")
    assert lines[1].startswith("open ")
    assert lines[2:4] == [f"sent: {MESSAGE}", f"message: {MESSAGE}"]
    assert status.startswith("OPEN") and "buffered_amount=0" in status
    assert handler_threads and set(handler_threads) == {threading.main_thread().ident}


def record_handler_thread(ws: Any) -> List[int]:
    """The threads the socket's message events are delivered on, as they come."""
    threads: List[int] = []
    ws.add_event_listener("message", lambda event: threads.append(threading.get_ident()))
    return threads


@pytest.fixture(autouse=True)
def collect_garbage_on_this_thread():
    """Free the test's windows here, on the GUI thread.

    The windows and their sockets form reference cycles; left to the cyclic garbage collector,
    they could be freed on whichever thread happens to trigger a collection, and Qt crashes
    when a QObject with a running timer is deleted from another thread.
    """
    yield
    gc.collect()


# --- Tk ----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def display():
    """A private Xvfb display for the whole session: Tk keeps its X connection open after
    the window is destroyed, and exits the process if that server goes away while it runs."""
    pytest.importorskip("tkinter", reason="tkinter is not installed")
    with xvfb_display() as name:
        yield name


@pytest.fixture
def tk_root(display):
    import tkinter

    root = tkinter.Tk(screenName=display)
    yield root
    try:
        root.destroy()
    except tkinter.TclError:  # the app destroyed it, as it should
        pass


@pytest.fixture
def tk_chat(tk_root):
    """``tk_chat(url=None)`` -> a ``ChatApp`` in ``tk_root``; its socket and server are
    closed after the test even when the test failed half-way."""
    apps = []

    def make(url: Optional[str] = None) -> Any:
        app = load_example("tk_chat").ChatApp(tk_root, url)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.ws.close()  # does nothing once closed
        if app.server is not None:
            app.server.stop()


def tk_until(root: Any, condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Run the Tk main loop until ``condition()`` holds (checked every 10 ms)."""

    def check() -> None:
        if condition():
            root.quit()
        else:
            root.after(10, check)

    root.after(0, check)
    assert run_tk(root, timeout), "timed out waiting for the window"


def close_tk_window(root: Any) -> None:
    """Do what the window manager's close button does; run the loop until the window is gone."""
    root.tk.call(root.protocol("WM_DELETE_WINDOW"))
    assert run_tk(root, 10), "the window did not close"


def test_tk_chat_echoes_through_the_widgets_and_closes_cleanly(tk_root, tk_chat):
    app = tk_chat()
    port = app.server.port
    threads = record_handler_thread(app.ws)
    tk_until(tk_root, lambda: "\nopen " in app.log_text())

    app.entry.insert(0, MESSAGE)
    app.send_button.invoke()
    assert app.entry.get() == ""
    tk_until(tk_root, lambda: f"message: {MESSAGE}" in app.log_text() and app.ws.buffered_amount == 0)
    tk_until(tk_root, lambda: "buffered_amount=0" in app.status.cget("text"))  # refreshed by a timer
    assert_chat_session(app.log_text(), app.status.cget("text"), threads)

    close_tk_window(tk_root)
    assert app.closed
    assert app.transcript.splitlines()[-1] == "close: code=1000 reason='' was_clean=True"
    assert app.ws.ready_state == 3
    assert wait_no_syncws_threads() == []
    assert_not_listening(port)


def test_tk_chat_logs_error_and_close_for_an_unreachable_url(tk_root, tk_chat):
    app = tk_chat(closed_port_url())
    assert app.server is None
    tk_until(tk_root, lambda: "close:" in app.log_text())
    lines = app.log_text().splitlines()
    assert lines[1].startswith("error: ")
    assert lines[2] == "close: code=1006 reason='' was_clean=False"
    assert app.status.cget("text").startswith("CLOSED")

    app.entry.insert(0, "too late")
    app.send_button.invoke()
    assert app.log_text().splitlines()[-1] == "not sent (CLOSED): too late"

    tk_root.tk.call(tk_root.protocol("WM_DELETE_WINDOW"))  # nothing to wait for: gone at once
    assert app.closed
    assert wait_no_syncws_threads() == []


def test_tk_chat_against_a_given_url(tk_root, tk_chat, ws_server):
    app = tk_chat(ws_server.url)
    assert app.server is None
    tk_until(tk_root, lambda: "\nopen " in app.log_text())
    app.entry.insert(0, MESSAGE)
    app.entry.focus_force()  # key events go to the focus
    tk_until(tk_root, lambda: tk_root.focus_get() is app.entry)
    app.entry.event_generate("<Return>")  # the Enter key sends too
    tk_until(tk_root, lambda: f"message: {MESSAGE}" in app.log_text())
    close_tk_window(tk_root)
    assert app.transcript.endswith("close: code=1000 reason='' was_clean=True")
    assert wait_no_syncws_threads() == []


def test_tk_chat_selftest_script(display):
    out = run_example("tk_chat", "--selftest", env={"DISPLAY": display})
    assert "message: hello from the selftest" in out
    assert "close: code=1000 reason='' was_clean=True" in out
    assert out.splitlines()[-1] == "selftest passed"


# --- Qt ----------------------------------------------------------------------------------------


@pytest.fixture
def qt_app():
    app = qt_application()
    # The window is closed under a QEventLoop, not app.exec(); make sure that closing the
    # last window never quits the application other tests share.
    quit_on_close = app.quitOnLastWindowClosed()
    app.setQuitOnLastWindowClosed(False)
    yield app
    app.setQuitOnLastWindowClosed(quit_on_close)


@pytest.fixture
def qt_chat(qt_app):
    """``qt_chat(url=None)`` -> a shown ``ChatWindow``; after the test its socket and server
    are closed and the window is deleted on this thread, even when the test failed half-way."""
    import shiboken6

    windows = []

    def make(url: Optional[str] = None) -> Any:
        window = load_example("qt_chat").ChatWindow(url)
        windows.append(window)
        window.show()
        return window

    yield make
    for window in windows:
        window.ws.close()  # does nothing once closed
        if window.server is not None:
            window.server.stop()
        shiboken6.delete(window)


def qt_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Run a Qt event loop until ``condition()`` holds (checked every 10 ms)."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    poll = QTimer()
    poll.timeout.connect(lambda: condition() and loop.quit())
    poll.start(10)
    try:
        assert condition() or run_qt(loop, timeout), "timed out waiting for the window"
    finally:
        poll.stop()


def test_qt_chat_echoes_through_the_widgets_and_closes_cleanly(qt_chat):
    window = qt_chat()
    port = window.server.port
    threads = record_handler_thread(window.ws)
    qt_until(lambda: "\nopen " in window.log_text())

    window.entry.setText(MESSAGE)
    window.send_button.click()
    assert window.entry.text() == ""
    qt_until(lambda: f"message: {MESSAGE}" in window.log_text() and window.ws.buffered_amount == 0)
    qt_until(lambda: "buffered_amount=0" in window.status.text())  # refreshed by a timer
    assert_chat_session(window.log_text(), window.status.text(), threads)

    window.close()  # waits for the close event before the window goes
    assert window.isVisible()
    qt_until(lambda: window.closed)
    assert not window.isVisible()
    assert window.log_text().splitlines()[-1] == "close: code=1000 reason='' was_clean=True"
    assert window.status.text().startswith("CLOSED")
    assert wait_no_syncws_threads() == []
    assert_not_listening(port)


def test_qt_chat_logs_error_and_close_for_an_unreachable_url(qt_chat):
    window = qt_chat(closed_port_url())
    assert window.server is None
    qt_until(lambda: "close:" in window.log_text())
    lines = window.log_text().splitlines()
    assert lines[1].startswith("error: ")
    assert lines[2] == "close: code=1006 reason='' was_clean=False"

    window.entry.setText("too late")
    window.entry.returnPressed.emit()  # what the Enter key does
    assert window.log_text().splitlines()[-1] == "not sent (CLOSED): too late"

    window.close()  # nothing to wait for: gone at once
    assert window.closed and not window.isVisible()
    assert wait_no_syncws_threads() == []


def test_qt_chat_selftest_script():
    pytest.importorskip("PySide6.QtWidgets", reason="PySide6 is not installed (pip install PySide6)")
    out = run_example("qt_chat", "--selftest", env={"QT_QPA_PLATFORM": "offscreen"})
    assert "message: hello from the selftest" in out
    assert "close: code=1000 reason='' was_clean=True" in out
    assert out.splitlines()[-1] == "selftest passed"


# --- scripts -----------------------------------------------------------------------------------


def test_script_example():
    out = run_example("script").splitlines()
    assert out[0].startswith("connected to ws://127.0.0.1:")
    assert out[1:] == [
        "received 'hello'",
        "received 'message 0'",
        "received 'message 1'",
        "received 'message 2'",
        "received b'\\x00\\x01\\x02'",
        "closed: code=1000 reason='done' was_clean=True",
    ]


def test_callbacks_example():
    out = run_example("callbacks").splitlines()
    assert out[0] == "open: ready_state=OPEN"
    assert out[1].startswith("sent 3 messages, buffered_amount=")
    assert [line.split(" from ")[0] for line in out[2:5]] == [
        "message: 'hello'",
        "message: 'ünïcødé ✓'",
        "message: 'goodbye'",
    ]
    assert out[5:] == ["close: code=1000 reason='thanks' was_clean=True"]


def test_thread_pool_example():
    thread_pool = load_example("thread_pool")
    out = run_example("thread_pool").splitlines()
    expected = f"{thread_pool.MESSAGES}/{thread_pool.MESSAGES} echoes, in order, one handler at a time"
    assert [line for line in out if line.startswith("socket ")] == [
        f"socket {n}: {expected}; close code 1000" for n in range(thread_pool.SOCKETS)
    ]
    assert out[-1] == "all sockets delivered in order"


@pytest.mark.parametrize("name", ["script", "callbacks", "thread_pool"])
def test_examples_take_a_url(name, ws_server):
    run_example(name, ws_server.url)
    assert len(ws_server.connections) == (load_example("thread_pool").SOCKETS if name == "thread_pool" else 1)
