"""Keepalive bookkeeping (syncws.engine.keepalive): when to ping, when a pong is overdue."""

from __future__ import annotations

from syncws.engine.keepalive import Keepalive


def test_disabled_keepalive_never_wakes_the_reader() -> None:
    keepalive = Keepalive(None, 5.0, now=0.0)
    assert keepalive.wait(1e6) is None
    assert keepalive.ping_due(1e6) is None
    assert not keepalive.expired(1e6)


def test_a_ping_is_due_every_interval_and_measures_latency() -> None:
    keepalive = Keepalive(10.0, 5.0, now=100.0)
    assert keepalive.wait(103.0) == 7.0
    assert keepalive.ping_due(109.9) is None
    payload = keepalive.ping_due(110.0)
    assert payload is not None and len(payload) == 4
    assert keepalive.ping_due(111.0) is None  # one ping in flight at a time
    assert keepalive.wait(112.0) == 3.0  # now waiting for the pong's deadline
    keepalive.pong(b"other", 112.0)  # an unsolicited pong changes nothing
    assert keepalive.latency is None
    keepalive.pong(payload, 112.5)
    assert keepalive.latency == 2.5
    assert keepalive.wait(112.5) == 7.5  # next ping 10 s after the last one was sent


def test_a_ping_unanswered_for_the_timeout_has_expired() -> None:
    keepalive = Keepalive(1.0, 2.0, now=0.0)
    assert keepalive.ping_due(1.0) is not None
    assert not keepalive.expired(2.9)
    assert keepalive.expired(3.0)
    assert keepalive.wait(4.0) == 0.0


def test_without_a_timeout_a_ping_never_expires() -> None:
    keepalive = Keepalive(1.0, None, now=0.0)
    assert keepalive.ping_due(1.0) is not None
    assert keepalive.wait(100.0) is None and not keepalive.expired(100.0)


def test_a_paused_reader_starts_afresh() -> None:
    keepalive = Keepalive(1.0, 2.0, now=0.0)
    assert keepalive.ping_due(1.0) is not None
    keepalive.resumed(50.0)  # flow control blocked the reader: it could not see the pong
    assert not keepalive.expired(51.0)
    assert keepalive.wait(50.0) == 1.0
