"""The CloudEvents 1.0 envelope every Gatehouse event travels in (JSON structured mode)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_BASE = "https://gatehouse.dev/schemas/events"


class EventData(BaseModel):
    """Base of every event's `data`.

    Subclasses set `event_type` (the routing key), `version`, and `carries_secret` when the data
    holds a one-time secret (link token, login code): such events must never be logged whole.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_type: ClassVar[str]
    version: ClassVar[int] = 1
    carries_secret: ClassVar[bool] = False
    description: ClassVar[str] = ""

    @classmethod
    def dataschema(cls) -> str:
        return f"{SCHEMA_BASE}/{cls.event_type}/v{cls.version}"


class CloudEvent(BaseModel):
    """CloudEvents 1.0 envelope, with Gatehouse's `correlationid` extension and the distributed
    tracing extension (`traceparent`, `tracestate`: the W3C Trace Context of the span that made the
    event, when tracing is on)."""

    model_config = ConfigDict(extra="allow")

    specversion: Literal["1.0"] = "1.0"
    id: uuid.UUID
    source: str = Field(min_length=1, examples=["/auth-service"])
    type: str = Field(min_length=1, examples=["user.registered"])
    time: datetime
    subject: str | None = None
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: str
    correlationid: str | None = None
    traceparent: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"
    )
    tracestate: str | None = None
    data: dict[str, Any]


def new_event(
    data: EventData,
    *,
    source: str,
    subject: str | None = None,
    correlation_id: str | None = None,
    event_id: uuid.UUID | None = None,
    time: datetime | None = None,
    trace_context: Mapping[str, str] | None = None,
) -> CloudEvent:
    """The envelope for `data`; `trace_context` is the creating span's `traceparent` (and
    `tracestate`), as OpenTelemetry's propagator writes them."""
    trace = trace_context or {}
    return CloudEvent(
        id=event_id or uuid.uuid4(),
        source=source,
        type=type(data).event_type,
        time=time or datetime.now(UTC),
        subject=subject,
        dataschema=type(data).dataschema(),
        correlationid=correlation_id,
        traceparent=trace.get("traceparent"),
        tracestate=trace.get("tracestate"),
        data=data.model_dump(mode="json"),
    )
