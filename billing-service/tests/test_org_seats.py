"""Organizations subscribe per seat: who may buy for an org, the quantity Stripe bills following its
membership events (prorated, once per version, coalesced), its end when the org is deleted, the seat
limit announced to auth-service, and what its members read."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aio_pika
import httpx
import pytest
import stripe
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_service.models import BillingOrg, SubscriptionStatus
from billing_service.settings import Settings
from conftest import (
    RUN,
    Emulator,
    NewPlan,
    User,
    assert_problem,
    eventually,
    subscription_row,
    wait_for_status,
)
from gatehouse_contracts.envelope import EventData, new_event
from gatehouse_contracts.events import OrgCreated, OrgDeleted, OrgMemberAdded, OrgMemberRemoved
from gatehouse_platform import testing
from gatehouse_platform.models import ProcessedEvent
from gatehouse_platform.outbox import event_message
from gatehouse_platform.pytest_plugin import EventTap, open_event_tap

PublishEvent = Callable[[EventData], Awaitable[uuid.UUID]]


@pytest.fixture(scope="session")
async def org_events(amqp_url: str, settings: Settings) -> AsyncIterator[EventTap]:
    async with open_event_tap(amqp_url, f"{RUN}.org-tap", ("org.#",), settings.events_exchange) as tap:
        yield tap


@pytest.fixture(scope="session")
async def publish_event(amqp_url: str, settings: Settings, billing_url: str) -> AsyncIterator[PublishEvent]:
    """Publish an event as auth-service would; returns its id (to wait until billing took it)."""
    connection = await aio_pika.connect_robust(amqp_url)
    channel = await connection.channel(publisher_confirms=True)
    exchange = await channel.declare_exchange(
        settings.events_exchange, aio_pika.ExchangeType.TOPIC, durable=True
    )

    async def send(data: EventData) -> uuid.UUID:
        event = new_event(data, source="/auth-service", subject=str(getattr(data, "org_id", "")))
        await exchange.publish(event_message(event), routing_key=event.type)
        return uuid.UUID(str(event.id))

    yield send
    await connection.close()


@dataclass
class Org:
    id: uuid.UUID
    owner: User
    token: Callable[..., dict[str, str]]  # headers of a token acting in the org: token(user, role)


@pytest.fixture
def new_org(issuer: testing.TestIssuer, new_user: Callable[..., User], publish_event: PublishEvent) -> Any:
    """`await new_org()`: an org auth-service announced (org.created, one member: its owner)."""

    def token(user: User, role: str = "owner", org_id: uuid.UUID | None = None) -> dict[str, str]:
        return issuer.bearer(user.id, email=user.email, org_id=str(org_id), org_role=role)

    async def make() -> Org:
        owner = new_user()
        org_id = uuid.uuid4()
        await publish_event(
            OrgCreated(
                org_id=org_id,
                name="Acme",
                slug=f"acme-{org_id.hex[:8]}",
                owner_id=owner.id,
                member_count=1,
                membership_version=1,
                created_at=datetime.now(UTC),
            )
        )
        return Org(org_id, owner, lambda user, role="owner": token(user, role, org_id))

    return make


def joined(org_id: uuid.UUID, count: int, version: int) -> OrgMemberAdded:
    return OrgMemberAdded(
        org_id=org_id,
        org_name="Acme",
        user_id=uuid.uuid4(),
        email=f"m{version}@example.com",
        role="member",
        via="invitation",
        member_count=count,
        membership_version=version,
        added_at=datetime.now(UTC),
    )


def left(org_id: uuid.UUID, count: int, version: int) -> OrgMemberRemoved:
    return OrgMemberRemoved(
        org_id=org_id,
        org_name="Acme",
        user_id=uuid.uuid4(),
        email=f"m{version}@example.com",
        reason="removed",
        removed_by=None,
        member_count=count,
        membership_version=version,
        removed_at=datetime.now(UTC),
    )


async def org_row(db: async_sessionmaker[AsyncSession], org_id: uuid.UUID) -> BillingOrg | None:
    async with db() as session:
        return await session.get(BillingOrg, org_id)


async def members_known(db: async_sessionmaker[AsyncSession], org_id: uuid.UUID, version: int) -> BillingOrg:
    async def check() -> BillingOrg | None:
        row = await org_row(db, org_id)
        return row if row is not None and row.membership_version >= version else None

    return await eventually(check, f"org {org_id} at membership version {version}")


async def processed(db: async_sessionmaker[AsyncSession], *event_ids: uuid.UUID) -> None:
    async def check() -> bool:
        async with db() as session:
            rows = await session.execute(
                select(ProcessedEvent.event_id).where(ProcessedEvent.event_id.in_(event_ids))
            )
            return len(set(rows.scalars())) == len(set(event_ids))

    await eventually(check, "billing to take the events")


async def org_subscribe(
    client: httpx.AsyncClient, headers: dict[str, str], plan_code: str, org_id: uuid.UUID
) -> httpx.Response:
    return await client.post(
        "/billing/subscriptions/subscribe",
        json={"plan_code": plan_code, "org_id": str(org_id)},
        headers=headers,
    )


@dataclass
class OrgSubscribed:
    org: Org
    plan: dict[str, Any]
    subscription_id: str
    stripe_subscription_id: str
    stripe_customer_id: str


async def subscribed_org(
    client: httpx.AsyncClient,
    emulator: Emulator,
    db: async_sessionmaker[AsyncSession],
    org: Org,
    plan: dict[str, Any],
) -> OrgSubscribed:
    response = await org_subscribe(client, org.token(org.owner), plan["code"], org.id)
    assert response.status_code == 201, response.text
    checkout = response.json()
    result = await emulator.complete_checkout(checkout["session_id"], "paid")
    await wait_for_status(db, checkout["subscription_id"], SubscriptionStatus.ACTIVE)
    return OrgSubscribed(
        org,
        plan,
        checkout["subscription_id"],
        result["subscription"]["id"],
        result["subscription"]["customer"],
    )


async def stripe_quantity(sdk: stripe.StripeClient, subscription_id: str, quantity: int) -> None:
    async def check() -> bool:
        sub = await asyncio.to_thread(sdk.v1.subscriptions.retrieve, subscription_id)
        return bool(sub["items"].data[0].quantity == quantity)

    await eventually(check, f"the Stripe quantity to be {quantity}")


async def seat_updates(emulator: Emulator, org_id: uuid.UUID) -> list[dict[str, Any]]:
    """The quantity updates billing sent Stripe for the org (the emulator's request log)."""
    log = (await emulator.http.get("/_emulator/requests")).json()["data"]
    return [r for r in log if (r["idempotency_key"] or "").startswith(f"org-{org_id}-seats-")]


PER_SEAT = {"per_seat": True, "amount": 1000, "features": ["sso", "audit-log"]}


# --- plans ---------------------------------------------------------------------------------------


async def test_per_seat_plans_are_validated_and_priced_as_licensed(
    client: httpx.AsyncClient, admin: dict[str, str], new_plan: NewPlan, sdk: stripe.StripeClient
) -> None:
    base = {"code": f"seat-{uuid.uuid4().hex[:8]}", "name": "Team", "tier": "business", "amount": 1000}
    wrong = await client.post(
        "/billing/plans", json={**base, "per_seat": True, "min_seats": 5, "max_seats": 3}, headers=admin
    )
    assert "min_seats (5) must not exceed max_seats (3)" in str(
        assert_problem(wrong, 422, "validation-failed")
    )
    not_per_seat = await client.post("/billing/plans", json={**base, "max_seats": 3}, headers=admin)
    assert "per-seat plan only" in str(assert_problem(not_per_seat, 422, "validation-failed"))
    zero = await client.post("/billing/plans", json={**base, "per_seat": True, "min_seats": 0}, headers=admin)
    assert_problem(zero, 422, "validation-failed")

    plan = await new_plan(**PER_SEAT, min_seats=2, max_seats=10)
    assert (plan["per_seat"], plan["min_seats"], plan["max_seats"]) == (True, 2, 10)
    price = sdk.v1.prices.retrieve(plan["stripe_price_id"])
    assert price.recurring.usage_type == "licensed" and price.unit_amount == 1000
    assert price.metadata["per_seat"] == "true"

    # A PATCH is judged with what it keeps: min_seats past the plan's max_seats is refused.
    patched = await client.patch(f"/billing/plans/{plan['id']}", json={"min_seats": 11}, headers=admin)
    assert_problem(patched, 422, "seat-limits-invalid")
    off = await client.patch(f"/billing/plans/{plan['id']}", json={"per_seat": False}, headers=admin)
    assert_problem(off, 422, "seat-limits-invalid")
    ok = await client.patch(f"/billing/plans/{plan['id']}", json={"max_seats": 20}, headers=admin)
    assert ok.status_code == 200 and ok.json()["max_seats"] == 20


# --- subscribing ---------------------------------------------------------------------------------


async def test_only_an_owner_or_admin_acting_in_the_org_subscribes_it(
    client: httpx.AsyncClient, new_plan: NewPlan, new_org: Any, new_user: Callable[..., User]
) -> None:
    plan = await new_plan(**PER_SEAT)
    org, other = await new_org(), await new_org()
    member = new_user()
    cases = {
        "a member": org.token(member, "member"),
        "another org's owner": other.token(other.owner),
        "a personal token": org.owner.headers,
    }
    for who, headers in cases.items():
        response = await org_subscribe(client, headers, plan["code"], org.id)
        body = assert_problem(response, 403, "org-billing-forbidden")
        assert body["detail"], who
    admin_token = org.token(new_user(), "admin")
    assert (await org_subscribe(client, admin_token, plan["code"], org.id)).status_code == 201


async def test_an_org_subscribes_for_its_members_on_its_own_stripe_customer(
    client: httpx.AsyncClient,
    new_plan: NewPlan,
    new_org: Any,
    publish_event: PublishEvent,
    emulator: Emulator,
    sdk: stripe.StripeClient,
    db: async_sessionmaker[AsyncSession],
    org_events: EventTap,
) -> None:
    plan = await new_plan(**PER_SEAT, max_seats=50)
    org = await new_org()
    await publish_event(joined(org.id, 2, 2))
    await publish_event(joined(org.id, 3, 3))
    await members_known(db, org.id, 3)

    response = await org_subscribe(client, org.token(org.owner), plan["code"], org.id)
    assert response.status_code == 201, response.text
    checkout = response.json()
    lines = sdk.v1.checkout.sessions.line_items.list(checkout["session_id"])
    assert [line.quantity for line in lines.data] == [3]
    session = sdk.v1.checkout.sessions.retrieve(checkout["session_id"])
    customer = sdk.v1.customers.retrieve(session.customer)
    assert customer.metadata["org_id"] == str(org.id) and "user_id" not in customer.metadata
    # a second subscribe for the org while the first Checkout is open resumes it
    again = await org_subscribe(client, org.token(org.owner), plan["code"], org.id)
    assert_problem(again, 409, "checkout-in-progress")
    # the owner's own (personal) billing is untouched: no subscription of theirs
    assert (await client.get("/billing/subscriptions/me", headers=org.owner.headers)).status_code == 404

    result = await emulator.complete_checkout(checkout["session_id"], "paid")
    row = await wait_for_status(db, checkout["subscription_id"], SubscriptionStatus.ACTIVE)
    assert row.org_id == org.id and row.quantity == 3 and row.user_id == org.owner.id
    assert result["subscription"]["items"]["data"][0]["quantity"] == 3

    limit = await org_events.wait_for("org.seat_limit_changed", lambda e: e["data"]["org_id"] == str(org.id))
    assert limit["data"]["plan_code"] == plan["code"] and limit["data"]["max_seats"] == 50
    assert limit["data"]["limit_version"] == 1


async def test_min_seats_raises_the_quantity_and_max_seats_refuses_a_bigger_org(
    client: httpx.AsyncClient,
    new_plan: NewPlan,
    new_org: Any,
    publish_event: PublishEvent,
    sdk: stripe.StripeClient,
    db: async_sessionmaker[AsyncSession],
) -> None:
    org = await new_org()
    await publish_event(joined(org.id, 3, 2))
    await members_known(db, org.id, 2)
    small = await new_plan(**PER_SEAT, max_seats=2)
    refused = await org_subscribe(client, org.token(org.owner), small["code"], org.id)
    assert_problem(refused, 409, "seat-limit-exceeded")
    floor = await new_plan(**PER_SEAT, min_seats=5)
    response = await org_subscribe(client, org.token(org.owner), floor["code"], org.id)
    assert response.status_code == 201, response.text
    lines = sdk.v1.checkout.sessions.line_items.list(response.json()["session_id"])
    assert [line.quantity for line in lines.data] == [5]


# --- membership events and the Stripe quantity ---------------------------------------------------


async def test_joins_and_leaves_change_the_quantity_with_a_proration_credit_on_removal(
    client: httpx.AsyncClient,
    new_plan: NewPlan,
    new_org: Any,
    publish_event: PublishEvent,
    emulator: Emulator,
    sdk: stripe.StripeClient,
    db: async_sessionmaker[AsyncSession],
) -> None:
    org = await new_org()
    await members_known(db, org.id, 1)
    sub = await subscribed_org(client, emulator, db, org, await new_plan(**PER_SEAT))
    await emulator.advance(10 * 86400)

    await publish_event(joined(org.id, 2, 2))
    await stripe_quantity(sdk, sub.stripe_subscription_id, 2)
    await publish_event(left(org.id, 1, 3))
    await stripe_quantity(sdk, sub.stripe_subscription_id, 1)

    items = sdk.v1.invoice_items.list({"customer": sub.stripe_customer_id}).data
    prorations = sorted(item.amount for item in items if item.proration)
    assert prorations and prorations[0] < 0, "the seat removed is credited for the rest of the period"
    assert any(amount > 0 for amount in prorations), "the seat added is charged for the rest of the period"

    async def converged() -> bool:
        row = await subscription_row(db, sub.subscription_id)
        return row.quantity == 1

    await eventually(converged, "billing's copy of the quantity")
    updates = await seat_updates(emulator, org.id)
    assert len({u["idempotency_key"] for u in updates}) == 2
    member_view = await client.get(
        f"/billing/orgs/{org.id}/subscription", headers=org.token(org.owner, "member")
    )
    assert member_view.json()["quantity"] == 1 and member_view.json()["org_id"] == str(org.id)


async def test_duplicate_and_out_of_order_membership_events_change_nothing(
    client: httpx.AsyncClient,
    new_plan: NewPlan,
    new_org: Any,
    publish_event: PublishEvent,
    emulator: Emulator,
    sdk: stripe.StripeClient,
    db: async_sessionmaker[AsyncSession],
) -> None:
    org = await new_org()
    await members_known(db, org.id, 1)
    sub = await subscribed_org(client, emulator, db, org, await new_plan(**PER_SEAT))
    # two joins: version 3 (three members) arrives before version 2 (two), then both again
    await publish_event(joined(org.id, 3, 3))
    await stripe_quantity(sdk, sub.stripe_subscription_id, 3)
    stale = [
        await publish_event(joined(org.id, 2, 2)),
        await publish_event(joined(org.id, 3, 3)),
        await publish_event(joined(org.id, 2, 2)),
    ]
    await processed(db, *stale)
    row = await org_row(db, org.id)
    assert row is not None and (row.member_count, row.membership_version) == (3, 3)
    await asyncio.sleep(1.5)  # a seat worker round or more
    stripe_sub = sdk.v1.subscriptions.retrieve(sub.stripe_subscription_id)
    assert stripe_sub["items"].data[0].quantity == 3
    assert len(await seat_updates(emulator, org.id)) == 1


async def test_a_burst_of_twenty_joins_ends_with_the_right_quantity_in_few_updates(
    client: httpx.AsyncClient,
    new_plan: NewPlan,
    new_org: Any,
    publish_event: PublishEvent,
    emulator: Emulator,
    sdk: stripe.StripeClient,
    db: async_sessionmaker[AsyncSession],
) -> None:
    org = await new_org()
    await members_known(db, org.id, 1)
    sub = await subscribed_org(client, emulator, db, org, await new_plan(**PER_SEAT))
    burst = [joined(org.id, 1 + n, 1 + n) for n in range(1, 21)]
    random.shuffle(burst)
    await asyncio.gather(*(publish_event(event) for event in burst))

    await stripe_quantity(sdk, sub.stripe_subscription_id, 21)
    await members_known(db, org.id, 21)
    await asyncio.sleep(1.5)  # nothing more comes
    updates = await seat_updates(emulator, org.id)
    assert 1 <= len(updates) <= 5, updates
    row = await subscription_row(db, sub.subscription_id)
    assert row.quantity == 21
    assert sdk.v1.subscriptions.retrieve(sub.stripe_subscription_id)["items"].data[0].quantity == 21


# --- the org's end -------------------------------------------------------------------------------


async def test_a_deleted_org_has_its_subscription_canceled_at_once(
    client: httpx.AsyncClient,
    new_plan: NewPlan,
    new_org: Any,
    publish_event: PublishEvent,
    emulator: Emulator,
    sdk: stripe.StripeClient,
    db: async_sessionmaker[AsyncSession],
    org_events: EventTap,
) -> None:
    org = await new_org()
    await members_known(db, org.id, 1)
    plan = await new_plan(**PER_SEAT, max_seats=9)
    sub = await subscribed_org(client, emulator, db, org, plan)
    await publish_event(
        OrgDeleted(
            org_id=org.id, name="Acme", slug="acme", deleted_by=org.owner.id, deleted_at=datetime.now(UTC)
        )
    )
    row = await wait_for_status(db, sub.subscription_id, SubscriptionStatus.CANCELED)
    assert row.ended_at is not None
    assert sdk.v1.subscriptions.retrieve(sub.stripe_subscription_id).status == "canceled"

    def of_org(event: dict[str, Any]) -> bool:
        return bool(event["data"]["org_id"] == str(org.id))

    ended = await org_events.wait_for(
        "org.seat_limit_changed", lambda e: of_org(e) and e["data"]["plan_code"] is None
    )
    assert ended["data"]["max_seats"] is None and ended["data"]["limit_version"] == 2
    again = await org_subscribe(client, org.token(org.owner), plan["code"], org.id)
    assert_problem(again, 404, "org-not-found")


# --- what members read ---------------------------------------------------------------------------


async def test_members_read_the_orgs_billing_and_others_are_refused(
    client: httpx.AsyncClient,
    new_plan: NewPlan,
    new_org: Any,
    new_user: Callable[..., User],
    emulator: Emulator,
    db: async_sessionmaker[AsyncSession],
) -> None:
    org, other = await new_org(), await new_org()
    await members_known(db, org.id, 1)
    plan = await new_plan(**PER_SEAT)
    await subscribed_org(client, emulator, db, org, plan)
    member = org.token(new_user(), "member")

    subscription = await client.get(f"/billing/orgs/{org.id}/subscription", headers=member)
    assert subscription.status_code == 200, subscription.text
    body = subscription.json()
    assert body["status"] == "active" and body["plan"]["per_seat"] is True and body["quantity"] == 1

    entitlements = await client.get(f"/billing/orgs/{org.id}/entitlements", headers=member)
    assert entitlements.json()["features"] == ["sso", "audit-log"]
    # acting in the org, a member's own entitlements are the org's
    mine = await client.get("/billing/entitlements/me", headers=member)
    assert mine.json()["org_id"] == str(org.id) and mine.json()["plan_code"] == plan["code"]

    async def paid() -> list[dict[str, Any]]:
        page = await client.get(f"/billing/orgs/{org.id}/payments", headers=member)
        return [p for p in page.json()["items"] if p["status"] == "paid"]

    payments = await eventually(paid, "the org's first payment")
    assert payments[0]["amount_paid"] == 1000

    outsiders = {"another org": other.token(other.owner), "a personal token": org.owner.headers}
    for headers in outsiders.values():
        for path in ("subscription", "entitlements", "payments"):
            assert_problem(
                await client.get(f"/billing/orgs/{org.id}/{path}", headers=headers), 404, "org-not-found"
            )

    portal = await client.post(f"/billing/orgs/{org.id}/portal", headers=org.token(org.owner))
    assert portal.status_code == 200 and portal.json()["url"]
    assert_problem(
        await client.post(f"/billing/orgs/{org.id}/portal", headers=member), 403, "org-billing-forbidden"
    )


async def test_a_plan_change_at_stripe_announces_the_new_seat_limit(
    client: httpx.AsyncClient,
    new_plan: NewPlan,
    new_org: Any,
    publish_event: PublishEvent,
    emulator: Emulator,
    sdk: stripe.StripeClient,
    db: async_sessionmaker[AsyncSession],
    org_events: EventTap,
) -> None:
    org = await new_org()
    await publish_event(joined(org.id, 3, 2))
    await members_known(db, org.id, 2)
    sub = await subscribed_org(client, emulator, db, org, await new_plan(**PER_SEAT, max_seats=10))
    smaller = await new_plan(**{**PER_SEAT, "amount": 800}, max_seats=5)
    stripe_sub = sdk.v1.subscriptions.retrieve(sub.stripe_subscription_id)
    # as the Customer Portal's plan switch does: the item moves to the other plan's price
    sdk.v1.subscriptions.update(
        sub.stripe_subscription_id,
        {
            "items": [{"id": stripe_sub["items"].data[0].id, "price": smaller["stripe_price_id"]}],
            "proration_behavior": "none",
        },
    )

    def of_org(event: dict[str, Any]) -> bool:
        return bool(event["data"]["org_id"] == str(org.id))

    changed = await org_events.wait_for(
        "org.seat_limit_changed", lambda e: of_org(e) and e["data"]["plan_code"] == smaller["code"]
    )
    assert changed["data"]["max_seats"] == 5 and changed["data"]["limit_version"] == 2
    row = await subscription_row(db, sub.subscription_id)
    assert row.quantity == 3  # the seats are kept across the switch
