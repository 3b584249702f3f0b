"""Exactly once, whatever the delivery: months of real Stripe history (from the emulator's Events API)
delivered in order to one billing database, and three times each in shuffled order to another,
leave the same subscriptions and payments, with no payment applied or announced twice.

Both billing instances start from the same state (plans, customers, and the subscriptions waiting
in Checkout) and re-read from the same Stripe, as production would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import stripe
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from billing_service.main import create_app
from billing_service.models import (
    Customer,
    Payment,
    PaymentStatus,
    Plan,
    PlanPrice,
    StripeEvent,
    StripeEventStatus,
    Subscription,
)
from conftest import SERVICE_ROOT, STRIPE_KEY, Emulator, User, eventually, make_settings, signed
from gatehouse_emulators.stripe import StripeEmulatorConfig
from gatehouse_emulators.stripe import create_app as create_stripe_emulator
from gatehouse_platform import testing
from gatehouse_platform.db import make_engine, make_session_factory
from gatehouse_platform.models import OutboxMessage
from gatehouse_platform.testing import serve_in_thread

DAY = 86400
SECRETS = {"in_order": "whsec_exactly_once_in_order", "shuffled": "whsec_exactly_once_shuffled"}
USERS = 16
STEPS = 27  # ten days each: nine months of renewals


@dataclass
class Instance:
    url: str
    db: async_sessionmaker[AsyncSession]
    engine: AsyncEngine
    secret: str


@pytest.fixture(scope="module")
def history_stripe() -> Iterator[str]:
    """A Stripe of this module's own: no webhooks (we deliver them), a long event memory, slow dunning."""
    config = StripeEmulatorConfig(
        webhook_url=None,
        events_retention=400 * DAY,
        dunning_retry_days=(3, 7, 14),
        check_schemas=True,
    )
    with serve_in_thread(create_stripe_emulator(config)) as base:
        yield base


@pytest.fixture(scope="module")
async def instances(history_stripe: str, amqp_url: str, jwks_url: str) -> AsyncIterator[dict[str, Instance]]:
    names = {kind: testing.unique_name(f"gh_billing_once_{kind}") for kind in SECRETS}
    made: dict[str, Instance] = {}
    try:
        with contextlib.ExitStack() as servers:
            for kind, name in names.items():
                url = await testing.create_database(name)
                await testing.migrate(SERVICE_ROOT, url)
                settings = make_settings(
                    database_url=url,
                    amqp_url=amqp_url,
                    jwks_url=jwks_url,
                    redis_key_prefix=name,
                    stripe_api_base=history_stripe,
                    stripe_webhook_secret=SECRETS[kind],
                    webhook_poll_interval_seconds=0.1,
                )
                app = create_app(settings, run_relay=False, run_consumers=False)
                base = servers.enter_context(serve_in_thread(app))
                engine = make_engine(url, pool_size=2)
                made[kind] = Instance(base, make_session_factory(engine), engine, SECRETS[kind])
            yield made
    finally:
        for instance in made.values():
            await instance.engine.dispose()
        for name in names.values():
            await testing.drop_database(name)


async def copy_state(
    source: async_sessionmaker[AsyncSession], target: async_sessionmaker[AsyncSession]
) -> None:
    """The shuffled instance starts where the in-order one is before any webhook: same rows."""
    async with source() as read, target() as write:
        for model in (Plan, PlanPrice, Customer, Subscription):
            table = model.__table__
            rows = [dict(row._mapping) for row in (await read.execute(select(table))).all()]
            if rows:
                await write.execute(insert(table), rows)
        await write.commit()


async def all_events(sdk: stripe.StripeClient) -> list[dict[str, Any]]:
    """Every event the emulator recorded, oldest first."""
    listed = [e.to_dict(for_json=True) for e in sdk.v1.events.list(params={"limit": 100}).auto_paging_iter()]
    return list(reversed(listed))


