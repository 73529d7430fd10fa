"""``syncws.Backoff`` and the default retry policy (shared/API.md, "Reconnection"), as pure
functions: the formula, jitter bounds, Retry-After, validation, and every case of the policy.
The behaviour over real connections is in test_reconnecting.py."""

from __future__ import annotations

import math
import random
import ssl

import pytest

import syncws
from syncws import Backoff, CloseEvent, HandshakeError
from syncws.retry import default_should_retry, retry_after


def close_event(code: int = 1006, clean: bool = False) -> CloseEvent:
    return CloseEvent("close", code=code, was_clean=clean)


# -- Backoff ------------------------------------------------------------------------------------


def test_defaults_are_the_documented_ones() -> None:
    b = Backoff()
    assert (b.initial, b.factor, b.max_delay, b.jitter, b.max_attempts, b.reset_after) == (
        1.0, 2.0, 30.0, True, None, 5.0
    )


def test_nth_retry_waits_initial_times_factor_to_the_n_minus_1_capped() -> None:
    b = Backoff(initial=0.5, factor=3.0, max_delay=10.0, jitter=False)
    assert [b.delay(n) for n in range(1, 6)] == [0.5, 1.5, 4.5, 10.0, 10.0]
    assert Backoff(jitter=False).delay(10_000) == 30.0  # no overflow far past the cap


def test_factor_one_is_a_constant_delay() -> None:
    b = Backoff(initial=2.0, factor=1.0, jitter=False)
    assert {b.delay(n) for n in range(1, 50)} == {2.0}


@pytest.mark.parametrize("retry", [1, 2, 3, 6, 40])
def test_jitter_is_uniform_in_half_d_to_d(retry: int) -> None:
    b = Backoff(initial=1.0, factor=2.0, max_delay=30.0)
    d = b.base_delay(retry)
    assert b.delay(retry, random_fraction=lambda: 0.0) == d / 2
    assert b.delay(retry, random_fraction=lambda: 0.999999) == pytest.approx(d, rel=1e-5)
    rng = random.Random(7)
    samples = [b.delay(retry, random_fraction=rng.random) for _ in range(2000)]
    assert all(d / 2 <= s <= d for s in samples)
    # spread over the whole interval, not stuck at one end
    assert min(samples) < d / 2 + d * 0.05 and max(samples) > d - d * 0.05
    default = [b.delay(retry) for _ in range(200)]  # random.random by default
    assert all(d / 2 <= s <= d for s in default) and len(set(default)) > 100


def test_retry_after_sets_the_minimum_capped_at_max_delay() -> None:
    b = Backoff(initial=1.0, factor=2.0, max_delay=30.0, jitter=False)
    assert b.delay(1, retry_after=7) == 7.0  # max(1, min(7, 30))
    assert b.delay(5, retry_after=7) == 16.0  # d already longer
    assert b.delay(1, retry_after=3600) == 30.0  # capped
    jittered = Backoff(initial=4.0, max_delay=30.0)
    assert jittered.delay(1, retry_after=10, random_fraction=lambda: 0.0) == 10.0


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"initial": -1}, ValueError),
        ({"initial": math.nan}, ValueError),
        ({"initial": math.inf}, ValueError),
        ({"factor": 0.5}, ValueError),
        ({"factor": math.inf}, ValueError),
        ({"max_delay": -0.1}, ValueError),
        ({"reset_after": -5}, ValueError),
        ({"max_attempts": 0}, ValueError),
        ({"max_attempts": -3}, ValueError),
        ({"initial": "1"}, TypeError),
        ({"initial": True}, TypeError),
        ({"factor": None}, TypeError),
        ({"jitter": 1}, TypeError),
        ({"max_attempts": 2.0}, TypeError),
        ({"max_attempts": True}, TypeError),
    ],
)
def test_bad_values_raise(kwargs: dict, error: type) -> None:
    with pytest.raises(error):
        Backoff(**kwargs)


