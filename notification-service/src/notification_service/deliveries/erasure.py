"""Forgetting a person whose account was erased (`user.erased`): the deliveries to their addresses
(the goodbye email included, sent when the deletion was asked for) and their unsubscribes go."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from gatehouse_contracts.envelope import CloudEvent, EventData
from gatehouse_contracts.events import UserErased
from notification_service.deliveries.repository import DeliveryRepository
from notification_service.unsubscribe.repository import SuppressionRepository

log = logging.getLogger(__name__)


async def forget_erased_user(session: AsyncSession, event: CloudEvent, data: EventData) -> None:
    """The consumer's handler for `user.erased`, in the consumer's transaction."""
    assert isinstance(data, UserErased)
    addresses = await DeliveryRepository(session).forget_user(data.user_id)
    if addresses:
        await SuppressionRepository(session).forget(addresses)
    log.info("forgot an erased user's deliveries", extra={"user_id": str(data.user_id)})
