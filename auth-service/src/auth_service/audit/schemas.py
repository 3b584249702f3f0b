"""Bodies of the audit trail's endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from auth_service.audit.service import AuditEventType
from auth_service.models import AuditEvent


class AuditEventOut(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    type: AuditEventType
    occurred_at: datetime
    actor_id: uuid.UUID | None = Field(description="Who acted, when not the user themselves (an admin)")
    method: str | None = Field(
        description="How: the sign-in method (password, email_code, google, github, passkey), the "
        "second step (totp, recovery_code, passkey), or the provider of an identity"
    )
    ip: str | None
    place: str | None = Field(description="The address's approximate place, when GeoIP is configured")
    user_agent: str | None
    details: dict[str, Any]

    @classmethod
    def of(cls, event: AuditEvent) -> AuditEventOut:
        return cls(
            id=event.id,
            user_id=event.user_id,
            type=AuditEventType(event.type),
            occurred_at=event.occurred_at,
            actor_id=event.actor_id,
            method=event.method,
            ip=str(event.ip) if event.ip is not None else None,
            place=event.place,
            user_agent=event.user_agent,
            details=event.details,
        )


class AuditEventPage(BaseModel):
    items: list[AuditEventOut]
    next_cursor: str | None
