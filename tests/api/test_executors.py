"""syncws.executors: the executor protocol, and the Tk and Qt adapters on real event loops.

Tk runs under a private Xvfb (skipped only when Xvfb is missing); Qt runs PySide6 with
QT_QPA_PLATFORM=offscreen (skipped when PySide6 is missing).
"""

from __future__ import annotations

import functools
import gc
import logging
import os
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, List, Tuple

import pytest

from syncws.executors import InlineExecutor, QtExecutor, TkExecutor, as_post

from gui_support import qt_application, run_qt, run_tk, xvfb_display  # tests/ is on sys.path

THREADS = 4
PER_THREAD = 250


@pytest.fixture(autouse=True)
def no_leftover_threads():
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 2
    while set(threading.enumerate()) - before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert set(threading.enumerate()) <= before


def post_from_threads(post: Callable[[Callable[[], None]], None], record: Callable[[int, int], None]) -> None:
    """Post PER_THREAD tasks from each of THREADS threads at once; join them."""
    start = threading.Barrier(THREADS)

    def poster(t: int) -> None:
        start.wait()
        for i in range(PER_THREAD):
            post(functools.partial(record, t, i))

    threads = [threading.Thread(target=poster, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)


def check_order(seen: List[Tuple[int, int, int]], gui_thread: int) -> None:
    assert len(seen) == THREADS * PER_THREAD
    by_thread: Dict[int, List[int]] = {}
    for t, i, ident in seen:
        assert ident == gui_thread
        by_thread.setdefault(t, []).append(i)
    assert by_thread == {t: list(range(PER_THREAD)) for t in range(THREADS)}


def latency_stats(delays: List[float]) -> str:
    ms = sorted(d * 1000 for d in delays)
    return (
        f"median {statistics.median(ms):.3f} ms, p99 {ms[int(len(ms) * 0.99) - 1]:.3f} ms, "
        f"max {ms[-1]:.3f} ms over {len(ms)} posts"
    )


def measure_latency(
    post: Callable[[Callable[[], None]], None], on_done: Callable[[], None]
) -> Tuple[List[float], threading.Thread]:
    """Start a thread posting 200 stamped tasks 1 ms apart.

    Returns the list the post -> run delays are added to, and the thread to join.
    """
    delays: List[float] = []
    count = 200

    def stamped(sent: float) -> None:
        delays.append(time.perf_counter() - sent)
        if len(delays) == count:
            on_done()

    def poster() -> None:
        for _ in range(count):
            post(functools.partial(stamped, time.perf_counter()))
            time.sleep(0.001)

    thread = threading.Thread(target=poster)
    thread.start()
    return delays, thread


def post_slow_tasks(executor: Callable[[Callable[[], None]], None], on_task: Callable[[int], None]) -> List[int]:
    """Post 40 tasks of 2 ms each; return the list of the ones done so far."""
    done: List[int] = []

    def slow(i: int) -> None:
        time.sleep(0.002)
        done.append(i)
        on_task(i)

    for i in range(40):
        executor(functools.partial(slow, i))
    return done


def post_from_a_thread(executor: Callable[[Callable[[], None]], None], fn: Callable[[], None]) -> None:
    """Post fn 100 times from another thread, which must not block."""

    def poster() -> None:
        for _ in range(100):
            executor(fn)

    thread = threading.Thread(target=poster)
    thread.start()
    thread.join(2)
    assert not thread.is_alive()


# --- as_post -----------------------------------------------------------------------------------


def test_as_post_none_means_dispatcher_thread():
    assert as_post(None) is None


def test_as_post_submit_runs_on_pool_and_propagates_submit_errors(caplog):
    pool = ThreadPoolExecutor(max_workers=2)
    post = as_post(pool)
    assert callable(post)
    ran = threading.Event()
    idents = []
    post(lambda: (idents.append(threading.get_ident()), ran.set()))
    assert ran.wait(5)
    assert idents != [threading.get_ident()]

    def boom() -> None:
        raise ValueError("in a pool task")

    with caplog.at_level(logging.ERROR, logger="syncws"):
        post(boom)
        pool.shutdown(wait=True)
    assert any("in a pool task" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)
    with pytest.raises(RuntimeError):
        post(lambda: None)


def test_as_post_callable_is_used_as_is():
    def post(fn):
        fn()

    assert as_post(post) is post
    inline = InlineExecutor()
    assert as_post(inline) is inline


def test_inline_runs_on_calling_thread_and_logs_errors(caplog):
    inline = InlineExecutor()
    seen = []
    inline(lambda: seen.append(threading.get_ident()))
    assert seen == [threading.get_ident()]

    def boom() -> None:
        raise ValueError("inline boom")

    with caplog.at_level(logging.ERROR, logger="syncws"):
        inline(boom)  # logged, not raised into the reader thread
    assert "inline boom" in caplog.text


@pytest.mark.parametrize("bad", [42, "executor", object(), [print]])
def test_as_post_rejects_other_values(bad):
    with pytest.raises(TypeError, match="submit"):
        as_post(bad)


@pytest.mark.parametrize("cls", [InlineExecutor, ThreadPoolExecutor])
def test_as_post_rejects_a_class(cls):
    with pytest.raises(TypeError, match=rf"{cls.__name__}\(\)"):
        as_post(cls)


def test_import_pulls_in_no_gui_toolkit():
    code = (
        "import sys, syncws.executors\n"
        "gui = [m for m in sys.modules if m.split('.')[0] in ('tkinter', '_tkinter', 'PySide6', 'PyQt6', 'PyQt5')]\n"
        "assert not gui, gui\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)


def test_qt_executor_without_binding_says_what_to_install(monkeypatch):
    for binding in ("PySide6", "PyQt6", "PyQt5"):
        monkeypatch.setitem(sys.modules, binding, None)  # makes the import fail
        monkeypatch.setitem(sys.modules, binding + ".QtCore", None)
    with pytest.raises(ImportError, match=r"pip install PySide6.*syncws\[qt\]"):
        QtExecutor()


# --- Tk ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
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
        pass  # the test destroyed it


@pytest.mark.gui
def test_tk_reports_tcl_build(tk_root):
    threaded = tk_root.tk.call("info", "exists", "tcl_platform(threaded)") and tk_root.tk.eval(
        "set tcl_platform(threaded)"
    )
    print(f"\nTcl {tk_root.tk.call('info', 'patchlevel')}, threaded: {bool(int(threaded or 0))}")


@pytest.mark.gui
@pytest.mark.parametrize("poll_interval", [None, 0.005], ids=["pipe", "polling"])
def test_tk_runs_in_order_on_main_thread(tk_root, poll_interval):
    executor = TkExecutor(tk_root, poll_interval=poll_interval)
    seen: List[Tuple[int, int, int]] = []

    def record(t: int, i: int) -> None:
        seen.append((t, i, threading.get_ident()))
        if len(seen) == THREADS * PER_THREAD:
            tk_root.quit()

    poster = threading.Thread(target=post_from_threads, args=(executor, record))
    poster.start()
    finished = run_tk(tk_root, timeout=10)
    poster.join(5)
    assert finished
    check_order(seen, threading.main_thread().ident)


@pytest.mark.gui
@pytest.mark.parametrize("poll_interval", [None, 0.005], ids=["pipe", "polling"])
def test_tk_latency(tk_root, poll_interval):
    executor = TkExecutor(tk_root, poll_interval=poll_interval)
    delays, poster = measure_latency(executor, tk_root.quit)
    finished = run_tk(tk_root, timeout=10)
    poster.join(5)
    assert finished
    print(f"\nTk ({'pipe' if poll_interval is None else 'polling 5 ms'}) post -> run: {latency_stats(delays)}")
    assert statistics.median(delays) < 0.05  # loose: the machine may be busy


@pytest.mark.gui
def test_tk_long_batches_yield_to_tk(tk_root):
    executor = TkExecutor(tk_root, max_batch_time=0.01)
    timer_saw: List[int] = []
    idle_saw: List[int] = []

    def on_task(i: int) -> None:
        if i == 1:  # as when a handler changes a widget: Tk redraws from an idle callback
            tk_root.after_idle(lambda: idle_saw.append(len(done)))
        if i == 39:
            tk_root.quit()

    done = post_slow_tasks(executor, on_task)
    tk_root.after(20, lambda: timer_saw.append(len(done)))
    assert run_tk(tk_root, timeout=10)
    assert done == list(range(40))
    # Both ran between batches, not after the ~80 ms of tasks.
    assert timer_saw and timer_saw[0] < 40
    assert idle_saw and idle_saw[0] < 40


@pytest.mark.parametrize("widget", [None, "root", 42])
def test_tk_executor_of_something_that_is_not_a_widget_is_a_type_error(widget):
    pytest.importorskip("tkinter", reason="this Python has no tkinter")
    with pytest.raises(TypeError, match="TkExecutor needs a Tk widget"):
        TkExecutor(widget)


@pytest.mark.gui
@pytest.mark.parametrize("poll_interval", [None, 0.005], ids=["pipe", "polling"])
def test_tk_executor_made_off_the_tk_thread_is_a_clear_runtime_error(tk_root, poll_interval):
    threaded = tk_root.tk.call("info", "exists", "tcl_platform(threaded)") and int(
        tk_root.tk.eval("set tcl_platform(threaded)")
    )
    if not threaded:
        pytest.skip("a non-threaded Tcl cannot tell which thread calls it")
    outcome: List[object] = []

    def construct() -> None:
        started = time.monotonic()
        try:
            TkExecutor(tk_root, poll_interval=poll_interval)
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            outcome.extend([type(exc), str(exc)])  # not the exception: its frames hold Tk objects
        outcome.append(time.monotonic() - started)

    # Tk objects of earlier tests must not be collected on the other thread (Tcl aborts).
    gc.collect()
    gc.disable()
    try:
        thread = threading.Thread(target=construct)
        thread.start()
        thread.join(10)
    finally:
        gc.enable()
    error_type, message, elapsed = outcome
    assert error_type is RuntimeError
    assert "create TkExecutor in the thread that runs the Tk main loop" in str(message)
    assert isinstance(elapsed, float) and elapsed < 0.5  # not after Tcl's 1 s wait for a loop
    TkExecutor(tk_root).close()  # on the Tk thread it works


@pytest.mark.gui
def test_tk_task_errors_are_logged_and_delivery_goes_on(tk_root, caplog):
    executor = TkExecutor(tk_root)

    def boom() -> None:
        raise ValueError("tk boom")

    executor(boom)
    executor(tk_root.quit)
    with caplog.at_level(logging.ERROR, logger="syncws"):
        assert run_tk(tk_root, timeout=5)
    assert "tk boom" in caplog.text


@pytest.mark.gui
def test_tk_post_never_blocks_while_the_loop_is_busy(tk_root):
    executor = TkExecutor(tk_root)
    ran: List[int] = []
    took: List[float] = []

    def poster() -> None:
        start = time.perf_counter()
        for i in range(100):
            executor(lambda i=i: ran.append(i))
        took.append(time.perf_counter() - start)

    thread = threading.Thread(target=poster)
    thread.start()  # the main thread is not in mainloop: a Tcl call from there would wait
    thread.join(5)
    assert took and took[0] < 0.5
    assert ran == []
    executor(tk_root.quit)
    assert run_tk(tk_root, timeout=5)
    assert ran == list(range(100))


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.gui
@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_tk_posting_after_destroy_drops_quietly(tk_root, caplog):
    fds = open_fds()
    executor = TkExecutor(tk_root)
    ran: List[str] = []
    executor(lambda: ran.append("queued before destroy"))
    tk_root.destroy()
    assert open_fds() == fds  # the wake-up pipe is closed

    with caplog.at_level(logging.DEBUG, logger="syncws"):
        post_from_a_thread(executor, lambda: ran.append("after destroy"))
        executor(lambda: ran.append("after destroy, main thread"))
    assert ran == []
    assert "dropped" in caplog.text


@pytest.mark.gui
def test_tk_task_that_destroys_the_root(tk_root):
    executor = TkExecutor(tk_root)
    ran: List[int] = []
    executor(lambda: ran.append(1))
    executor(tk_root.destroy)  # mainloop ends: no window left
    executor(lambda: ran.append(2))
    assert run_tk(tk_root, timeout=5)
    assert ran == [1]
    executor(lambda: ran.append(3))
    assert ran == [1]


# --- Qt ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def qt_app():
    return qt_application()


@pytest.fixture
def qt_loop(qt_app):
    from PySide6.QtCore import QEventLoop

    return QEventLoop()


@pytest.mark.gui
def test_qt_runs_in_order_on_main_thread(qt_loop):
    executor = QtExecutor()
    seen: List[Tuple[int, int, int]] = []

    def record(t: int, i: int) -> None:
        seen.append((t, i, threading.get_ident()))
        if len(seen) == THREADS * PER_THREAD:
            qt_loop.quit()

    poster = threading.Thread(target=post_from_threads, args=(executor, record))
    poster.start()
    finished = run_qt(qt_loop, timeout=10)
    poster.join(5)
    assert finished
    check_order(seen, threading.main_thread().ident)


@pytest.mark.gui
def test_qt_latency(qt_loop):
    executor = QtExecutor()
    delays, poster = measure_latency(executor, qt_loop.quit)
    finished = run_qt(qt_loop, timeout=10)
    poster.join(5)
    assert finished
    print(f"\nQt (PySide6, invokeMethod) post -> run: {latency_stats(delays)}")
    assert statistics.median(delays) < 0.05


@pytest.mark.gui
def test_qt_task_errors_are_logged_and_delivery_goes_on(qt_loop, caplog):
    executor = QtExecutor()

    def boom() -> None:
        raise ValueError("qt boom")

    executor(boom)
    executor(qt_loop.quit)
    with caplog.at_level(logging.ERROR, logger="syncws"):
        assert run_qt(qt_loop, timeout=5)
    assert "qt boom" in caplog.text


@pytest.mark.gui
def test_qt_long_batches_yield_to_qt(qt_loop):
    from PySide6.QtCore import QTimer

    executor = QtExecutor(max_batch_time=0.01)
    timer_saw: List[int] = []
    done = post_slow_tasks(executor, lambda i: i == 39 and qt_loop.quit())
    QTimer.singleShot(20, lambda: timer_saw.append(len(done)))
    assert run_qt(qt_loop, timeout=10)
    assert done == list(range(40))
    assert timer_saw and timer_saw[0] < 40


@pytest.mark.gui
@pytest.mark.parametrize("how", ["parent deleted", "closed"])
def test_qt_dropped_after_parent_deleted_or_close(qt_loop, caplog, how):
    import shiboken6
    from PySide6.QtCore import QObject, QTimer

    parent = QObject()
    executor = QtExecutor(parent)
    ran: List[str] = []
    executor(lambda: ran.append("before"))
    executor(qt_loop.quit)
    assert run_qt(qt_loop, timeout=5)
    assert ran == ["before"]

    with caplog.at_level(logging.DEBUG, logger="syncws"):
        executor(lambda: ran.append("queued, then dropped"))
        if how == "closed":
            closer = threading.Thread(target=executor.close)  # safe from any thread
            closer.start()
            closer.join(2)
        else:
            shiboken6.delete(parent)
        post_from_a_thread(executor, lambda: ran.append("after"))
        executor(lambda: ran.append("after, main thread"))
    QTimer.singleShot(50, qt_loop.quit)
    assert run_qt(qt_loop, timeout=5)
    assert ran == ["before"]
    assert "dropped" in caplog.text


@pytest.mark.gui
def test_qt_must_be_made_in_its_parents_thread(qt_app):
    errors: List[BaseException] = []

    def make() -> None:
        try:
            QtExecutor()
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=make)
    thread.start()
    thread.join(5)
    assert len(errors) == 1 and "thread" in str(errors[0])
