"""A circuit breaker per upstream: closed → open after N consecutive failures → half-open after a
cool-down, when exactly one probe request goes through; its outcome closes or re-opens the circuit.

While open, requests are refused at once (503 with Retry-After) instead of each waiting for a
connect timeout against a service that is down. State is per process: every replica learns on
its own, which costs each at most N failed requests.
"""

from __future__ import annotations

import enum
import math
import time
from collections.abc import Callable

from gatehouse_platform.errors import ServiceUnavailable


class BreakerState(enum.IntEnum):
    """Values are the `gateway_breaker_state` gauge's."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitOpen(ServiceUnavailable):
    slug = "upstream-circuit-open"
    title = "Service temporarily unavailable"

    def __init__(self, upstream: str, retry_after: float) -> None:
        seconds = max(1, math.ceil(retry_after))
        super().__init__(
            f"The {upstream} service is failing; requests are paused for a moment.",
            headers={"Retry-After": str(seconds)},
        )


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int,
        cooldown_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[str, BreakerState], None] | None = None,
    ) -> None:
        self.name = name
        self._threshold = failure_threshold
        self._cooldown = cooldown_seconds
        self._clock = clock
        self._on_change = on_change
        self.state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_in_flight = False
        if on_change is not None:
            on_change(name, self.state)

    def acquire(self) -> bool:
        """Admit a request or raise `CircuitOpen`. Returns True when the request is the half-open
        probe; whoever acquired must then call exactly one of success/failure/release."""
        if self.state is BreakerState.CLOSED:
            return False
        if self.state is BreakerState.OPEN:
            waited = self._clock() - self._opened_at
            if waited < self._cooldown:
                raise CircuitOpen(self.name, self._cooldown - waited)
            self._set(BreakerState.HALF_OPEN)
        if self._probe_in_flight:
            raise CircuitOpen(self.name, 1)
        self._probe_in_flight = True
        return True

    def success(self, probe: bool) -> None:
        self._failures = 0
        if probe:
            self._probe_in_flight = False
        if self.state is not BreakerState.CLOSED:
            self._set(BreakerState.CLOSED)

    def failure(self, probe: bool) -> None:
        if probe:
            self._probe_in_flight = False
        if probe or self.state is BreakerState.HALF_OPEN:
            self._open()
            return
        self._failures += 1
        if self.state is BreakerState.CLOSED and self._failures >= self._threshold:
            self._open()

    def release(self, probe: bool) -> None:
        """The request ended without telling us anything about the upstream (the client went
        away, its body was too large): let the next request probe instead."""
        if probe:
            self._probe_in_flight = False

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._failures = 0
        self._set(BreakerState.OPEN)

    def _set(self, state: BreakerState) -> None:
        self.state = state
        if self._on_change is not None:
            self._on_change(self.name, state)
