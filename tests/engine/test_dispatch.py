"""Ordered delivery (syncws.dispatch.Dispatcher): one task at a time, in order, on any executor;
deferred to the connection's threads by default; bounded by max_queue."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import List

import pytest

from syncws.dispatch import Dispatcher

TIMEOUT = 5.0


def test_a_pool_runs_one_task_at_a_time_in_order() -> None:
    seen: List[int] = []
    running = []
    overlap = []
    done = threading.Event()

    def task(i: int) -> None:
        running.append(i)
        if len(running) > 1:
            overlap.append(i)
        time.sleep(0.0005)
        seen.append(i)
        running.remove(i)

    with ThreadPoolExecutor(8) as pool:
        dispatcher = Dispatcher(pool.submit, name="syncws-dispatch-test")
        for i in range(200):
            dispatcher.put(lambda i=i: task(i))
        dispatcher.put(done.set, final=True)
        assert done.wait(TIMEOUT)
    assert seen == list(range(200)) and overlap == []


def test_by_default_the_drain_is_deferred_to_the_putting_thread() -> None:
    dispatcher = Dispatcher(None, name="syncws-dispatch-test")
    assert dispatcher.deferring
    seen: List[str] = []
    dispatcher.put(lambda: seen.append("a"))
    dispatcher.put(lambda: seen.append("b"))  # joins the drain already scheduled
    assert seen == []  # nothing runs until a connection thread takes the drain
    drain = dispatcher.take_deferred()
    assert drain is not None and dispatcher.take_deferred() is None
    drain()
    assert seen == ["a", "b"]


def test_own_thread_delivers_from_the_first_event_to_the_final_one() -> None:
    dispatcher = Dispatcher(None, name="syncws-dispatch-own-test", own_thread=True)
    assert not dispatcher.deferring
    threads: List[str] = []
    done = threading.Event()
    dispatcher.put(lambda: threads.append(threading.current_thread().name))
    dispatcher.put(done.set, final=True)
    assert done.wait(TIMEOUT)
    assert threads == ["syncws-dispatch-own-test"]
    deadline = time.monotonic() + TIMEOUT
    while any(t.name == "syncws-dispatch-own-test" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the dispatcher's thread did not end"
        time.sleep(0.01)


def test_nothing_is_queued_after_the_final_task() -> None:
    seen: List[str] = []
    dispatcher = Dispatcher(lambda fn: fn(), name="syncws-dispatch-test")
    dispatcher.put(lambda: seen.append("close"), final=True)
    dispatcher.put(lambda: seen.append("late"))
    assert seen == ["close"]


def test_max_queue_blocks_the_reader_until_handlers_catch_up() -> None:
    gate = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        dispatcher = Dispatcher(pool.submit, name="syncws-dispatch-test", max_queue=2)
        dispatcher.put(gate.wait, weight=1)
        dispatcher.put(lambda: None, weight=1)
        assert dispatcher.pending == 2
        released = []
        reader = threading.Thread(target=lambda: released.append(dispatcher.wait_for_room()))
        reader.start()
        time.sleep(0.1)
        assert released == []  # blocked: two messages wait for a slow handler
        gate.set()
        reader.join(TIMEOUT)
        assert released == [True]
        assert dispatcher.wait_idle(TIMEOUT) and dispatcher.pending == 0
        assert dispatcher.wait_for_room() is False  # room: returns at once


def test_wake_releases_a_blocked_reader_for_good() -> None:
    dispatcher = Dispatcher(lambda fn: None, name="syncws-dispatch-test", max_queue=1)
    dispatcher.put(lambda: None, weight=1)  # never delivered: the executor drops it
    released = []
    reader = threading.Thread(target=lambda: released.append(dispatcher.wait_for_room()))
    reader.start()
    time.sleep(0.05)
    dispatcher.wake()
    reader.join(TIMEOUT)
    assert released == [True]


def test_an_executor_that_refuses_a_task_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    def refuse(fn: object) -> None:
        raise RuntimeError("cannot schedule new futures after shutdown")

    dispatcher = Dispatcher(refuse, name="syncws-dispatch-test")
    dispatcher.put(lambda: None)
    assert "refused a delivery task" in caplog.text
    assert dispatcher.wait_idle(0.1)  # nothing will ever run: nobody waits for it
