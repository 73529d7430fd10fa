"""Tests for syncws.events: immutable DOM events and EventTarget semantics."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, List

import pytest

from syncws.errors import InvalidStateError
from syncws.events import (
    CloseEvent,
    ErrorEvent,
    Event,
    EventHandlerAttribute,
    EventTarget,
    MessageEvent,
)


class Target(EventTarget):
    """A minimal EventTarget with handler attributes, as WebSocket defines them."""

    onmessage = EventHandlerAttribute("message")
    onclose = EventHandlerAttribute("close")


def recorder(log: List[Any], name: str):  # type: ignore[no-untyped-def]
    def listener(event: Event) -> None:
        log.append(name)

    return listener


# --- events ----------------------------------------------------------------------------------

def test_event_defaults() -> None:
    before = time.time() * 1000
    event = Event("open")
    assert event.type == "open"
    assert event.target is None and event.current_target is None
    assert event.bubbles is False and event.cancelable is False
    assert event.default_prevented is False and event.defaultPrevented is False
    assert before <= event.time_stamp <= time.time() * 1000
    assert event.timeStamp == event.time_stamp
    assert event.currentTarget is None


def test_event_subclasses() -> None:
    message = MessageEvent("message", data=b"x", origin="ws://h:1")
    assert (message.data, message.origin, message.last_event_id) == (b"x", "ws://h:1", "")
    assert message.lastEventId == ""
    assert MessageEvent("message").data is None

    error = OSError("boom")
    err = ErrorEvent("error", error=error, message="failed")
    assert isinstance(err, Event)
    assert (err.error, err.message) == (error, "failed")
    assert ErrorEvent("error").error is None

    close = CloseEvent("close", was_clean=True, code=1000, reason="bye")
    assert (close.was_clean, close.wasClean, close.code, close.reason) == (True, True, 1000, "bye")
    default = CloseEvent("close")
    assert (default.was_clean, default.code, default.reason) == (False, 0, "")


@pytest.mark.parametrize(
    "event",
    [
        Event("open"),
        MessageEvent("message", data="x"),
        ErrorEvent("error"),
        CloseEvent("close", code=1000),
    ],
    ids=lambda e: type(e).__name__,
)
@pytest.mark.parametrize(
    "name",
    ["type", "target", "current_target", "time_stamp", "bubbles", "data", "code", "new_attr",
     "timeStamp", "wasClean"],
)
def test_events_are_immutable(event: Event, name: str) -> None:
    with pytest.raises(AttributeError):
        setattr(event, name, 1)
    with pytest.raises(AttributeError):
        delattr(event, name)


def test_event_constructor_type_checks() -> None:
    with pytest.raises(TypeError):
        Event(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        MessageEvent("message", origin=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        CloseEvent("close", code="1000")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        CloseEvent("close", reason=b"x")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ErrorEvent("error", message=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        MessageEvent("message", "data")  # type: ignore[misc]


def test_reprs() -> None:
    assert repr(Event("open")) == "<Event type='open'>"
    assert repr(CloseEvent("close", code=1006)) == (
        "<CloseEvent type='close' code=1006 reason='' was_clean=False>"
    )
    text = repr(MessageEvent("message", data="x" * 1000, origin="ws://h"))
    assert text.startswith("<MessageEvent type='message' data='xxx") and len(text) < 200
    assert "ConnectionRefusedError" in repr(ErrorEvent("error", error=ConnectionRefusedError()))


# --- listener registration and dispatch ------------------------------------------------

def test_dispatch_sets_target_and_runs_in_order() -> None:
    target = EventTarget()
    log: List[Any] = []

    def first(event: Event) -> None:
        log.append(("first", event.target, event.current_target))

    target.add_event_listener("x", first)
    target.add_event_listener("x", recorder(log, "second"))
    target.add_event_listener("y", recorder(log, "other type"))
    event = Event("x")
    assert target.dispatch_event(event) is True
    assert log == [("first", target, target), "second"]
    assert event.target is target
    assert event.current_target is None  # reset after dispatch, as in the DOM


def test_duplicate_listener_registers_once() -> None:
    target = EventTarget()
    log: List[Any] = []
    listener = recorder(log, "a")
    target.add_event_listener("x", listener)
    target.add_event_listener("x", listener)
    target.add_event_listener("x", listener, once=True)  # still the same registration
    target.dispatch_event(Event("x"))
    target.dispatch_event(Event("x"))
    assert log == ["a", "a"]


def test_bound_methods_compare_equal() -> None:
    class Obj:
        def __init__(self) -> None:
            self.calls = 0

        def on_event(self, event: Event) -> None:
            self.calls += 1

    obj = Obj()
    target = EventTarget()
    target.add_event_listener("x", obj.on_event)
    target.add_event_listener("x", obj.on_event)
    target.dispatch_event(Event("x"))
    target.remove_event_listener("x", obj.on_event)
    target.dispatch_event(Event("x"))
    assert obj.calls == 1


def test_remove_event_listener() -> None:
    target = EventTarget()
    log: List[Any] = []
    a, b = recorder(log, "a"), recorder(log, "b")
    target.add_event_listener("x", a)
    target.add_event_listener("x", b)
    target.remove_event_listener("x", a)
    target.remove_event_listener("x", a)  # not registered: no-op
    target.remove_event_listener("y", b)  # other type: no-op
    target.remove_event_listener("x", None)
    target.dispatch_event(Event("x"))
    assert log == ["b"]
    # Re-adding appends at the end.
    target.add_event_listener("x", a)
    target.dispatch_event(Event("x"))
    assert log == ["b", "b", "a"]


def test_once_listener_is_removed_before_it_runs() -> None:
    target = EventTarget()
    log: List[Any] = []

    def once(event: Event) -> None:
        log.append(("once", target._has_listeners("x")))
        target.dispatch_event(Event("x"))  # a nested dispatch does not run it again

    target.add_event_listener("x", once, once=True)
    target.dispatch_event(Event("x"))
    target.dispatch_event(Event("x"))
    assert log == [("once", False)]
    assert not target._has_listeners("x")


def test_listener_removed_during_dispatch_does_not_run() -> None:
    target = EventTarget()
    log: List[Any] = []
    later = recorder(log, "later")

    def remover(event: Event) -> None:
        log.append("remover")
        target.remove_event_listener("x", later)

    target.add_event_listener("x", remover)
    target.add_event_listener("x", later)
    target.dispatch_event(Event("x"))
    assert log == ["remover"]


def test_listener_added_during_dispatch_waits_for_the_next_event() -> None:
    target = EventTarget()
    log: List[Any] = []
    added = recorder(log, "added")

    def adder(event: Event) -> None:
        log.append("adder")
        target.add_event_listener("x", added)

    target.add_event_listener("x", adder)
    target.dispatch_event(Event("x"))
    assert log == ["adder"]
    target.dispatch_event(Event("x"))
    assert log == ["adder", "adder", "added"]


def test_listener_objects_with_handle_event() -> None:
    log: List[Any] = []

    class Snake:
        def handle_event(self, event: Event) -> None:
            log.append("snake")

    class Camel:
        def handleEvent(self, event: Event) -> None:  # noqa: N802
            log.append("camel")

    target = EventTarget()
    camel = Camel()
    target.add_event_listener("x", Snake())
    target.addEventListener("x", camel)
    target.dispatchEvent(Event("x"))
    target.removeEventListener("x", camel)
    target.dispatch_event(Event("x"))
    assert log == ["snake", "camel", "snake"]


def test_listener_type_checks() -> None:
    target = EventTarget()
    target.add_event_listener("x", None)  # ignored, as in the DOM
    assert not target._has_listeners("x")
    with pytest.raises(TypeError):
        target.add_event_listener("x", 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        target.add_event_listener(1, print)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        target.dispatch_event("x")  # type: ignore[arg-type]


def test_exceptions_are_logged_and_dispatch_continues(caplog: pytest.LogCaptureFixture) -> None:
    target = EventTarget()
    log: List[Any] = []

    def broken(event: Event) -> None:
        raise RuntimeError("listener failed")

    target.add_event_listener("x", broken)
    target.add_event_listener("x", recorder(log, "after"))
    with caplog.at_level(logging.ERROR, logger="syncws"):
        assert target.dispatch_event(Event("x")) is True
    assert log == ["after"]
    [record] = caplog.records
    assert record.name == "syncws"
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)


def test_stop_immediate_propagation() -> None:
    target = EventTarget()
    log: List[Any] = []

    def stopper(event: Event) -> None:
        log.append("stopper")
        event.stopImmediatePropagation()

    target.add_event_listener("x", stopper)
    target.add_event_listener("x", recorder(log, "skipped"))
    event = Event("x")
    target.dispatch_event(event)
    target.dispatch_event(event)  # flags are reset after each dispatch
    assert log == ["stopper", "stopper"]


def test_prevent_default_is_a_no_op() -> None:
    target = EventTarget()
    target.add_event_listener("x", lambda event: event.prevent_default())
    event = Event("x")
    assert target.dispatch_event(event) is True
    assert event.default_prevented is False


def test_redispatching_an_event_in_flight_is_an_error() -> None:
    target = EventTarget()
    errors: List[Any] = []

    def redispatch(event: Event) -> None:
        try:
            target.dispatch_event(event)
        except InvalidStateError as exc:
            errors.append(exc)

    target.add_event_listener("x", redispatch)
    target.dispatch_event(Event("x"))
    assert len(errors) == 1


def test_has_listeners() -> None:
    target = Target()
    assert not target._has_listeners("message")
    target.onmessage = print
    assert target._has_listeners("message")
    target.onmessage = None
    assert not target._has_listeners("message")


# --- event handler attributes ----------------------------------------------------------------

def test_handler_attribute_get_set() -> None:
    target = Target()
    assert target.onmessage is None
    target.onmessage = print
    assert target.onmessage is print
    assert target._get_event_handler("message") is print
    target.onmessage = None
    assert target.onmessage is None
    assert isinstance(Target.onmessage, EventHandlerAttribute)


@pytest.mark.parametrize("value", [42, "print", object()])
def test_handler_attribute_rejects_non_callables(value: object) -> None:
    target = Target()
    target.onmessage = print
    with pytest.raises(TypeError):
        target.onmessage = value  # type: ignore[assignment]
    assert target.onmessage is print  # unchanged


def test_handler_keeps_its_first_position() -> None:
    target = Target()
    log: List[Any] = []
    target.add_event_listener("message", recorder(log, "before"))
    target.onmessage = recorder(log, "handler 1")
    target.add_event_listener("message", recorder(log, "after"))
    target.onmessage = recorder(log, "handler 2")  # replaces, same position
    target.dispatch_event(Event("message"))
    assert log == ["before", "handler 2", "after"]


def test_handler_set_to_none_then_again_moves_to_the_end() -> None:
    target = Target()
    log: List[Any] = []
    target.onmessage = recorder(log, "handler")
    target.add_event_listener("message", recorder(log, "listener"))
    target.onmessage = None
    target.dispatch_event(Event("message"))
    assert log == ["listener"]
    target.onmessage = recorder(log, "handler")
    target.dispatch_event(Event("message"))
    assert log == ["listener", "listener", "handler"]


def test_handler_and_listener_with_the_same_function_both_run() -> None:
    target = Target()
    log: List[Any] = []
    listener = recorder(log, "f")
    target.onmessage = listener
    target.add_event_listener("message", listener)
    target.dispatch_event(Event("message"))
    target.remove_event_listener("message", listener)  # removes the listener, not the handler
    target.dispatch_event(Event("message"))
    assert log == ["f", "f", "f"]


def test_handler_changed_during_dispatch_runs_the_new_value() -> None:
    target = Target()
    log: List[Any] = []

    def first(event: Event) -> None:
        log.append("first")
        target.onmessage = recorder(log, "replacement")

    target.add_event_listener("message", first)
    target.onmessage = recorder(log, "original")
    target.dispatch_event(Event("message"))
    assert log == ["first", "replacement"]


def test_handler_removed_during_dispatch_does_not_run() -> None:
    target = Target()
    log: List[Any] = []

    def clear(event: Event) -> None:
        log.append("clear")
        target.onmessage = None

    target.add_event_listener("message", clear)
    target.onmessage = recorder(log, "handler")
    target.dispatch_event(Event("message"))
    assert log == ["clear"]


def test_handlers_of_different_types_are_independent() -> None:
    target = Target()
    log: List[Any] = []
    target.onmessage = recorder(log, "message")
    target.onclose = recorder(log, "close")
    target.dispatch_event(CloseEvent("close"))
    assert log == ["close"]


# --- threads ----------------------------------------------------------------------------------

def test_no_lock_held_while_listeners_run() -> None:
    """A listener that blocks must not stop other threads from adding/removing listeners."""
    target = EventTarget()
    entered, release = threading.Event(), threading.Event()

    def blocking(event: Event) -> None:
        entered.set()
        release.wait(5)

    target.add_event_listener("x", blocking)
    thread = threading.Thread(target=target.dispatch_event, args=(Event("x"),))
    thread.start()
    try:
        assert entered.wait(5)
        done = threading.Event()

        def mutate() -> None:
            target.add_event_listener("x", print)
            target.remove_event_listener("x", print)
            done.set()

        threading.Thread(target=mutate).start()
        assert done.wait(5)
    finally:
        release.set()
        thread.join(5)


def test_concurrent_dispatch_runs_a_once_listener_once() -> None:
    target = EventTarget()
    calls: List[Any] = []
    barrier = threading.Barrier(8)
    target.add_event_listener("x", calls.append, once=True)
    target.add_event_listener("x", lambda event: None)

    def dispatch() -> None:
        barrier.wait(5)
        target.dispatch_event(Event("x"))

    threads = [threading.Thread(target=dispatch) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert len(calls) == 1


def test_message_event_fields_must_be_str() -> None:
    with pytest.raises(TypeError):
        MessageEvent("message", last_event_id=5)  # type: ignore[arg-type]
