"""RFC 9457 problem details, the error body of every Gatehouse HTTP API."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://gatehouse.dev/problems/"


class Problem(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str = Field(default="about:blank", examples=[PROBLEM_TYPE_BASE + "invalid-credentials"])
    title: str
    status: int = Field(ge=400, le=599)
    detail: str | None = None
    instance: str | None = None
    errors: dict[str, str] | None = Field(
        default=None, description="Validation failures (422): each field mapped to one message."
    )
    request_id: str | None = None
