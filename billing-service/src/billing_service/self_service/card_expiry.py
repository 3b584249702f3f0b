"""The "card expires soon" check (a periodic task): for each subscription that renews with a card,
the card its next payment is taken from (Stripe's, read live), and when that card's last valid
month ends within `card_expiry_notice_days`, `payment_method.expiring` once per card and expiry date
(the `card_expiry_notices` row is recorded with the event, so a rerun or a second worker tells no
one twice; a new card, or the same card with a new expiry date, is told again).

Each subscriber is its own unit of work: one Stripe cannot answer for is skipped and checked again
by the next run."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_service import publishing
from billing_service.customers.repository import CustomerRepository
from billing_service.errors import PaymentProviderError, PaymentProviderUnavailable
from billing_service.integrations.stripe import CardOnFile, StripeGateway, StripeRequestRejected
from billing_service.self_service.repository import CardExpiryNoticeRepository
from billing_service.settings import Settings
from billing_service.subscriptions.repository import SubscriptionRepository
from gatehouse_platform.db import session_scope, utcnow

log = logging.getLogger(__name__)
BATCH = 200


@dataclass(frozen=True)
class CardExpiryResult:
    examined: int
    notified: int
    skipped: int


def card_expires_at(card: CardOnFile) -> datetime:
    """The moment the card stops working: the start of the month after its expiry month (UTC)."""
    if card.exp_month == 12:
        return datetime(card.exp_year + 1, 1, 1, tzinfo=UTC)
    return datetime(card.exp_year, card.exp_month + 1, 1, tzinfo=UTC)


async def notify_expiring_cards(
    sessions: async_sessionmaker[AsyncSession],
    stripe: StripeGateway,
    settings: Settings,
    *,
    now: datetime | None = None,
) -> CardExpiryResult:
    now = now or utcnow()
    horizon = now + timedelta(days=settings.card_expiry_notice_days)
    examined = notified = skipped = 0
    after: uuid.UUID | None = None
    while True:
        async with sessions() as db:
            batch = await SubscriptionRepository(db).paying_at_stripe(after=after, limit=BATCH)
        for user_id, customer_id, subscription_id in batch:
            try:
                card = await stripe.default_card(customer_id, subscription_id=subscription_id)
            except (PaymentProviderUnavailable, PaymentProviderError, StripeRequestRejected) as exc:
                skipped += 1
                log.warning("card expiry check skipped a subscriber: %s", type(exc).__name__)
                continue
            examined += 1
            if card is None or not card.exp_year:
                continue
            expires_at = card_expires_at(card)
            if now < expires_at <= horizon:
                async with session_scope(sessions) as db:
                    notified += await _notify_once(db, user_id, card, expires_at)
        if len(batch) < BATCH:
            break
        after = batch[-1][0]
    log.info("card expiry check", extra={"examined": examined, "notified": notified, "skipped": skipped})
    return CardExpiryResult(examined, notified, skipped)


async def _notify_once(db: AsyncSession, user_id: uuid.UUID, card: CardOnFile, expires_at: datetime) -> int:
    customer = await CustomerRepository(db).get(user_id)
    if customer is None:
        return 0
    first = await CardExpiryNoticeRepository(db).record_once(
        payment_method_id=card.id, exp_year=card.exp_year, exp_month=card.exp_month, user_id=user_id
    )
    if not first:
        return 0
    await publishing.payment_method_expiring(db, user_id, customer.email, card, expires_at=expires_at)
    return 1
