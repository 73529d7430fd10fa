"""DOM events and ``EventTarget``, as the WebSocket API uses them.

Events are immutable to users (assigning an attribute raises ``AttributeError``); only the
dispatcher sets ``target``/``current_target``. ``time_stamp`` is the creation time in
milliseconds since the Unix epoch (``time.time() * 1000``), a float like the DOM's
``DOMHighResTimeStamp`` but with the epoch as its origin, since there is no page load time.

``EventTarget`` follows the DOM's listener rules and the HTML standard's event handler
(``onmessage`` ...) rules; see the class docstring. Listeners run synchronously on the thread
that calls ``dispatch_event``; an exception a listener raises is logged to the ``"syncws"``
logger and the remaining listeners still run.
"""

from __future__ import annotations

import logging
import operator
import reprlib
import threading
import time
from typing import Any, Callable, Dict, Optional, Protocol, Tuple, Union, overload

from .errors import InvalidStateError

__all__ = [
    "Event",
    "MessageEvent",
    "ErrorEvent",
    "CloseEvent",
    "EventTarget",
    "EventHandlerAttribute",
    "EventListener",
    "EventHandler",
]

logger = logging.getLogger("syncws")

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 80


class _HandleEvent(Protocol):
    def handle_event(self, event: Any) -> object: ...


class _HandleEventCamel(Protocol):
    def handleEvent(self, event: Any) -> object: ...


#: A listener: a callable taking the event, or an object with ``handle_event(event)`` or
#: ``handleEvent(event)`` (looked up at each call, as the DOM does).
EventListener = Union[Callable[[Any], object], _HandleEvent, _HandleEventCamel]
#: The value of an ``on<type>`` attribute: a callable taking the event, or ``None``.
EventHandler = Optional[Callable[[Any], object]]


def _alias(name: str) -> property:
    """A read-only camelCase property that returns the snake_case attribute ``name``."""
    return property(operator.attrgetter(name), doc=f"Alias of ``{name}``.")


_osa = object.__setattr__  # events are read-only to users; this module writes their slots


def _set(event: Event, **values: Any) -> None:
    for name, value in values.items():
        _osa(event, name, value)


def _check_str(name: str, value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {value.__class__.__name__}")


class Event:
    """A DOM event: the ``open`` event, and the base of the other event classes.

    ``Event(type)`` creates one, e.g. to pass to ``dispatch_event``.

    Attributes: ``type``, ``target`` and ``current_target`` (the ``EventTarget`` while it is
    being dispatched; ``current_target`` returns to ``None`` afterwards, as in the DOM),
    ``time_stamp``, and ``bubbles``/``cancelable``/``default_prevented``, always ``False``.
    """

    __slots__ = {
        "type": "The event type: ``\"open\"``, ``\"message\"``, ``\"error\"`` or ``\"close\"``.",
        "target": "The WebSocket (``EventTarget``) the event was dispatched to, or ``None``.",
        "current_target": "The target while listeners run (``currentTarget``); ``None`` after.",
        "time_stamp": "Creation time, milliseconds since the Unix epoch (``timeStamp``).",
        "_dispatching": None,
        "_stop_immediate": None,
    }

    type: str
    target: Any  # the WebSocket (Any, so that event.target.send(...) type-checks)
    current_target: Any
    time_stamp: float
    _dispatching: bool
    _stop_immediate: bool

    bubbles = False
    cancelable = False
    default_prevented = False

    _repr_fields: Tuple[str, ...] = ()

    def __init__(self, type: str) -> None:
        if type.__class__ is not str:
            _check_str("event type", type)
        _osa(self, "type", type)
        _osa(self, "time_stamp", time.time() * 1000.0)
        _osa(self, "target", None)
        _osa(self, "current_target", None)
        _osa(self, "_dispatching", False)
        _osa(self, "_stop_immediate", False)

    def prevent_default(self) -> None:
        """Does nothing: these events are not cancelable (the DOM ignores it then too)."""

    def stop_propagation(self) -> None:
        """Does nothing: there is no tree to propagate through (kept for DOM compatibility)."""

    def stop_immediate_propagation(self) -> None:
        """Skip the listeners that have not run yet for the current dispatch."""
        _set(self, _stop_immediate=True)

    preventDefault = prevent_default
    stopPropagation = stop_propagation
    stopImmediatePropagation = stop_immediate_propagation
    timeStamp = _alias("time_stamp")
    currentTarget = _alias("current_target")
    defaultPrevented = _alias("default_prevented")

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{self.__class__.__name__} objects are read-only")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{self.__class__.__name__} objects are read-only")

    def __repr__(self) -> str:
        fields = "".join(f" {name}={_repr.repr(getattr(self, name))}" for name in self._repr_fields)
        return f"<{self.__class__.__name__} type={self.type!r}{fields}>"


