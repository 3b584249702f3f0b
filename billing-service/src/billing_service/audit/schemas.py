from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from billing_service.audit.service import AuditAction
from billing_service.pagination import Page


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    occurred_at: datetime
    actor_id: uuid.UUID = Field(description="The admin who acted")
    action: AuditAction
    subject_id: str = Field(
        description="The plan, coupon, promotion code, payment or Stripe event (evt_…) acted on"
    )
    user_id: uuid.UUID | None = Field(description="The customer concerned (a refund's payer)")
    details: dict[str, Any] = Field(description="What changed: the fields sent, the amount refunded, …")


class AuditEventPage(Page[AuditEventOut]):
    pass
