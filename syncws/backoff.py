"""``Backoff``: how long a reconnecting socket waits between attempts.

The n-th consecutive retry waits ``d = min(max_delay, initial * factor ** (n - 1))`` seconds, or
with ``jitter`` a uniformly random time in ``[d/2, d]`` (so that many clients cut off at once do
not all come back in the same instant). A server's ``Retry-After`` raises the wait to
``max(d, min(retry_after, max_delay))``. The object only describes the schedule; the counters
(which retry this is, when a connection lasted long enough to reset them) live in the socket
that uses it, so one ``Backoff`` can be shared by many sockets.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Callable, Optional

__all__ = ["Backoff"]


def _check_seconds(name: str, value: object, *, allow_infinite: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if math.isnan(value) or value < 0 or (not allow_infinite and math.isinf(value)):
        raise ValueError(f"{name} must be a finite number >= 0, not {value!r}")


@dataclass(frozen=True)
class Backoff:
    """Exponential, capped, optionally jittered delays between reconnection attempts.

    Parameters:
        initial: seconds before the first retry (``d`` for ``n == 1``); ``>= 0``.
        factor: growth per consecutive retry; ``>= 1`` (1 gives a constant delay).
        max_delay: the cap on ``d`` and on a server's ``Retry-After``; ``>= 0`` (may be
            ``math.inf``).
        jitter: wait a uniformly random time in ``[d/2, d]`` instead of exactly ``d``.
        max_attempts: end the socket after this many consecutive failed attempts (the first
            attempt counts, so ``2`` means two attempts); ``None`` never gives up.
        reset_after: a connection that stays open this many seconds resets the count (a
            shorter one does not, so a server that accepts and drops at once still sees the
            delays grow); ``>= 0`` (may be ``math.inf``).

    Bad values raise ``ValueError`` (``TypeError`` for a wrong type) at construction.
    """

    initial: float = 1.0
    factor: float = 2.0
    max_delay: float = 30.0
    jitter: bool = True
    max_attempts: Optional[int] = None
    reset_after: float = 5.0

    def __post_init__(self) -> None:
        """Check every field: ``TypeError`` for a non-number, ``ValueError`` for a bad value."""
        _check_seconds("initial", self.initial)
        _check_seconds("max_delay", self.max_delay, allow_infinite=True)
        _check_seconds("reset_after", self.reset_after, allow_infinite=True)
        factor = self.factor
        if isinstance(factor, bool) or not isinstance(factor, (int, float)):
            raise TypeError(f"factor must be a number, not {type(factor).__name__}")
        if not (math.isfinite(factor) and factor >= 1):
            raise ValueError(f"factor must be a finite number >= 1, not {factor!r}")
        if not isinstance(self.jitter, bool):
            raise TypeError("jitter must be True or False")
        attempts = self.max_attempts
        if attempts is not None:
            if isinstance(attempts, bool) or not isinstance(attempts, int):
                raise TypeError("max_attempts must be an int or None")
            if attempts < 1:
                raise ValueError(f"max_attempts must be at least 1, not {attempts}")

    def base_delay(self, retry: int) -> float:
        """``d`` for the ``retry``-th consecutive retry (1-based), before jitter."""
        if isinstance(retry, bool) or not isinstance(retry, int):
            raise TypeError("retry must be an int")
        if retry < 1:
            raise ValueError(f"retry counts from 1, not {retry}")
        try:
            grown = self.initial * self.factor ** (retry - 1)
        except OverflowError:  # factor ** n beyond a float: far past any cap
            grown = math.inf
        return float(min(self.max_delay, grown))

    def delay(
        self,
        retry: int,
        retry_after: Optional[float] = None,
        *,
        random_fraction: Callable[[], float] = random.random,
    ) -> float:
        """Seconds to wait before the ``retry``-th consecutive retry (1-based).

        ``retry_after`` is the server's ``Retry-After`` in seconds, if it sent one: the wait is
        then at least that (capped at ``max_delay``). ``random_fraction`` returns a number in
        ``[0, 1)`` for the jitter (``random.random`` by default; tests pass their own).
        """
        d = self.base_delay(retry)
        wait = d / 2 + random_fraction() * d / 2 if self.jitter else d
        if retry_after is not None:
            wait = max(wait, min(float(retry_after), self.max_delay))
        return wait