class MessageEvent(Event):
    """A ``message`` event: ``data`` (``str``, ``bytes`` or ``Blob``), ``origin`` and
    ``last_event_id``.

    ``MessageEvent(type, *, data=None, origin="", last_event_id="")`` creates one.
    """

    __slots__ = {
        "data": "The message: ``str`` for text; for binary, a ``Blob`` or ``bytes`` as the "
        "socket's ``binary_type`` was when the event was dispatched.",
        "origin": "The origin of the URL, e.g. ``\"ws://example.com:8080\"``.",
        "last_event_id": "Always ``\"\"`` for WebSocket messages (``lastEventId``).",
    }

    data: Any
    origin: str
    last_event_id: str

    _repr_fields = ("data", "origin")

    def __init__(
        self, type: str, *, data: Any = None, origin: str = "", last_event_id: str = ""
    ) -> None:
        if origin.__class__ is not str:
            _check_str("origin", origin)
        if last_event_id.__class__ is not str:
            _check_str("last_event_id", last_event_id)
        Event.__init__(self, type)
        _osa(self, "data", data)
        _osa(self, "origin", origin)
        _osa(self, "last_event_id", last_event_id)

    lastEventId = _alias("last_event_id")


class ErrorEvent(Event):
    """An ``error`` event: ``error`` is the exception that caused it (or ``None``), ``message``
    a human-readable description.

    ``ErrorEvent(type, *, error=None, message="")`` creates one. The standard's ``error``
    event is a plain ``Event``; syncws adds the cause so that a program can tell a refused
    connection from a certificate failure or an HTTP status (:class:`~syncws.HandshakeError`).
    """

    __slots__ = {
        "error": "The exception that failed the connection (``OSError``, "
        "``HandshakeError``, ``ProtocolError``, ...), or ``None``.",
        "message": "A human-readable description of the error.",
    }

    error: Optional[BaseException]
    message: str

    _repr_fields = ("message", "error")

    def __init__(
        self, type: str, *, error: Optional[BaseException] = None, message: str = ""
    ) -> None:
        _check_str("message", message)
        super().__init__(type)
        _set(self, error=error, message=message)


class CloseEvent(Event):
    """A ``close`` event: ``was_clean``, ``code`` (e.g. 1000, 1005, 1006) and ``reason``.

    ``CloseEvent(type, *, was_clean=False, code=0, reason="")`` creates one, as in the
    standard.
    """

    __slots__ = {
        "was_clean": "Whether the closing handshake completed (``wasClean``).",
        "code": "The server's close code; 1005 if its Close frame had none; 1006 if the "
        "connection closed without a Close frame or failed.",
        "reason": "The server's close reason (``\"\"`` if none).",
    }

    was_clean: bool
    code: int
    reason: str

    _repr_fields = ("code", "reason", "was_clean")

    def __init__(
        self, type: str, *, was_clean: bool = False, code: int = 0, reason: str = ""
    ) -> None:
        _check_str("reason", reason)
        code = operator.index(code)
        super().__init__(type)
        _set(self, was_clean=bool(was_clean), code=code, reason=reason)

    wasClean = _alias("was_clean")


