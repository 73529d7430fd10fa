"""A ``ReconnectingWebSocket`` in a real Tk program (Xvfb) and a real Qt program (offscreen):
while it waits between attempts, the GUI loop keeps running (a 10 ms timer never stalls for a
whole wait), and every handler runs on the GUI thread."""

from __future__ import annotations

import threading
import time
from typing import Any, List

import pytest

from syncws import Backoff, ReadyState, ReconnectingWebSocket
from syncws.executors import QtExecutor, TkExecutor

from gui_support import qt_application, run_qt, run_tk, xvfb_display
from .test_reconnecting import OPTS, Recorder, free_port

WAIT = 0.4  # each wait between attempts; a blocked loop would show a gap this long


@pytest.fixture(scope="module")
def x_display():
    with xvfb_display() as display, pytest.MonkeyPatch.context() as mp:
        mp.setenv("DISPLAY", display)
        yield display


@pytest.fixture
def tk_root(x_display):
    tkinter = pytest.importorskip("tkinter", reason="this Python has no tkinter")
    root = tkinter.Tk()
    yield root
    try:
        root.destroy()
    except tkinter.TclError:
        pass


@pytest.mark.gui
def test_tk_loop_stays_responsive_during_waits_and_runs_the_handlers(tk_root, ws_server_factory) -> None:
    root = tk_root
    port = free_port()
    tk_thread = threading.get_ident()
    ticks: List[float] = []

    def tick() -> None:
        ticks.append(time.monotonic())
        root.after(10, tick)

    rec = Recorder()
    servers: List[Any] = []

    def onclose(event: Any) -> None:
        rec(event)
        if event.reconnecting and rec.count("close") == 3 and not servers:
            servers.append(ws_server_factory(port=port))  # the server comes back
        if not event.reconnecting:
            root.quit()

    def onopen(event: Any) -> None:
        rec(event)
        event.target.send("from the GUI")

    def onmessage(event: Any) -> None:
        rec(event)
        event.target.close(1000, "done")

    ws = ReconnectingWebSocket(
        f"ws://127.0.0.1:{port}/",
        executor=TkExecutor(root),
        backoff=Backoff(initial=WAIT, factor=1.0, jitter=False),
        onopen=onopen, onmessage=onmessage, onerror=rec, onclose=onclose,
        **OPTS,
    )
    started = time.monotonic()
    root.after(0, tick)
    assert run_tk(root, timeout=20), "the final close never came"
    elapsed = time.monotonic() - started
    assert ws.ready_state is ReadyState.CLOSED
    assert rec.types() == ["error", "close"] * 3 + ["open", "message", "close"]
    assert set(rec.threads) == {tk_thread}  # every handler on the Tk thread
    assert elapsed >= 3 * WAIT * 0.9  # three waits really happened...
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    assert len(ticks) > elapsed / 0.05  # ...and the loop ticked all along
    assert max(gaps) < WAIT / 2, max(gaps)  # never blocked for a wait
    assert rec.of("message")[0].data == "from the GUI"


@pytest.mark.gui
def test_qt_loop_stays_responsive_during_waits_and_runs_the_handlers(ws_server_factory) -> None:
    qt_application()
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    port = free_port()
    gui_thread = threading.get_ident()
    ticks: List[float] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start(10)
    rec = Recorder()
    servers: List[Any] = []

    def onclose(event: Any) -> None:
        rec(event)
        if event.reconnecting and rec.count("close") == 3 and not servers:
            servers.append(ws_server_factory(port=port))
        if not event.reconnecting:
            loop.quit()

    ws = ReconnectingWebSocket(
        f"ws://127.0.0.1:{port}/",
        executor=QtExecutor(),
        backoff=Backoff(initial=WAIT, factor=1.0, jitter=False),
        onopen=lambda e: (rec(e), e.target.close()), onerror=rec, onclose=onclose,
        **OPTS,
    )
    started = time.monotonic()
    try:
        assert run_qt(loop, timeout=20), "the final close never came"
    finally:
        timer.stop()
    elapsed = time.monotonic() - started
    assert ws.ready_state is ReadyState.CLOSED
    assert rec.types() == ["error", "close"] * 3 + ["open", "close"]
    assert set(rec.threads) == {gui_thread}
    assert elapsed >= 3 * WAIT * 0.9
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    assert len(ticks) > elapsed / 0.05 and max(gaps) < WAIT / 2, max(gaps)
