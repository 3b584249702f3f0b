"""Coupons and promotion codes: the admin API kept in step with Stripe, subscribing with a code (and
every reason a code is refused), the discount on the subscription and its payments, and discount
webhooks applied exactly once in any order."""

from __future__ import annotations

import json
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jsonschema
import pytest
import stripe
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_service.models import Coupon, PromotionCode, SubscriptionStatus
from conftest import (
    Emulator,
    NewPlan,
    PaidSubscription,
    WebhookEndpoint,
    eventually,
    payments_of,
    settled,
    signed,
    subscription_row,
    wait_for_status,
    webhooks_off,
)
from gatehouse_platform.fuzz import openapi_document, request_body_schema

PROBLEM_BASE = "https://gatehouse.dev/problems/"


def new_text() -> str:
    return f"CODE{uuid.uuid4().hex[:10].upper()}"


async def make_coupon(client: httpx.AsyncClient, admin: dict[str, str], **fields: Any) -> dict[str, Any]:
    """A coupon with the defaults `fields` override (a None leaves that field out)."""
    body = {
        k: v
        for k, v in {"name": "Launch", "percent_off": 20, "duration": "forever", **fields}.items()
        if v is not None
    }
    response = await client.post("/billing/coupons", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def make_code(
    client: httpx.AsyncClient, admin: dict[str, str], coupon_id: str, **fields: Any
) -> dict[str, Any]:
    body = {"code": new_text(), **fields}
    response = await client.post(f"/billing/coupons/{coupon_id}/promotion-codes", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def subscribe_with(client: httpx.AsyncClient, user: Any, plan_code: str, code: str) -> httpx.Response:
    return await client.post(
        "/billing/subscriptions/subscribe",
        json={"plan_code": plan_code, "promotion_code": code},
        headers=user.headers,
    )


def problem_type(response: httpx.Response) -> str:
    return str(response.json()["type"]).rsplit("/", 1)[-1]


async def test_an_admin_makes_lists_and_deletes_coupons_in_step_with_stripe(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    new_plan: NewPlan,
    new_user: Any,
    sdk: stripe.StripeClient,
    emulator: Emulator,
) -> None:
    plan = await new_plan()
    coupon = await make_coupon(
        client,
        admin,
        name="Spring",
        duration="repeating",
        duration_in_months=3,
        max_redemptions=50,
        applies_to=[plan["code"]],
    )
    assert (coupon["percent_off"], coupon["duration_in_months"], coupon["applies_to"]) == (
        20,
        3,
        [plan["code"]],
    )
    at_stripe = sdk.v1.coupons.retrieve(coupon["stripe_coupon_id"], params={"expand": ["applies_to"]})
    assert (at_stripe.name, at_stripe.percent_off, at_stripe.duration, at_stripe.max_redemptions) == (
        "Spring",
        20,
        "repeating",
        50,
    )
    assert at_stripe.applies_to.products == [plan["stripe_product_id"]]
    assert at_stripe.metadata["coupon_id"] == coupon["id"]
    requests = (await emulator.http.get("/_emulator/requests")).json()
    requests = requests["data"] if isinstance(requests, dict) else requests
    assert any(r["idempotency_key"] == f"coupon-{coupon['id']}-create" for r in requests)

    fixed = await make_coupon(
        client, admin, percent_off=None, amount_off=500, currency="EUR", duration="once"
    )
    assert (fixed["amount_off"], fixed["currency"], fixed["percent_off"]) == (500, "eur", None)
    listed = (await client.get("/billing/coupons", params={"limit": 100}, headers=admin)).json()["items"]
    assert [c["id"] for c in listed[:2]] == [fixed["id"], coupon["id"]]

    user = new_user()
    assert (await client.get("/billing/coupons", headers=user.headers)).status_code == 403
    assert (await client.post("/billing/coupons", json={"name": "x"}, headers=user.headers)).status_code in (
        403,
        422,
    )
    assert (await client.delete(f"/billing/coupons/{coupon['id']}", headers=user.headers)).status_code == 403

    code = await make_code(client, admin, coupon["id"])
    for _ in range(2):  # deleting twice is one deletion
        assert (await client.delete(f"/billing/coupons/{coupon['id']}", headers=admin)).status_code == 204
    with pytest.raises(stripe.InvalidRequestError):
        sdk.v1.coupons.retrieve(coupon["stripe_coupon_id"])
    assert sdk.v1.promotion_codes.retrieve(code["stripe_promotion_code_id"]).active is False
    listed = (await client.get("/billing/coupons", params={"limit": 100}, headers=admin)).json()["items"]
    assert coupon["id"] not in [c["id"] for c in listed]
    everything = await client.get(
        "/billing/coupons", params={"limit": 100, "include_deleted": True}, headers=admin
    )
    assert coupon["id"] in [c["id"] for c in everything.json()["items"]]
    refused = await client.post(
        f"/billing/coupons/{coupon['id']}/promotion-codes", json={"code": new_text()}, headers=admin
    )
    assert refused.status_code == 409 and problem_type(refused) == "coupon-deleted"
    missing = await client.delete(f"/billing/coupons/{uuid.uuid4()}", headers=admin)
    assert missing.status_code == 404 and problem_type(missing) == "coupon-not-found"


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Both", "percent_off": 10, "amount_off": 500, "currency": "usd", "duration": "once"},
        {"name": "Neither", "duration": "once"},
        {"name": "Too much", "percent_off": 101, "duration": "once"},
        {"name": "Nothing", "percent_off": 0, "duration": "once"},
        {"name": "No currency", "amount_off": 500, "duration": "once"},
        {"name": "Stray currency", "percent_off": 10, "currency": "usd", "duration": "once"},
        {"name": "Months?", "percent_off": 10, "duration": "repeating"},
        {"name": "Months!", "percent_off": 10, "duration": "forever", "duration_in_months": 2},
        {"name": "Null", "percent_off": None, "amount_off": 100, "currency": "usd", "duration": "once"},
        {"name": "Bad currency", "amount_off": 100, "currency": "xyz", "duration": "once"},
        {"name": "Which?", "percent_off": 10, "duration": "sometimes"},
    ],
)
async def test_an_invalid_coupon_body_is_a_422_and_makes_nothing(
    client: httpx.AsyncClient, admin: dict[str, str], body: dict[str, Any], sdk: stripe.StripeClient
) -> None:
    before = len(sdk.v1.coupons.list(params={"limit": 100}).data)
    response = await client.post("/billing/coupons", json=body, headers=admin)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert len(sdk.v1.coupons.list(params={"limit": 100}).data) == before