class _Listener:
    """One entry of a target's listener list; ``removed`` tells in-flight dispatches to skip it."""

    __slots__ = ("callback", "once", "is_handler", "removed")

    def __init__(self, callback: Any, once: bool = False, is_handler: bool = False) -> None:
        self.callback = callback
        self.once = once
        self.is_handler = is_handler
        self.removed = False


def _invoke(callback: Any, event: Event) -> None:
    """Call one listener; log (do not propagate) what it raises, as the DOM "reports" it."""
    try:
        if callback.__class__ is _FunctionType or callable(callback):
            callback(event)
        else:
            method = getattr(callback, "handle_event", None) or getattr(callback, "handleEvent")
            method(event)
    except Exception:
        logger.exception("exception in %r listener %r", event.type, callback)


_FunctionType = type(_invoke)


class EventTarget:
    """Listener registry and synchronous dispatch with DOM semantics.

    * Adding the same ``(type, listener)`` twice registers it once (``==`` comparison, so
      the bound method ``obj.f`` can be removed with another ``obj.f``).
    * Listeners run in registration order. The list is snapshotted when dispatch starts:
      listeners added meanwhile wait for the next event, listeners removed meanwhile do not
      run if not yet reached. A ``once`` listener is removed just before it is invoked.
    * Event handler attributes (``onopen`` ...): the first assignment of a callable appends
      a listener; assigning another callable keeps that position; ``None`` removes it (a later
      assignment appends it at the end again). The handler current at invocation time runs.

    Listeners may be added and removed from any thread while another thread dispatches; no
    listener is ever called with the registry lock held. Subclasses must call
    ``EventTarget.__init__``.
    """

    def __init__(self) -> None:
        # Copy-on-write: a dispatch reads the current tuple without taking the lock.
        self._event_listeners: Dict[str, Tuple[_Listener, ...]] = {}
        self._event_handlers: Dict[str, _Listener] = {}
        self._event_lock = threading.Lock()

    def add_event_listener(
        self, type: str, listener: Optional[EventListener], *, once: bool = False
    ) -> None:
        """Register ``listener`` for events of ``type`` (``None`` is ignored, as in the DOM).

        ``listener`` is a callable taking the event, or an object with a
        ``handle_event(event)`` (or ``handleEvent``) method. With ``once=True`` it is removed
        just before its first call. Adding the same listener twice registers it once.
        """
        _check_str("event type", type)
        if listener is None:
            return
        if not (callable(listener) or hasattr(listener, "handle_event")
                or hasattr(listener, "handleEvent")):
            raise TypeError(
                "listener must be callable or have a handle_event()/handleEvent() method, "
                f"not {listener.__class__.__name__}"
            )
        with self._event_lock:
            entries = self._event_listeners.get(type, ())
            if not any(not e.is_handler and e.callback == listener for e in entries):
                self._event_listeners[type] = entries + (_Listener(listener, once=bool(once)),)
        self._listeners_changed()

    def remove_event_listener(self, type: str, listener: Optional[EventListener]) -> None:
        """Unregister ``listener`` for ``type``; nothing happens if it was not registered."""
        _check_str("event type", type)
        if listener is None:
            return
        with self._event_lock:
            for entry in self._event_listeners.get(type, ()):
                if not entry.is_handler and entry.callback == listener:
                    self._unlink(type, entry)
                    break
        self._listeners_changed()

    def dispatch_event(self, event: Event) -> bool:
        """Run the listeners for ``event.type`` now, on this thread, with this as the target.

        Returns ``not event.default_prevented`` (always ``True``: these events are not
        cancelable). Raises ``InvalidStateError`` if ``event`` is already being dispatched.
        """
        if not isinstance(event, Event):
            raise TypeError(f"dispatch_event() needs an Event, not {event.__class__.__name__}")
        if event._dispatching:
            raise InvalidStateError("the event is already being dispatched")
        _osa(event, "_dispatching", True)
        _osa(event, "target", self)
        _osa(event, "current_target", self)
        unlinked = False
        try:
            for entry in self._event_listeners.get(event.type, ()):
                if event._stop_immediate:
                    break
                if entry.removed:
                    continue
                if entry.once:
                    with self._event_lock:
                        if not self._unlink(event.type, entry):
                            continue  # another thread's dispatch ran it first
                    unlinked = True
                _invoke(entry.callback, event)
        finally:
            _osa(event, "current_target", None)
            _osa(event, "_dispatching", False)
            _osa(event, "_stop_immediate", False)
            if unlinked:
                self._listeners_changed()
        return not event.default_prevented

    def _unlink(self, type: str, entry: _Listener) -> bool:
        """Remove ``entry`` (lock held); False if it was already removed."""
        if entry.removed:
            return False
        entry.removed = True
        self._event_listeners[type] = tuple(e for e in self._event_listeners[type] if e is not entry)
        return True

    def _has_listeners(self, type: str) -> bool:
        """Whether an event of ``type`` would run any listener (cheap and lock-free)."""
        return bool(self._event_listeners.get(type))

    def _get_event_handler(self, type: str) -> EventHandler:
        """The value of the ``on<type>`` attribute."""
        entry = self._event_handlers.get(type)
        return None if entry is None else entry.callback

    def _set_event_handler(self, type: str, value: EventHandler) -> None:
        """Assign the ``on<type>`` attribute, following the HTML event handler rules."""
        if value is not None and not callable(value):
            raise TypeError(
                f"on{type} must be a callable or None, not {value.__class__.__name__}"
            )
        with self._event_lock:
            entry = self._event_handlers.get(type)
            if value is None:
                if entry is not None:
                    del self._event_handlers[type]
                    self._unlink(type, entry)
            elif entry is not None:
                entry.callback = value
            else:
                entry = self._event_handlers[type] = _Listener(value, is_handler=True)
                self._event_listeners[type] = self._event_listeners.get(type, ()) + (entry,)
        self._listeners_changed()

    def _listeners_changed(self) -> None:
        """Called after listeners were added or removed (never with the registry lock held).

        A subclass whose lifetime depends on its listeners (the standard's garbage-collection
        rules for ``WebSocket``) re-evaluates it here.
        """

    def addEventListener(
        self, type: str, listener: Optional[EventListener], *, once: bool = False
    ) -> None:
        """Alias of ``add_event_listener(type, listener, once=once)``."""
        self.add_event_listener(type, listener, once=once)

    def removeEventListener(self, type: str, listener: Optional[EventListener]) -> None:
        """Alias of ``remove_event_listener(type, listener)``."""
        self.remove_event_listener(type, listener)

    def dispatchEvent(self, event: Event) -> bool:
        """Alias of ``dispatch_event(event)``."""
        return self.dispatch_event(event)