def test_edge_values_are_accepted() -> None:
    Backoff(initial=0, max_delay=0, reset_after=0, max_attempts=1)
    Backoff(max_delay=math.inf, reset_after=math.inf)
    assert Backoff(initial=0, jitter=False).delay(3) == 0.0


def test_backoff_is_immutable_and_comparable() -> None:
    b = Backoff(initial=2.0)
    with pytest.raises(AttributeError):
        b.initial = 3.0  # type: ignore[misc]
    assert b == Backoff(initial=2.0) and b != Backoff()
    assert "initial=2.0" in repr(b)


def test_delay_rejects_retry_numbers_below_one() -> None:
    with pytest.raises(ValueError):
        Backoff().delay(0)
    with pytest.raises(TypeError):
        Backoff().delay(1.0)  # type: ignore[arg-type]


# -- the default policy ----------------------------------------------------------------------


def refused(status: int, *headers: tuple) -> HandshakeError:
    return HandshakeError(f"HTTP {status}", status=status, headers=list(headers))


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "refused"),
        ConnectionResetError(104, "reset"),
        OSError(113, "no route to host"),
        OSError("no address found for nowhere.invalid"),  # DNS failure
        TimeoutError("timed out"),
        syncws.ConnectionFailed("closed without a Close frame"),
        syncws.KeepaliveTimeout("no pong"),
        syncws.ProtocolError("bad frame"),
        ssl.SSLEOFError("EOF in violation of protocol"),
    ],
)
def test_network_failures_are_retried(error: BaseException) -> None:
    assert default_should_retry(close_event(), error) is True


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_transient_statuses_are_retried(status: int) -> None:
    assert default_should_retry(close_event(), refused(status)) is True
    assert default_should_retry(close_event(), syncws.ProxyError("proxy", status=status)) is True


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 426, 501, 505, 101, None])
def test_other_statuses_and_broken_handshakes_are_final(status: int) -> None:
    error = HandshakeError("refused", status=status)
    assert default_should_retry(close_event(), error) is False
    if status is not None and status != 101:
        assert default_should_retry(close_event(), syncws.ProxyError("proxy", status=status)) is False


def test_tls_certificate_failure_is_final_even_when_wrapped() -> None:
    cert = ssl.SSLCertVerificationError(1, "certificate verify failed")
    assert default_should_retry(close_event(), cert) is False
    wrapper = syncws.ConnectionFailed("TLS failed")
    wrapper.__cause__ = cert
    assert default_should_retry(close_event(), wrapper) is False


def test_non_network_errors_are_final() -> None:
    assert default_should_retry(close_event(), syncws.DOMSyntaxError("bad url")) is False
    assert default_should_retry(close_event(), TypeError("bad header")) is False


@pytest.mark.parametrize("code", [1000, 1001, 1005, 1006, 1011, 1012, 1013, 1014, 3000, 4000, 4999])
def test_server_close_codes_are_retried(code: int) -> None:
    assert default_should_retry(close_event(code, clean=True), None) is True


@pytest.mark.parametrize("code", [1002, 1003, 1007, 1008, 1009, 1010, 1015])
def test_listed_close_codes_are_final(code: int) -> None:
    assert default_should_retry(close_event(code, clean=True), None) is False


def test_retry_after_reads_delta_seconds_only() -> None:
    assert retry_after(refused(503, ("Retry-After", "120"))) == 120.0
    assert retry_after(refused(503, ("retry-after", " 3 "))) == 3.0
    assert retry_after(refused(503, ("Retry-After", "Wed, 21 Oct 2026 07:28:00 GMT"))) is None
    assert retry_after(refused(503, ("Retry-After", "-1"))) is None
    assert retry_after(refused(503, ("Retry-After", "1.5"))) is None
    assert retry_after(refused(503)) is None
    assert retry_after(ConnectionRefusedError()) is None
    assert retry_after(None) is None
