"""The one socket state (syncws.state): the standard's transitions and how a stream ends."""

from __future__ import annotations

import pytest

from syncws.state import TRANSITIONS, Ending, ReadyState, SocketState


def test_the_life_of_a_socket_that_opens_and_closes() -> None:
    state = SocketState()
    assert state.ready_state is ReadyState.CONNECTING and not state.settled.is_set()
    assert state.open_delivered() is True
    assert state.ready_state is ReadyState.OPEN and state.was_opened and state.settled.is_set()
    assert state.request_close() is ReadyState.OPEN
    assert state.ready_state is ReadyState.CLOSING and state.close_requested
    assert state.request_close() is ReadyState.CLOSING  # again: nothing changes
    state.record_ending(Ending(1000, "bye", True, None))
    state.end_delivered()
    state.close_delivered()
    assert state.ready_state is ReadyState.CLOSED and state.closed.is_set()


def test_open_is_never_delivered_after_close() -> None:
    state = SocketState()
    assert state.request_close() is ReadyState.CONNECTING
    assert state.open_delivered() is False
    assert state.ready_state is ReadyState.CLOSING and not state.was_opened


def test_the_first_error_wins_and_the_ending_is_recorded_once() -> None:
    state = SocketState()
    first, second = ConnectionResetError("first"), TimeoutError("second")
    state.record_error(first)
    state.record_error(second)
    state.record_ending(Ending(1006, "", False, second))
    assert state.error is first
    with pytest.raises(AssertionError, match="ended twice"):
        state.record_ending(Ending(1006, "", False, None))


def test_a_transition_the_standard_forbids_is_a_bug() -> None:
    assert ReadyState.CONNECTING not in TRANSITIONS[ReadyState.OPEN]
    state = SocketState()
    state.end_delivered()
    with pytest.raises(AssertionError, match="CLOSED -> OPEN"):
        state._move(ReadyState.OPEN)


@pytest.mark.parametrize(
    "ending, local, normal",
    [
        (Ending(1000, "", True, None), False, True),
        (Ending(1001, "", True, None), False, True),
        (Ending(1005, "", True, None), False, True),
        (Ending(1011, "", True, None), False, False),
        (Ending(4001, "", True, None), False, False),
        (Ending(1006, "", False, ConnectionResetError()), False, False),
        (Ending(1006, "", False, None), True, True),  # this side closed: quiet, whatever happened
        (Ending(4001, "", True, None), True, True),
    ],
)
def test_which_endings_a_script_loop_treats_as_normal(ending: Ending, local: bool, normal: bool) -> None:
    state = SocketState()
    state.open_delivered()
    if local:
        state.request_close()
    assert state.ended_normally is False  # not ended yet
    state.record_ending(ending)
    assert state.ended_normally is normal