class EventHandlerAttribute:
    """Descriptor for an event handler attribute: ``onopen = EventHandlerAttribute("open")``.

    ``type`` is the event type it handles. Reading gives the handler or ``None``; assigning
    follows the HTML event handler rules (a callable or ``None``, anything else raises
    ``TypeError``): the first callable takes its place among the listeners, later ones keep
    that place, ``None`` removes it.
    """

    def __init__(self, type: str) -> None:
        _check_str("event type", type)
        self.type = type
        self.__doc__ = f"Handler for ``{type}`` events: a callable taking the event, or None."

    @overload
    def __get__(self, obj: None, objtype: Optional[type] = None) -> EventHandlerAttribute: ...

    @overload
    def __get__(self, obj: EventTarget, objtype: Optional[type] = None) -> EventHandler: ...

    def __get__(
        self, obj: Optional[EventTarget], objtype: Optional[type] = None
    ) -> Union[EventHandlerAttribute, EventHandler]:
        """The handler of ``obj`` (the descriptor itself when read on the class ``objtype``)."""
        if obj is None:
            return self
        return obj._get_event_handler(self.type)

    def __set__(self, obj: EventTarget, value: EventHandler) -> None:
        """Make ``value`` (a callable or ``None``) the handler of ``obj``."""
        obj._set_event_handler(self.type, value)
