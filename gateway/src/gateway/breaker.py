"""A circuit breaker per upstream: closed → open after N consecutive failures, or after N slow
answers within a window → half-open after a cool-down, when exactly one probe request goes
through; its outcome closes or re-opens the circuit.

While open, requests are refused at once (503 with Retry-After) instead of each waiting for a
connect timeout against a service that is down, or for a read timeout against one that hangs.
A slow answer is counted when it becomes slow (its head has not come within the route's slow
threshold), not when it finally ends: a hung upstream opens the circuit within seconds, while the
requests that found it hung are still waiting. State is per process: every replica learns on its
own, which costs each at most N failed (or N slow) requests.

Only the half-open probe carries an id (`acquire` returns it; 0 for an ordinary request), so the
late outcome of a probe that has been judged already (it was slow) cannot close a circuit that
has opened again since.
"""

from __future__ import annotations

import enum
import math
import time
from collections import deque
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
        slow_threshold: int = 0,
        slow_window_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[str, BreakerState], None] | None = None,
    ) -> None:
        self.name = name
        self._threshold = failure_threshold
        self._cooldown = cooldown_seconds
        self._slow_window = slow_window_seconds
        self._slow: deque[float] = deque(maxlen=slow_threshold or None)
        self._slow_threshold = slow_threshold
        self._clock = clock
        self._on_change = on_change
        self.state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe = 0  # the probe in flight's id, 0 for none
        self._probes = 0
        if on_change is not None:
            on_change(name, self.state)

    def acquire(self) -> int:
        """Admit a request or raise `CircuitOpen`. Returns the probe's id (> 0) when the request
        is the half-open probe, else 0; whoever acquired must then call exactly one of
        success/failure/release with it."""
        if self.state is BreakerState.CLOSED:
            return 0
        if self.state is BreakerState.OPEN:
            waited = self._clock() - self._opened_at
            if waited < self._cooldown:
                raise CircuitOpen(self.name, self._cooldown - waited)
            self._set(BreakerState.HALF_OPEN)
        if self._probe:
            raise CircuitOpen(self.name, 1)
        self._probes += 1
        self._probe = self._probes
        return self._probe

    def success(self, probe: int) -> None:
        """An answer came in time. Only the probe closes the circuit: a request admitted before it
        opened that answers late says nothing about the upstream now."""
        self._failures = 0
        if probe and probe == self._probe:
            self._probe = 0
            self._set(BreakerState.CLOSED)

    def failure(self, probe: int) -> None:
        if probe:
            if probe == self._probe:
                self._probe = 0
                self._open()
            return  # a probe judged already (slow): the circuit is open again
        if self.state is BreakerState.HALF_OPEN:
            self._open()
            return
        self._failures += 1
        if self.state is BreakerState.CLOSED and self._failures >= self._threshold:
            self._open()

    def slow(self) -> None:
        """An answer has taken longer than its slow threshold and is still coming. Half-open, that
        is the probe (or a request from before, just as telling): open again. Closed,
        `slow_threshold` of them within `slow_window_seconds` open the circuit."""
        if self.state is BreakerState.HALF_OPEN:
            self._probe = 0
            self._open()
            return
        if self.state is not BreakerState.CLOSED or not self._slow_threshold:
            return
        now = self._clock()
        self._slow.append(now)
        if len(self._slow) == self._slow_threshold and now - self._slow[0] <= self._slow_window:
            self._open()

    def release(self, probe: int) -> None:
        """The request ended without telling us anything about the upstream (the client went
        away, its body was too large): let the next request probe."""
        if probe and probe == self._probe:
            self._probe = 0

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._failures = 0
        self._slow.clear()
        self._set(BreakerState.OPEN)

    def _set(self, state: BreakerState) -> None:
        self.state = state
        if self._on_change is not None:
            self._on_change(self.name, state)