async def test_the_coupon_schema_refuses_what_the_server_refuses(client: httpx.AsyncClient) -> None:
    schema = request_body_schema(await openapi_document(client), "post", "/billing/coupons")
    for refused in (
        {"name": "Both", "percent_off": 10, "amount_off": 500, "currency": "usd", "duration": "once"},
        {"name": "No currency", "amount_off": 500, "duration": "once"},
        {"name": "Months?", "percent_off": 10, "duration": "repeating"},
        {"name": "Months!", "percent_off": 10, "duration": "once", "duration_in_months": 2},
        {"name": "Null", "percent_off": None, "amount_off": 100, "currency": "usd", "duration": "once"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(refused, schema)
    for admitted in (
        {"name": "Pct", "percent_off": 12.5, "duration": "repeating", "duration_in_months": 3},
        {"name": "Amt", "amount_off": 500, "currency": "usd", "duration": "forever", "applies_to": ["pro"]},
    ):
        jsonschema.validate(admitted, schema)


async def test_a_coupon_for_a_plan_that_does_not_exist_is_refused(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.post(
        "/billing/coupons",
        json={"name": "Ghost", "percent_off": 10, "duration": "once", "applies_to": ["no-such-plan"]},
        headers=admin,
    )
    assert response.status_code == 422 and problem_type(response) == "coupon-plan-unknown"


async def test_promotion_codes_are_made_listed_unique_and_deactivated(
    client: httpx.AsyncClient, admin: dict[str, str], sdk: stripe.StripeClient
) -> None:
    coupon = await make_coupon(client, admin)
    expires = datetime.now(UTC) + timedelta(days=400)
    code = await make_code(
        client, admin, coupon["id"], max_redemptions=5, expires_at=expires.isoformat(), first_time_only=True
    )
    at_stripe = sdk.v1.promotion_codes.retrieve(code["stripe_promotion_code_id"])
    assert (at_stripe.code, at_stripe.max_redemptions, at_stripe.expires_at) == (
        code["code"],
        5,
        int(expires.timestamp()),
    )
    assert at_stripe.promotion.coupon == coupon["stripe_coupon_id"]
    assert at_stripe.restrictions.first_time_transaction is True

    clash = await client.post(
        f"/billing/coupons/{coupon['id']}/promotion-codes", json={"code": code["code"].lower()}, headers=admin
    )
    assert clash.status_code == 409 and problem_type(clash) == "promotion-code-taken"
    for bad in ({"code": "a b"}, {"code": "x"}, {"code": new_text(), "max_redemptions": 0}, {"code": None}):
        response = await client.post(
            f"/billing/coupons/{coupon['id']}/promotion-codes", json=bad, headers=admin
        )
        assert response.status_code == 422, bad
    listed = await client.get(f"/billing/coupons/{coupon['id']}/promotion-codes", headers=admin)
    assert [c["id"] for c in listed.json()["items"]] == [code["id"]]

    path = f"/billing/coupons/{coupon['id']}/promotion-codes/{code['id']}/deactivate"
    for _ in range(2):
        stopped = await client.post(path, headers=admin)
        assert stopped.status_code == 200 and stopped.json()["active"] is False
    assert sdk.v1.promotion_codes.retrieve(code["stripe_promotion_code_id"]).active is False
    other = await make_coupon(client, admin)
    wrong = await client.post(
        f"/billing/coupons/{other['id']}/promotion-codes/{code['id']}/deactivate", headers=admin
    )
    assert wrong.status_code == 404 and problem_type(wrong) == "promotion-code-not-found"
    again = await make_code(client, admin, coupon["id"], code=code["code"])  # free again once inactive
    assert again["active"] is True


@dataclass
class Shop:
    """What a purchase test touches: billing's API, Stripe's side, the database."""

    client: httpx.AsyncClient
    admin: dict[str, str]
    new_plan: NewPlan
    new_user: Any
    emulator: Emulator
    sdk: stripe.StripeClient
    db: async_sessionmaker[AsyncSession]


@pytest.fixture
def shop(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    new_plan: NewPlan,
    new_user: Any,
    emulator: Emulator,
    sdk: stripe.StripeClient,
    db: async_sessionmaker[AsyncSession],
) -> Shop:
    return Shop(client, admin, new_plan, new_user, emulator, sdk, db)


async def test_subscribing_with_a_promotion_code_discounts_the_payment_and_shows_on_the_subscription(
    shop: Shop,
) -> None:
    client, admin, new_plan, new_user = shop.client, shop.admin, shop.new_plan, shop.new_user
    emulator, sdk, db = shop.emulator, shop.sdk, shop.db
    plan = await new_plan(amount=4000)
    coupon = await make_coupon(
        client, admin, name="Half off", percent_off=50, duration="repeating", duration_in_months=2
    )
    code = await make_code(client, admin, coupon["id"])
    user = new_user()
    response = await subscribe_with(client, user, plan["code"], code["code"].lower())
    assert response.status_code == 201, response.text
    checkout = response.json()
    session = sdk.v1.checkout.sessions.retrieve(checkout["session_id"])
    assert session.discounts[0].promotion_code == code["stripe_promotion_code_id"]
    assert session.amount_total == 2000 and not session.allow_promotion_codes

    await emulator.complete_checkout(checkout["session_id"], "paid")
    await wait_for_status(db, checkout["subscription_id"], SubscriptionStatus.ACTIVE)
    await settled(emulator, db)
    mine = (await client.get("/billing/subscriptions/me", headers=user.headers)).json()
    discount = mine["discount"]
    assert (discount["name"], discount["percent_off"], discount["amount_off"], discount["duration"]) == (
        "Half off",
        50,
        None,
        "repeating",
    )
    assert discount["promotion_code"] == code["code"] and discount["coupon_id"] == coupon["id"]
    assert discount["ends_at"] is not None and mine["amount"] == 4000
    payments = (await client.get("/billing/payments/me", headers=user.headers)).json()["items"]
    assert [(p["amount_paid"], p["amount_discount"]) for p in payments] == [(2000, 2000)]
    assert [p.amount_discount for p in await payments_of(db, user.id)] == [2000]


async def test_checkout_without_a_code_lets_the_customer_type_one(shop: Shop) -> None:
    client, admin, new_plan, new_user = shop.client, shop.admin, shop.new_plan, shop.new_user
    emulator, sdk, db = shop.emulator, shop.sdk, shop.db
    plan = await new_plan(amount=3000)
    coupon = await make_coupon(
        client, admin, name="Five off", percent_off=None, amount_off=500, currency="usd", duration="once"
    )
    code = await make_code(client, admin, coupon["id"])
    user = new_user()
    checkout = (
        await client.post(
            "/billing/subscriptions/subscribe", json={"plan_code": plan["code"]}, headers=user.headers
        )
    ).json()
    assert sdk.v1.checkout.sessions.retrieve(checkout["session_id"]).allow_promotion_codes is True
    typed = await emulator.http.post(
        f"/_emulator/checkout/sessions/{checkout['session_id']}/complete",
        json={"outcome": "paid", "promotion_code": code["code"]},
    )
    assert typed.status_code == 200, typed.text
    await wait_for_status(db, checkout["subscription_id"], SubscriptionStatus.ACTIVE)
    await settled(emulator, db)
    mine = (await client.get("/billing/subscriptions/me", headers=user.headers)).json()
    assert (mine["discount"]["amount_off"], mine["discount"]["currency"], mine["discount"]["duration"]) == (
        500,
        "usd",
        "once",
    )
    assert mine["discount"]["ends_at"] == mine["current_period_end"]
    payments = (await client.get("/billing/payments/me", headers=user.headers)).json()["items"]
    assert [(p["amount_paid"], p["amount_discount"]) for p in payments] == [(2500, 500)]


async def test_an_unknown_expired_used_up_or_inapplicable_code_is_refused_with_its_own_type(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    new_plan: NewPlan,
    new_user: Any,
    emulator: Emulator,
    db: async_sessionmaker[AsyncSession],
) -> None:
    plan, other_plan = await new_plan(), await new_plan()
    euros = await new_plan(currency="eur")
    coupon = await make_coupon(client, admin)
    single = await make_code(client, admin, coupon["id"], max_redemptions=1)
    expiring = await make_code(
        client, admin, coupon["id"], expires_at=(datetime.now(UTC) + timedelta(days=1)).isoformat()
    )
    async with db() as session, session.begin():  # a day later
        await session.execute(
            update(PromotionCode)
            .where(PromotionCode.id == uuid.UUID(expiring["id"]))
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    narrow = await make_coupon(client, admin, applies_to=[other_plan["code"]])
    narrow_code = await make_code(client, admin, narrow["id"])
    dollars = await make_coupon(client, admin, percent_off=None, amount_off=300, currency="usd")
    dollars_code = await make_code(client, admin, dollars["id"])
    stopped = await make_code(client, admin, coupon["id"])
    await client.post(
        f"/billing/coupons/{coupon['id']}/promotion-codes/{stopped['id']}/deactivate", headers=admin
    )
    ended = await make_coupon(client, admin, redeem_by=(datetime.now(UTC) + timedelta(days=1)).isoformat())
    ended_code = await make_code(client, admin, ended["id"])
    async with db() as session, session.begin():
        await session.execute(
            update(Coupon).where(Coupon.id == uuid.UUID(ended["id"])).values(redeem_by=datetime.now(UTC))
        )

    first = new_user()
    used = await subscribe_with(client, first, plan["code"], single["code"])
    assert used.status_code == 201
    await emulator.complete_checkout(used.json()["session_id"], "paid")
    await wait_for_status(db, used.json()["subscription_id"], SubscriptionStatus.ACTIVE)

    user = new_user()
    cases = [
        ("NOSUCHCODE", plan, "promotion-code-unknown", "There is no promotion code"),
        (expiring["code"], plan, "promotion-code-expired", "expired on"),
        (stopped["code"], plan, "promotion-code-expired", "no longer active"),
        (ended_code["code"], plan, "promotion-code-expired", "no longer valid"),
        (single["code"], plan, "promotion-code-used-up", "used as often as it may be"),
        (narrow_code["code"], plan, "promotion-code-not-applicable", other_plan["code"]),
        (dollars_code["code"], euros, "promotion-code-not-applicable", "amount in usd"),
    ]
    for text, target, kind, message in cases:
        response = await subscribe_with(client, user, target["code"], text)
        assert response.status_code == 422, (text, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert problem_type(response) == kind and message in response.json()["detail"], response.json()
    assert (await client.get("/billing/subscriptions/me", headers=user.headers)).status_code == 404
    for bad in (
        {"plan_code": plan["code"], "promotion_code": None},
        {"plan_code": plan["code"], "promotion_code": ""},
        {"plan_code": plan["code"], "promotion_code": "  "},
    ):
        response = await client.post("/billing/subscriptions/subscribe", json=bad, headers=user.headers)
        assert response.status_code == 422


async def test_a_first_time_code_is_refused_to_a_customer_who_paid_before(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    paid_subscription: PaidSubscription,
    new_user: Any,
    sdk: stripe.StripeClient,
    emulator: Emulator,
    db: async_sessionmaker[AsyncSession],
) -> None:
    subscribed = await paid_subscription()
    sdk.v1.subscriptions.cancel(subscribed.stripe_subscription_id)
    await wait_for_status(db, subscribed.subscription_id, SubscriptionStatus.CANCELED)
    coupon = await make_coupon(client, admin)
    welcome = await make_code(client, admin, coupon["id"], first_time_only=True)
    again = await subscribe_with(client, subscribed.user, subscribed.plan["code"], welcome["code"])
    assert again.status_code == 422 and problem_type(again) == "promotion-code-first-time-only"
    newcomer = await subscribe_with(client, new_user(), subscribed.plan["code"], welcome["code"])
    assert newcomer.status_code == 201


async def test_discount_webhooks_duplicated_and_reordered_leave_stripes_discount(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    paid_subscription: PaidSubscription,
    sdk: stripe.StripeClient,
    emulator: Emulator,
    webhook_endpoint: WebhookEndpoint,
    db: async_sessionmaker[AsyncSession],
) -> None:
    subscribed = await paid_subscription()
    first = await make_coupon(client, admin, name="First")
    second = await make_coupon(client, admin, name="Second", percent_off=30)
    since = await emulator.now()
    async with webhooks_off(sdk, webhook_endpoint, emulator, db):
        sdk.v1.subscriptions.update(
            subscribed.stripe_subscription_id, params={"discounts": [{"coupon": first["stripe_coupon_id"]}]}
        )
        sdk.v1.subscriptions.update(
            subscribed.stripe_subscription_id, params={"discounts": [{"coupon": second["stripe_coupon_id"]}]}
        )
    missed = [
        e.to_dict(for_json=True)
        for e in sdk.v1.events.list(params={"limit": 100, "created": {"gte": since}}).data
        if e.type.startswith(("customer.discount.", "customer.subscription."))
        and subscribed.stripe_subscription_id in json.dumps(e.to_dict(for_json=True))
    ]
    assert {e["type"] for e in missed} >= {"customer.discount.created", "customer.discount.deleted"}
    deliveries = [*missed, *missed]
    random.Random(16).shuffle(deliveries)
    deliveries.sort(key=lambda e: e["type"] != "customer.discount.created")  # the oldest news first
    for event in reversed(deliveries):
        body = json.dumps(event)
        response = await client.post(
            "/billing/stripe/webhook",
            content=body,
            headers=signed(body, webhook_endpoint.secret, int(time.time())),
        )
        assert response.status_code == 200
    await settled(emulator, db)
    row = await subscription_row(db, subscribed.subscription_id)
    assert row.discount_stripe_coupon_id == second["stripe_coupon_id"]
    mine = (await client.get("/billing/subscriptions/me", headers=subscribed.user.headers)).json()
    assert mine["discount"]["name"] == "Second" and mine["discount"]["percent_off"] == 30

    sdk.v1.subscriptions.delete_discount(subscribed.stripe_subscription_id)  # e.g. in the dashboard
    await settled(emulator, db)

    async def discount_gone() -> bool:
        return (await subscription_row(db, subscribed.subscription_id)).stripe_discount_id is None

    await eventually(discount_gone, "the removed discount to be applied")
    for event in missed:  # stale copies of the earlier news change nothing
        body = json.dumps({**event, "id": f"{event['id']}_late"})
        await client.post(
            "/billing/stripe/webhook",
            content=body,
            headers=signed(body, webhook_endpoint.secret, int(time.time())),
        )
    await settled(emulator, db)
    mine = (await client.get("/billing/subscriptions/me", headers=subscribed.user.headers)).json()
    assert mine["discount"] is None
