"""Request ids and W3C Trace Context (`traceparent`) at the edge.

A valid incoming X-Request-ID is kept, else one is made. A valid incoming `traceparent` keeps its
trace id and flags, else a new sampled-off trace starts; either way the gateway is a span of its
own, so the upstream receives a new parent id (ours). `tracestate` is forwarded only with a valid
`traceparent` (the spec ties the two together).
"""

from __future__ import annotations

import re
import secrets
import uuid

from gatehouse_platform.http import valid_request_id

_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


def request_id(incoming: str | None) -> str:
    if incoming and valid_request_id(incoming):
        return incoming
    return uuid.uuid4().hex


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
    span_id = secrets.token_hex(8)
    if parsed is None:
        return f"00-{secrets.token_hex(16)}-{span_id}-00", False
    trace_id, flags = parsed
    return f"00-{trace_id}-{span_id}-{flags}", True
