"""The breaker's slow count on its own clock: slow answers open it only when enough of them fall
within the window (tests/test_hung_upstream.py holds the rest against a real hung upstream)."""

from __future__ import annotations

from gateway.breaker import BreakerState, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock, *, slow_threshold: int) -> CircuitBreaker:
    return CircuitBreaker(
        "billing",
        failure_threshold=5,
        cooldown_seconds=10,
        slow_threshold=slow_threshold,
        slow_window_seconds=10,
        clock=clock,
    )


def test_slow_answers_open_it_only_when_enough_fall_within_the_window() -> None:
    clock = Clock()
    spread = breaker(clock, slow_threshold=3)
    for _ in range(6):  # one every 6 s: never three within 10 s
        spread.slow()
        clock.now += 6
    assert spread.state is BreakerState.CLOSED

    bunched = breaker(clock, slow_threshold=3)
    for _ in range(3):
        bunched.slow()
        clock.now += 4  # three within 8 s
    assert bunched.state is BreakerState.OPEN


def test_a_slow_threshold_of_zero_never_opens_it_and_answers_after_it_opened_do_not_close_it() -> None:
    clock = Clock()
    off = breaker(clock, slow_threshold=0)
    for _ in range(100):
        off.slow()
    assert off.state is BreakerState.CLOSED

    on = breaker(clock, slow_threshold=2)
    admitted = on.acquire()  # admitted while closed; its answer comes after the circuit opened
    on.slow()
    on.slow()
    assert on.state is BreakerState.OPEN
    on.success(admitted)
    assert on.state is BreakerState.OPEN
    clock.now += 10
    probe = on.acquire()
    assert probe and on.state is BreakerState.HALF_OPEN
    on.success(probe)
    assert on.state is BreakerState.CLOSED
