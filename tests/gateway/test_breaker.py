"""The circuit breaker's state machine, driven by a hand-advanced clock."""

from __future__ import annotations

from polyroute.gateway.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_consecutive_failures_only():
    b = CircuitBreaker(failure_threshold=3, cooldown=10, clock=Clock())
    b.record_failure()
    b.record_failure()
    b.record_success()  # a success in between resets the count
    b.record_failure()
    b.record_failure()
    assert b.state == CLOSED and b.allow()
    b.record_failure()
    assert b.state == OPEN and not b.allow()


def test_one_probe_after_cooldown_then_close_on_success():
    clock = Clock()
    b = CircuitBreaker(failure_threshold=1, cooldown=10, clock=clock)
    b.record_failure()
    clock.now = 9.9
    assert not b.allow() and b.retry_after() > 0
    clock.now = 10.0
    assert b.allow() and b.state == HALF_OPEN
    assert not b.allow()  # only one probe at a time
    b.record_success()
    assert b.state == CLOSED and b.allow() and b.retry_after() == 0


def test_failed_probe_doubles_the_cooldown_up_to_the_maximum():
    clock = Clock()
    b = CircuitBreaker(failure_threshold=1, cooldown=10, max_cooldown=25, clock=clock)
    b.record_failure()
    for expected in (20, 25, 25):
        clock.now += 10 if expected == 20 else 25
        assert b.allow()
        b.record_failure()
        assert b.state == OPEN and b.retry_after() == expected
    clock.now += 25
    assert b.allow()
    b.record_success()
    b.record_failure()
    assert b.retry_after() == 10  # back to the base cooldown after recovering


def test_released_probe_can_be_taken_again():
    clock = Clock()
    b = CircuitBreaker(failure_threshold=1, cooldown=1, clock=clock)
    b.record_failure()
    clock.now = 1
    assert b.allow()
    b.release()  # e.g. the client went away before the backend answered
    assert b.allow()