async def deliver(instance: Instance, events: list[dict[str, Any]], *, concurrency: int) -> list[bool]:
    """Post each event signed with the instance's secret; returns the `duplicate` flags."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for event in events:
        queue.put_nowait(json.dumps(event))
    duplicates: list[bool] = []

    async def worker(http: httpx.AsyncClient) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            response = await http.post(
                "/billing/stripe/webhook", content=body, headers=signed(body, instance.secret)
            )
            assert response.status_code == 200, response.text
            duplicates.append(response.json()["duplicate"])

    async with httpx.AsyncClient(base_url=instance.url, timeout=30) as http:
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
    return duplicates


async def applied(instance: Instance, count: int) -> None:
    async def done() -> bool:
        async with instance.db() as session:
            settled = await session.scalar(
                select(func.count()).where(
                    StripeEvent.status.in_((StripeEventStatus.PROCESSED, StripeEventStatus.IGNORED))
                )
            )
        return settled == count

    await eventually(done, "every event to be applied", within=60)


async def state(instance: Instance) -> dict[str, Any]:
    async with instance.db() as session:
        subscriptions = {
            s.id: (
                s.status,
                s.plan_id,
                s.stripe_subscription_id,
                s.stripe_price_id,
                s.current_period_start,
                s.current_period_end,
                s.cancel_at_period_end,
                s.canceled_at,
                s.ended_at,
                s.end_reason,
                s.trial_end,
                s.activated_at is not None,
            )
            for s in (await session.execute(select(Subscription))).scalars()
        }
        payments = {
            p.stripe_invoice_id: (
                p.status,
                p.subscription_id,
                p.amount_due,
                p.amount_paid,
                p.currency,
                p.attempt_count,
                p.period_start,
                p.period_end,
                p.next_payment_attempt,
                p.billing_reason,
            )
            for p in (await session.execute(select(Payment))).scalars()
        }
        events = dict((await session.execute(select(StripeEvent.id, StripeEvent.status))).all())
        outbox = [
            (row.event_type, row.payload["data"])
            for row in (await session.execute(select(OutboxMessage))).scalars()
        ]
    return {"subscriptions": subscriptions, "payments": payments, "events": events, "outbox": outbox}


async def test_a_thousand_events_three_times_shuffled_leave_the_state_of_the_in_order_run(
    instances: dict[str, Instance], history_stripe: str, issuer: testing.TestIssuer
) -> None:
    in_order, shuffled = instances["in_order"], instances["shuffled"]
    sdk = stripe.StripeClient(STRIPE_KEY, base_addresses={"api": history_stripe}, max_network_retries=0)
    admin = issuer.bearer(uuid.uuid4(), roles=["admin"])
    async with (
        httpx.AsyncClient(base_url=in_order.url, timeout=30) as api,
        httpx.AsyncClient(base_url=history_stripe, timeout=30) as control,
    ):
        emulator = Emulator(control)
        plans = {}
        for code, amount, trial in (("basic", 1000, 0), ("premium", 3000, 0), ("trial", 2000, 7)):
            body = {"code": f"{code}-{uuid.uuid4().hex[:6]}", "name": code, "tier": "pro", "amount": amount}
            response = await api.post("/billing/plans", json={**body, "trial_days": trial}, headers=admin)
            assert response.status_code == 201, response.text
            plans[code] = response.json()
        users, checkouts = [], []
        for n in range(USERS):
            user_id = uuid.uuid4()
            user = User(
                user_id, f"once-{n}@example.com", issuer.bearer(user_id, email=f"once-{n}@example.com")
            )
            plan = plans["trial"] if n == 0 else plans["premium"] if n % 4 == 1 else plans["basic"]
            response = await api.post(
                "/billing/subscriptions/subscribe", json={"plan_code": plan["code"]}, headers=user.headers
            )
            assert response.status_code == 201, response.text
            users.append(user)
            checkouts.append(response.json())
        await copy_state(in_order.db, shuffled.db)

        # Months of history at Stripe: checkouts (one declined first, one needing authentication),
        # renewals, an upgrade, a downgrade, a cancellation, a failed renewal that recovers and
        # one that never does.
        subs = []
        for n, checkout in enumerate(checkouts):
            if n == 2:
                await emulator.complete_checkout(checkout["session_id"], "declined")
            if n == 3:
                await emulator.complete_checkout(checkout["session_id"], "requires_action")
            result = await emulator.complete_checkout(checkout["session_id"], "paid")
            subs.append(result["subscription"])
        for step in range(STEPS):
            if step == 3:
                sdk.v1.subscriptions.update(subs[4]["id"], params={"cancel_at_period_end": True})
            if step == 4:
                item = sdk.v1.subscriptions.retrieve(subs[5]["id"])["items"].data[0]
                sdk.v1.subscriptions.update(
                    subs[5]["id"],
                    params={
                        "items": [{"id": item.id, "price": plans["premium"]["stripe_price_id"]}],
                        "proration_behavior": "always_invoice",
                    },
                )
            if step == 6:
                item = sdk.v1.subscriptions.retrieve(subs[1]["id"])["items"].data[0]
                sdk.v1.subscriptions.update(
                    subs[1]["id"],
                    params={
                        "items": [{"id": item.id, "price": plans["basic"]["stripe_price_id"]}],
                        "proration_behavior": "create_prorations",
                    },
                )
            if step == 5:
                await emulator.payment_behavior(subs[6]["customer"], "declined")  # never pays again
            if step == 8:
                await emulator.payment_behavior(subs[7]["customer"], "declined")
            if step == 10:
                await emulator.payment_behavior(subs[7]["customer"], "paid")
            await emulator.advance(10 * DAY)

    history = await all_events(sdk)
    assert len(history) >= 1000, len(history)
    kinds = Counter(e["type"] for e in history)
    for kind in (
        "invoice.paid",
        "invoice.payment_failed",
        "customer.subscription.deleted",
        "checkout.session.completed",
    ):
        assert kinds[kind] > 0, kinds

    assert not any(await deliver(in_order, history, concurrency=1))
    await applied(in_order, len(history))
    thrice = history * 3
    random.Random(20261124).shuffle(thrice)
    flags = await deliver(shuffled, thrice, concurrency=8)
    assert flags.count(False) == len(history) and flags.count(True) == 2 * len(history)
    await applied(shuffled, len(history))

    expected, actual = await state(in_order), await state(shuffled)
    assert actual["subscriptions"] == expected["subscriptions"]
    assert actual["payments"] == expected["payments"]
    assert actual["events"] == expected["events"]
    paid_invoices = {
        invoice
        for invoice, row in expected["payments"].items()
        if row[0] == PaymentStatus.PAID and row[3] > 0
    }
    assert len(paid_invoices) > USERS
    for run in (expected, actual):
        announced = Counter(data["invoice_id"] for kind, data in run["outbox"] if kind == "payment.succeeded")
        assert announced == Counter(paid_invoices)  # every paid invoice announced, each exactly once
        activated = Counter(
            data["subscription_id"] for kind, data in run["outbox"] if kind == "subscription.activated"
        )
        assert set(activated.values()) == {1}
        ended = Counter(
            data["subscription_id"] for kind, data in run["outbox"] if kind == "subscription.ended"
        )
        assert set(ended.values()) <= {1}
    statuses = Counter(row[0].value for row in expected["subscriptions"].values())
    assert statuses["canceled"] >= 2 and statuses["active"] >= USERS - 4, statuses
