"""One-click unsubscribe (RFC 8058) from the emails that offer it (receipts), by signed link."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from notification_service.email.catalogue import TEMPLATES
from notification_service.email.links import Links, Unsubscription
from notification_service.errors import InvalidUnsubscribeLink
from notification_service.unsubscribe.repository import SuppressionRepository

log = logging.getLogger(__name__)
CATEGORIES = frozenset(s.unsubscribe_category for s in TEMPLATES.values() if s.unsubscribe_category)


def read_link(links: Links, token: str) -> Unsubscription:
    found = links.read_unsubscribe_token(token)
    if found is None or found.category not in CATEGORIES:
        raise InvalidUnsubscribeLink("This unsubscribe link is not valid.")
    return found


async def unsubscribe(db: AsyncSession, links: Links, token: str) -> Unsubscription:
    found = read_link(links, token)
    await SuppressionRepository(db).suppress(found.email, found.category)
    log.info("a recipient unsubscribed from %s", found.category)
    return found
