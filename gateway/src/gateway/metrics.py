"""The gateway's Prometheus metrics (served at /metrics with the platform's)."""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from gateway.breaker import BreakerState

REQUESTS = Counter(
    "gateway_requests_total", "Requests answered, by upstream and status.", ["upstream", "status"]
)
LATENCY = Histogram(
    "gateway_request_duration_seconds",
    "Time from request to the last byte of the response, by upstream.",
    ["upstream"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
BREAKER_STATE = Gauge(
    "gateway_breaker_state", "Circuit breaker per upstream: 0 closed, 1 half-open, 2 open.", ["upstream"]
)
UPSTREAM_FAILURES = Counter(
    "gateway_upstream_failures_total",
    "Upstream exchanges that failed or were refused, by kind (connect, reset, timeout, slow, busy, protocol, "
    "truncated, status).",
    ["upstream", "kind"],
)
RETRIES = Counter("gateway_upstream_retries_total", "Requests re-sent after a connect failure.", ["upstream"])
RATE_LIMITED = Counter("gateway_rate_limited_total", "Requests refused with 429, by rule.", ["rule"])
EDGE_REJECTIONS = Counter(
    "gateway_edge_rejections_total", "Requests refused by the edge token check, by reason.", ["reason"]
)

API_KEY_EXCHANGES = Counter(
    "gateway_api_key_exchanges_total",
    "API keys exchanged with auth-service for an access token, by outcome (exchanged, refused, unavailable).",
    ["outcome"],
)


class UpstreamMetrics:
    """One upstream's request counters and latency histogram, their label lookups done once
    (prometheus_client's `labels()` takes a lock and builds a key on every call)."""

    def __init__(self, upstream: str) -> None:
        self._upstream = upstream
        self._latency = LATENCY.labels(upstream)
        self._requests: dict[int, Any] = {}

    def observe(self, status: int, seconds: float) -> None:
        counter = self._requests.get(status)
        if counter is None:
            counter = self._requests[status] = REQUESTS.labels(self._upstream, str(status))
        counter.inc()
        self._latency.observe(seconds)


def record_breaker_state(upstream: str, state: BreakerState) -> None:
    BREAKER_STATE.labels(upstream).set(int(state))
