"""Tables: `deliveries` (one row per email, for idempotency and audit) and `suppressions`
(recipients who unsubscribed from a category). The platform's `processed_events` lives beside them."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gatehouse_platform.db import Base, TimestampMixin, utcnow


class DeliveryStatus(enum.StrEnum):
    SENDING = "sending"  # claimed; an SMTP attempt is under way (or the process died during it)
    SENT = "sent"  # the SMTP server accepted the message
    DEFERRED = "deferred"  # the last attempt failed transiently; the consumer retries
    FAILED = "failed"  # refused for good (5xx); the event is in the dead-letter queue
    SUPPRESSED = "suppressed"  # the recipient unsubscribed from this kind of email: not sent

    @property
    def is_final(self) -> bool:
        return self in (DeliveryStatus.SENT, DeliveryStatus.SUPPRESSED)


class Delivery(TimestampMixin, Base):
    """One email for one recipient, caused by one event (or a resend of an earlier delivery).

    It keeps what an operator needs (recipient, subject, status, SMTP outcome, Message-ID), never
    the body. `event_data` keeps the event's data so the email can be rendered again for a
    resend, and only for events without a one-time secret (`carries_secret`); `None` otherwise.
    """

    __tablename__ = "deliveries"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    event_id: Mapped[uuid.UUID]
    event_type: Mapped[str] = mapped_column(String(200))
    template: Mapped[str] = mapped_column(String(100))
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(998))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    message_id: Mapped[str] = mapped_column(String(255))
    smtp_code: Mapped[int | None] = mapped_column(default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    event_data: Mapped[dict[str, Any] | None] = mapped_column(JSONB, default=None)
    correlation_id: Mapped[str | None] = mapped_column(String(128), default=None)
    resend_of: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("deliveries.id", ondelete="SET NULL"), default=None
    )
    last_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        CheckConstraint(
            "status IN ('sending', 'sent', 'deferred', 'failed', 'suppressed')", name="status_known"
        ),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        # The idempotency key: one email per (event, template, recipient). Resends are rows of
        # their own, pointing at the delivery they repeat.
        Index(
            "uq_deliveries_event_template_recipient",
            "event_id",
            "template",
            "recipient",
            unique=True,
            postgresql_where=text("resend_of IS NULL"),
        ),
        Index("ix_deliveries_created", "created_at", "id"),
        Index("ix_deliveries_recipient_lower", func.lower(text("recipient"))),
        Index("ix_deliveries_status_created", "status", "created_at"),
    )

    @property
    def resendable(self) -> bool:
        return self.event_data is not None


class Suppression(Base):
    """`email` (lower case) asked for no more emails of `category` (List-Unsubscribe)."""

    __tablename__ = "suppressions"

    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    category: Mapped[str] = mapped_column(String(50), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=text("now()"))
