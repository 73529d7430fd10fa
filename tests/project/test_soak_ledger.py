"""The chaos soak's ledger (bench/soak.py) catches what it claims to catch.

The soak passes only if it sees no lost, duplicated, corrupted or stray message; these tests
feed its checker the echoes a buggy client would deliver and check that each is counted.
"""

from __future__ import annotations

import importlib.util
import gc
import os
import random
import threading
from types import SimpleNamespace
from typing import Any, List

import pytest

_PATH = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "bench", "soak.py")


@pytest.fixture(scope="module")
def soak() -> Any:
    spec = importlib.util.spec_from_file_location("soak", _PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class RecordingSocket:
    """Stands in for the socket the client sends on: keeps what it was given, in order."""

    def __init__(self) -> None:
        self.sent: List[Any] = []

    def send(self, data: Any) -> None:
        self.sent.append(data)


def make_client(soak: Any, payloads: Any) -> Any:
    client = soak.SoakClient(7, "ws://127.0.0.1:1/", {}, payloads, random.Random(3), rate=1000.0, window=4)
    client.ws = RecordingSocket()
    return client


def event(client: Any, data: Any = None, **fields: Any) -> Any:
    return SimpleNamespace(target=client.ws, data=data, **fields)


@pytest.fixture(scope="module")
def payloads(soak: Any) -> Any:
    return soak.Payloads(random.Random(1))


def open_and_send(client: Any, count: int) -> List[Any]:
    client.on_open(event(client))
    client.pump(10**9)  # far past every scheduled send time: the window fills
    return list(client.ws.sent[-count:])


def test_echoes_in_order_are_delivered(soak: Any, payloads: Any) -> None:
    client = make_client(soak, payloads)
    messages = open_and_send(client, 4)
    for message in messages:
        client.on_message(event(client, message))
    tally = client.tally
    assert (tally.delivered, tally.lost, tally.duplicated, tally.corrupted, tally.stray) == (4, 0, 0, 0, 0)


def test_a_second_echo_is_a_duplicate(soak: Any, payloads: Any) -> None:
    client = make_client(soak, payloads)
    first = open_and_send(client, 4)[0]
    client.on_message(event(client, first))
    client.on_message(event(client, first))
    assert (client.tally.delivered, client.tally.duplicated) == (1, 1)


def test_a_skipped_echo_is_lost(soak: Any, payloads: Any) -> None:
    client = make_client(soak, payloads)
    messages = open_and_send(client, 4)
    client.on_message(event(client, messages[1]))  # the echo of messages[0] never comes
    assert (client.tally.delivered, client.tally.lost) == (1, 1)


def test_a_changed_body_is_corrupted(soak: Any, payloads: Any) -> None:
    client = make_client(soak, payloads)
    message = open_and_send(client, 4)[0]
    damaged = message[:-1] + ("?" if isinstance(message, str) else b"?")
    if damaged == message:
        damaged = message[:-1] + ("!" if isinstance(message, str) else b"!")
    client.on_message(event(client, damaged))
    assert (client.tally.delivered, client.tally.corrupted) == (0, 1)


def test_interrupted_messages_are_resent_and_an_old_echo_is_stray(soak: Any, payloads: Any) -> None:
    client = make_client(soak, payloads)
    messages = open_and_send(client, 4)
    client.on_close(event(client, code=1006, reconnecting=True))  # accounted for: interrupted
    assert client.tally.interrupted == 4
    client.on_message(event(client, messages[0]))  # an echo with no open connection
    assert client.tally.stray == 1
    resent = open_and_send(client, 4)
    assert resent == messages  # same ids, same bodies, same order
    for message in resent:
        client.on_message(event(client, message))
    client.on_message(event(client, resent[0]))  # and a duplicate across connections
    tally = client.tally
    assert (tally.delivered, tally.resent, tally.duplicated, tally.lost) == (4, 4, 1, 0)


def test_no_echo_and_no_close_by_the_end_is_lost(soak: Any, payloads: Any) -> None:
    client = make_client(soak, payloads)
    open_and_send(client, 4)
    client.end_of_run()
    assert client.tally.lost == 4


# -- what keeps a leftover object alive (printed when the census finds one) --------------------
# Each test has its own class, so that an object another test left for the collector is not
# the one described.


class HeldByAThread:
    pass


class HeldByATraceback:
    pass


class HeldByADict:
    pass


def test_retention_names_the_thread_whose_frame_holds_the_object(soak: Any) -> None:
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        leftover = HeldByAThread()  # noqa: F841 - held by this frame only
        held.set()
        release.wait(10)

    thread = threading.Thread(target=hold, name="holder-thread")
    thread.start()
    try:
        assert held.wait(10)
        lines = soak.describe_retention("HeldByAThread")
    finally:
        release.set()
        thread.join(10)
    assert len(lines) == 1, lines
    assert "frame hold (test_soak_ledger.py:" in lines[0] and "on thread holder-thread" in lines[0]


def test_retention_of_a_frame_kept_by_a_traceback(soak: Any) -> None:
    def fail() -> None:
        leftover = HeldByATraceback()  # noqa: F841 - kept by the traceback's frame
        raise ValueError("kept")

    try:
        fail()
    except ValueError as exc:
        kept = exc
    lines = soak.describe_retention("HeldByATraceback")
    del kept
    assert lines and "frame fail (" in lines[0] and "on no thread" in lines[0], lines


def test_retention_follows_containers_and_says_when_nothing_is_left(soak: Any) -> None:
    box = {"socket": HeldByADict()}
    lines = soak.describe_retention("HeldByADict")
    assert lines[0] == "held by dict(socket)", lines
    box.clear()
    gc.collect()
    assert soak.describe_retention("HeldByADict") == ["no HeldByADict left by now"]
