"""Request ids and W3C Trace Context (`traceparent`) at the edge.

A valid incoming X-Request-ID is kept, else one is made. A valid incoming `traceparent` keeps its
trace id and flags, else a new sampled-off trace starts; either way the gateway is a span of its
own, so the upstream receives a new parent id (ours). `tracestate` is forwarded only with a valid
`traceparent` (the spec ties the two together).

With tracing on (gatehouse_platform.tracing), `EdgeSpans` records a server span per proxied
request instead, and the upstream's parent is that span.

New ids come from `random.getrandbits`, as OpenTelemetry's Python SDK makes them: they must be
unique, not unpredictable, and this costs no system call (ids are made on every request).
"""

from __future__ import annotations

import re
from random import getrandbits

from opentelemetry import propagate
from opentelemetry.trace import Span, SpanKind, StatusCode, set_span_in_context

from gatehouse_platform.http import valid_request_id
from gatehouse_platform.tracing import tracer

_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


def request_id(incoming: str | None) -> str:
    if incoming and valid_request_id(incoming):
        return incoming
    return f"{getrandbits(128):032x}"


def parse_traceparent(value: str | None) -> tuple[str, str] | None:
    """(trace id, flags) of a valid `traceparent`, else None.

    Version 00 must be exactly four fields; a higher version may append fields (forward
    compatibility, per the spec); version ff is invalid.
    """
    if not value:
        return None
    match = _TRACEPARENT.fullmatch(value.strip())
    if match is None:
        return None
    version, trace_id, parent_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest) or trace_id == _ZERO_TRACE or parent_id == _ZERO_SPAN:
        return None
    return trace_id, flags


def next_traceparent(incoming: str | None) -> tuple[str, bool]:
    """The `traceparent` to send upstream, and whether the incoming one was continued."""
    parsed = parse_traceparent(incoming)
    span_id = f"{getrandbits(64) or 1:016x}"  # all zeros is invalid
    if parsed is None:
        return f"00-{getrandbits(128) or 1:032x}-{span_id}-00", False
    trace_id, flags = parsed
    return f"00-{trace_id}-{span_id}-{flags}", True


class EdgeSpans:
    """Server spans for the requests the edge proxies, when tracing is on (the platform's ASGI
    instrumentation sees only the gateway's own routes). Each continues the client's valid
    `traceparent`, else starts a trace by the configured sampler; the upstream receives the span's
    own context as its parent."""

    def __init__(self) -> None:
        self._tracer = tracer("gateway.edge")

    def start(self, method: str, upstream: str, path: str, headers: dict[bytes, bytes]) -> Span:
        carrier = {
            name.decode(): headers[name].decode("latin-1")
            for name in (b"traceparent", b"tracestate")
            if name in headers
        }
        return self._tracer.start_span(
            f"{method} {upstream}",
            context=propagate.extract(carrier),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": path, "gatehouse.upstream": upstream},
        )

    @staticmethod
    def upstream_headers(span: Span) -> tuple[str, bytes | None]:
        """(traceparent, tracestate) naming `span` as the upstream's parent."""
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=set_span_in_context(span))
        state = carrier.get("tracestate")
        return carrier["traceparent"], state.encode("latin-1") if state else None

    @staticmethod
    def finish(span: Span, status: int) -> None:
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(StatusCode.ERROR)
        span.end()
