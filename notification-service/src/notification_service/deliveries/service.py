"""Reading deliveries for the admin API, and the admin actions on them (resend, replay)."""

from __future__ import annotations

import base64
import logging
import uuid
from datetime import datetime

from aio_pika.exceptions import AMQPError
from sqlalchemy.ext.asyncio import AsyncSession

from gatehouse_platform.consumer import EventConsumer
from notification_service.deliveries.dispatch import Dispatcher
from notification_service.deliveries.repository import DeliveryFilters, DeliveryRepository
from notification_service.errors import BrokerUnavailable, DeliveryNotFound, InvalidCursor
from notification_service.models import Delivery

log = logging.getLogger(__name__)


def encode_cursor(delivery: Delivery) -> str:
    return base64.urlsafe_b64encode(f"{delivery.created_at.isoformat()}|{delivery.id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        created, _, delivery_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        moment = datetime.fromisoformat(created)
        if moment.tzinfo is None:
            raise ValueError("naive timestamp")
        return moment, uuid.UUID(delivery_id)
    except ValueError as exc:  # binascii.Error and UnicodeDecodeError are ValueErrors too
        raise InvalidCursor("The cursor is not one we gave out.") from exc


async def list_deliveries(
    db: AsyncSession, filters: DeliveryFilters, limit: int, cursor: str | None
) -> tuple[list[Delivery], str | None]:
    rows = await DeliveryRepository(db).search(
        filters, limit=limit + 1, before=decode_cursor(cursor) if cursor else None
    )
    page = rows[:limit]
    return page, encode_cursor(page[-1]) if len(rows) > limit else None


async def get_delivery(db: AsyncSession, delivery_id: uuid.UUID) -> Delivery:
    delivery = await DeliveryRepository(db).get(delivery_id)
    if delivery is None:
        raise DeliveryNotFound(f"No delivery {delivery_id}.")
    return delivery


async def resend(db: AsyncSession, dispatcher: Dispatcher, delivery_id: uuid.UUID) -> Delivery:
    return await dispatcher.resend(db, await get_delivery(db, delivery_id))


async def dead_letter_count(consumer: EventConsumer) -> int:
    try:
        return await consumer.dead_letter_count()
    except (AMQPError, OSError, TimeoutError) as exc:
        log.warning("dead-letter count failed: %s", type(exc).__name__)
        raise BrokerUnavailable("The message broker cannot be reached; try again shortly.") from None


async def replay_dead_letters(consumer: EventConsumer, limit: int) -> int:
    try:
        return await consumer.replay_dead_letters(limit=limit)
    except (AMQPError, OSError) as exc:
        log.warning("dead-letter replay failed: %s", type(exc).__name__)
        raise BrokerUnavailable("The message broker cannot be reached; try again shortly.") from None
