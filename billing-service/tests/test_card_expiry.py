"""The "card expires soon" check: a subscriber whose card (updated in the Customer Portal page on the
emulator) stops working within a month gets `payment_method.expiring` once per card and expiry date;
too early, cancelling subscribers and reruns tell no one. (Each run reads every paying subscriber's
card from the shared emulator: the runs are few.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_service.integrations.stripe import StripeGateway, stripe_gateway
from billing_service.models import CardExpiryNotice
from billing_service.self_service.card_expiry import notify_expiring_cards
from billing_service.settings import Settings
from conftest import EventTap, PaidSubscription, User, eventually, subscription_row

# Cards the tests put on file expire in March 2031: they stop working on 1 April 2031.
STOPS_WORKING = datetime(2031, 4, 1, tzinfo=UTC)


@pytest.fixture
async def gateway(settings: Settings) -> AsyncIterator[StripeGateway]:
    gateway = stripe_gateway(settings)
    yield gateway
    await gateway.aclose()


async def new_card(client: httpx.AsyncClient, user: User, number: str = "4242424242424242") -> None:
    """The card put on file the way the person does it: in the portal page."""
    portal = await client.post("/billing/portal", json={}, headers=user.headers)
    assert portal.status_code == 200, portal.text
    async with httpx.AsyncClient(timeout=30) as http:
        done = await http.post(
            portal.json()["url"],
            data={"action": "card", "card_number": number, "exp_month": "3", "exp_year": "2031"},
            follow_redirects=True,
        )
    assert "Your payment method was updated." in done.text, done.text


def of_user(user: User) -> Any:
    return lambda e: e["data"]["user_id"] == str(user.id)


async def notices(db: async_sessionmaker[AsyncSession], user: User) -> list[CardExpiryNotice]:
    async with db() as session:
        rows = await session.scalars(select(CardExpiryNotice).where(CardExpiryNotice.user_id == user.id))
        return list(rows)


async def test_a_card_expiring_within_a_month_is_told_once_per_card_and_expiry(
    client: httpx.AsyncClient,
    paid_subscription: PaidSubscription,
    db: async_sessionmaker[AsyncSession],
    gateway: StripeGateway,
    settings: Settings,
    events: EventTap,
) -> None:
    subscribed = await paid_subscription(amount=1100)
    await new_card(client, subscribed.user, "5555555555554444")
    # A subscription ending at its period end renews with no card: its person is not told.
    leaving = await paid_subscription(amount=1300)
    await new_card(client, leaving.user)
    cancel = await client.post("/billing/subscriptions/cancel", headers=leaving.user.headers)
    assert cancel.status_code == 200, cancel.text
    assert (await subscription_row(db, leaving.subscription_id)).cancel_at_period_end

    early = await notify_expiring_cards(db, gateway, settings, now=datetime(2031, 2, 20, tzinfo=UTC))
    assert early.examined >= 1 and await notices(db, subscribed.user) == []

    result = await notify_expiring_cards(db, gateway, settings, now=datetime(2031, 3, 5, tzinfo=UTC))
    assert result.notified >= 1 and result.skipped == 0
    event = await events.wait_for("payment_method.expiring", of_user(subscribed.user))
    data = event["data"]
    assert (data["brand"], data["last4"], data["exp_month"], data["exp_year"]) == (
        "mastercard",
        "4444",
        3,
        2031,
    )
    assert datetime.fromisoformat(data["expires_at"]) == STOPS_WORKING
    assert data["email"] == subscribed.user.email and data["payment_method_id"].startswith("pm_")
    assert event["source"] == "/billing-service"

    again = await notify_expiring_cards(db, gateway, settings, now=datetime(2031, 3, 20, tzinfo=UTC))
    assert again.examined >= 1
    assert len(await events.all_of("payment_method.expiring", of_user(subscribed.user))) == 1
    assert await events.all_of("payment_method.expiring", of_user(leaving.user), settle=0) == []
    assert await notices(db, leaving.user) == []
    [notice] = await notices(db, subscribed.user)
    assert (notice.exp_year, notice.exp_month) == (2031, 3)

    # Another card (a new payment method) with the same expiry is told about too
    await new_card(client, subscribed.user)
    await notify_expiring_cards(db, gateway, settings, now=datetime(2031, 3, 21, tzinfo=UTC))

    async def two() -> bool:
        return len(await events.all_of("payment_method.expiring", of_user(subscribed.user), settle=0.2)) == 2

    await eventually(two, "the second card's notice")
    assert len(await notices(db, subscribed.user)) == 2


def test_beat_runs_the_check_daily_by_default() -> None:
    from billing_service.tasks import celery_app

    entry = celery_app.conf.beat_schedule["notify-expiring-cards"]
    assert entry["task"] == "billing_service.tasks.notify_expiring_cards"
    assert Settings().card_expiry_check_interval_seconds == 86400
