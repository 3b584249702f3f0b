"""After Stripe's last retry fails: `BILLING_DUNNING_FINAL_ACTION` decides, whatever Stripe's own
setting. Here Stripe leaves the subscription past due (its "leave past due" setting), so billing's
setting is what acts: `cancel` cancels it at Stripe, `unpaid` keeps it restricted until it is paid.
Each mode runs against a Stripe and a billing of its own (settings are per process)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import stripe
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_service.integrations.stripe import stripe_gateway
from billing_service.main import create_app
from billing_service.models import EndReason, Subscription, SubscriptionStatus
from billing_service.settings import Settings
from billing_service.subscriptions.lifecycle import sweep_expired
from conftest import SERVICE_ROOT, STRIPE_KEY, Emulator, User, eventually, make_settings, new_code, subscribe
from gatehouse_emulators.stripe import StripeEmulatorConfig
from gatehouse_emulators.stripe import create_app as create_stripe_emulator
from gatehouse_platform import testing
from gatehouse_platform.db import make_engine, make_session_factory
from gatehouse_platform.pytest_plugin import EventTap
from gatehouse_platform.testing import serve_in_thread

DAY = 86400


@dataclass
class Billing:
    """A billing-service of its own, with its Stripe (which leaves subscriptions past due)."""

    mode: str
    client: httpx.AsyncClient
    emulator: Emulator
    sdk: stripe.StripeClient
    db: async_sessionmaker[AsyncSession]
    settings: Settings


@pytest.fixture(scope="module", params=["cancel", "unpaid"])
async def billing(request: pytest.FixtureRequest, amqp_url: str, jwks_url: str) -> AsyncIterator[Billing]:
    mode: str = request.param
    config = StripeEmulatorConfig(webhook_url=None, dunning_final_action="past_due", check_schemas=True)
    name = testing.unique_name(f"gh_billing_dunning_{mode}")
    url = await testing.create_database(name)
    engine = make_engine(url, pool_size=2)
    try:
        await testing.migrate(SERVICE_ROOT, url)
        with contextlib.ExitStack() as servers:
            stripe_url = servers.enter_context(serve_in_thread(create_stripe_emulator(config)))
            sdk = stripe.StripeClient(STRIPE_KEY, base_addresses={"api": stripe_url}, max_network_retries=0)
            port = testing.free_port()
            endpoint = sdk.v1.webhook_endpoints.create(
                params={"url": f"http://127.0.0.1:{port}/billing/stripe/webhook", "enabled_events": ["*"]}
            )
            settings = make_settings(
                database_url=url,
                amqp_url=amqp_url,
                jwks_url=jwks_url,
                redis_key_prefix=name,
                stripe_api_base=stripe_url,
                stripe_webhook_secret=str(endpoint.secret),
                dunning_final_action=mode,
            )
            base = servers.enter_context(
                serve_in_thread(create_app(settings, run_consumers=False), port=port)
            )
            async with (
                httpx.AsyncClient(base_url=base, timeout=30) as client,
                httpx.AsyncClient(base_url=stripe_url, timeout=30) as control,
            ):
                yield Billing(mode, client, Emulator(control), sdk, make_session_factory(engine), settings)
    finally:
        await engine.dispose()
        await testing.drop_database(name)


async def row_of(billing: Billing, subscription_id: str) -> Subscription:
    async with billing.db() as session:
        row = await session.get(Subscription, subscription_id)
    assert row is not None
    return row


async def test_after_the_last_retry_billing_applies_its_final_action(
    billing: Billing, new_user: Callable[..., User], admin: dict[str, str], events: EventTap
) -> None:
    client, emulator, sdk = billing.client, billing.emulator, billing.sdk
    code = new_code()
    plan_body: dict[str, Any] = {
        "code": code,
        "name": "Team",
        "tier": "pro",
        "amount": 4000,
        "currency": "usd",
        "interval": "month",
        "features": ["api"],
    }
    created = await client.post("/billing/plans", json=plan_body, headers=admin)
    assert created.status_code == 201, created.text
    user = new_user()
    checkout = await subscribe(client, user, code)
    completed = await emulator.complete_checkout(checkout["session_id"], "paid")
    stripe_subscription: dict[str, Any] = completed["subscription"]
    sub_id = checkout["subscription_id"]

    async def status_is(status: SubscriptionStatus) -> Subscription | None:
        row = await row_of(billing, sub_id)
        return row if row.status == status else None

    await eventually(lambda: status_is(SubscriptionStatus.ACTIVE), "active")
    await emulator.payment_behavior(stripe_subscription["customer"], "declined")
    period_end = int(stripe_subscription["items"]["data"][0]["current_period_end"])
    await emulator.advance(period_end - await emulator.now() + 60)
    await eventually(lambda: status_is(SubscriptionStatus.PAST_DUE), "past due")
    for gap in (3, 5, 7):  # Stripe's retries; after the last it leaves the subscription past due
        await emulator.advance(gap * DAY)
    await emulator.flush()

    mine = lambda: client.get("/billing/subscriptions/me", headers=user.headers)  # noqa: E731
    if billing.mode == "cancel":
        row = await eventually(lambda: status_is(SubscriptionStatus.CANCELED), "canceled by billing")
        assert row.end_reason == EndReason.PAYMENT_FAILED
        at_stripe = sdk.v1.subscriptions.retrieve(stripe_subscription["id"])
        assert at_stripe.status == "canceled" and at_stripe.cancellation_details is not None
        assert at_stripe.cancellation_details.comment == "gatehouse:payment_failed"
        ended = await events.wait_for("subscription.ended", lambda e: e["data"]["subscription_id"] == sub_id)
        assert ended["data"]["reason"] == "payment_failed"
        body = (await mine()).json()
        assert (body["status"], body["has_access"], body["entitlements"]) == ("canceled", False, [])
        return

    # unpaid: kept, restricted, no further retry; the expiry sweep leaves it alone.
    async def restricted() -> Subscription | None:
        row = await row_of(billing, sub_id)
        return row if row.restricted_at is not None and row.retries_exhausted_at is not None else None

    row = await eventually(restricted, "restricted after the last retry")
    assert row.status == SubscriptionStatus.PAST_DUE and row.next_payment_attempt is None
    body = (await mine()).json()
    assert (body["status"], body["restricted"], body["has_access"], body["next_payment_attempt"]) == (
        "past_due",
        True,
        False,
        None,
    )
    rights = (await client.get("/billing/entitlements/me", headers=user.headers)).json()
    assert (rights["restricted"], rights["features"]) == (True, [])
    gateway = stripe_gateway(billing.settings)
    try:
        later = datetime.fromtimestamp(await emulator.now(), UTC) + timedelta(days=60)
        await sweep_expired(billing.db, gateway, billing.settings, now=later)
    finally:
        await gateway.aclose()
    assert (await row_of(billing, sub_id)).status == SubscriptionStatus.PAST_DUE
    assert sdk.v1.subscriptions.retrieve(stripe_subscription["id"]).status == "past_due"

    # The person pays the open invoice (a new card): active again, features back, recovered once.
    await emulator.payment_behavior(stripe_subscription["customer"], "paid")
    [invoice] = sdk.v1.invoices.list(
        params={"subscription": stripe_subscription["id"], "status": "open"}
    ).data
    sdk.v1.invoices.pay(str(invoice.id))
    await eventually(lambda: status_is(SubscriptionStatus.ACTIVE), "active again")
    recovered = await events.wait_for("payment.recovered", lambda e: e["data"]["invoice_id"] == invoice.id)
    assert recovered["data"]["attempt_count"] == 5
    rights = (await client.get("/billing/entitlements/me", headers=user.headers)).json()
    assert (rights["restricted"], rights["features"]) == (False, ["api"])
