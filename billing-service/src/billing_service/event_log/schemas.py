from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from billing_service.models import StripeEventStatus
from billing_service.pagination import Page


class StripeEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(examples=["evt_1QdV4x2eZvKYlo2C"])
    type: str = Field(examples=["invoice.paid"])
    object_id: str | None = Field(description="The id of the object the event is about")
    source: str = Field(description="`webhook`, or `reconcile` when the reconciliation fetched it")
    status: StripeEventStatus
    attempts: int
    last_error: str | None = Field(description="Why the last attempt failed (failed events)")
    received_at: datetime
    stripe_created_at: datetime
    processed_at: datetime | None
    next_attempt_at: datetime = Field(description="When a failed event is tried again")


class StripeEventDetail(StripeEventOut):
    payload: dict[str, Any] = Field(description="The event as Stripe sent it")


class StripeEventPage(Page[StripeEventOut]):
    pass
