"""What the deliveries API answers."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from notification_service.models import DeliveryStatus


class DeliveryOut(BaseModel):
    """A delivery row as the API shows it (`DeliveryOut.model_validate(delivery)`)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    template: str
    recipient: str
    subject: str
    status: DeliveryStatus
    attempts: int
    message_id: str = Field(description="The Message-ID header of every attempt of this delivery.")
    smtp_code: int | None = Field(description="Reply code of the last failed attempt.")
    error: str | None = Field(description="What went wrong in the last failed attempt.")
    resendable: bool = Field(
        description="False for emails that carried a one-time secret (link or code): those are never "
        "stored, so the user asks for a new one instead."
    )
    resend_of: uuid.UUID | None = Field(description="The delivery this one repeats (a manual resend).")
    correlation_id: str | None
    created_at: datetime
    updated_at: datetime
    last_attempt_at: datetime | None
    sent_at: datetime | None


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None


class DeadLetters(BaseModel):
    count: int = Field(description="Events waiting in the dead-letter queue, to be looked into or replayed.")


class ReplayResult(BaseModel):
    replayed: int = Field(description="Dead letters moved back to the queue to be handled again.")
