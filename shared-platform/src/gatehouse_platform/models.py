"""Tables every service that publishes or consumes events carries in its own database.

Each service's Alembic migrations create them (import this module in `migrations/env.py` so
autogenerate sees them on `Base.metadata`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gatehouse_platform.db import Base, utcnow


class OutboxMessage(Base):
    """An event written in the same transaction as the change it announces; the relay publishes it.

    `id` is the CloudEvent id (and the AMQP message_id), `event_type` its type (the routing key),
    `payload` the whole CloudEvent (it may carry a one-time secret: never log it).
    """

    __tablename__ = "outbox"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    event_type: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=text("now()"))
    published_at: Mapped[datetime | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text, default=None)

    __table_args__ = (
        # The relay only ever reads unpublished rows, oldest first: a partial index stays tiny
        # however many published rows accumulate.
        Index(
            "ix_outbox_unpublished",
            "created_at",
            "id",
            postgresql_where=text("published_at IS NULL"),
        ),
    )


class ProcessedEvent(Base):
    """Marks an event as handled by one consumer; inserted in the same transaction as the effect."""

    __tablename__ = "processed_events"

    consumer: Mapped[str] = mapped_column(String(200), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=text("now()"))
