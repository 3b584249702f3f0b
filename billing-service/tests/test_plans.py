"""Plans: the public catalogue, admin create / update / retire, and their Stripe products and prices."""

from __future__ import annotations

from typing import Any

import httpx
import stripe
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_service.models import PlanPrice
from conftest import NewPlan, PaidSubscription, new_code, subscribe


async def test_admin_creates_a_plan_with_its_stripe_product_and_price(
    client: httpx.AsyncClient, new_plan: NewPlan, sdk: stripe.StripeClient
) -> None:
    plan = await new_plan(
        name="Team", tier="business", amount=4900, interval="year", trial_days=7, description="x"
    )
    assert plan["active"] is True and plan["trial_days"] == 7
    product = sdk.v1.products.retrieve(plan["stripe_product_id"])
    price = sdk.v1.prices.retrieve(plan["stripe_price_id"])
    assert product.name == "Team" and product.active and product.default_price == price.id
    assert product.metadata["plan_code"] == plan["code"]
    assert (price.unit_amount, price.currency, price.recurring.interval) == (4900, "usd", "year")
    assert price.product == product.id and price.active

    public = await client.get(f"/billing/plans/{plan['id']}")
    assert public.status_code == 200 and public.json()["code"] == plan["code"]


async def test_plan_creation_is_for_admins_only(client: httpx.AsyncClient, new_user: Any) -> None:
    body = {"code": new_code(), "name": "X", "tier": "pro", "amount": 100}
    anonymous = await client.post("/billing/plans", json=body)
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"].startswith("application/problem+json")
    forbidden = await client.post("/billing/plans", json=body, headers=new_user().headers)
    assert forbidden.status_code == 403
    assert forbidden.json()["status"] == 403


async def test_a_taken_code_is_a_conflict(
    client: httpx.AsyncClient, new_plan: NewPlan, admin: dict[str, str]
) -> None:
    plan = await new_plan()
    again = await client.post(
        "/billing/plans",
        json={"code": plan["code"], "name": "X", "tier": "pro", "amount": 100},
        headers=admin,
    )
    assert again.status_code == 409
    assert again.json()["type"].endswith("/plan-code-taken")


async def test_invalid_plans_are_refused_with_field_errors(
    client: httpx.AsyncClient, new_plan: NewPlan, admin: dict[str, str]
) -> None:
    response = await client.post(
        "/billing/plans",
        json={"code": "Not A Code", "name": "", "tier": "gold", "amount": -1, "currency": "dollars"},
        headers=admin,
    )
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert {"code", "name", "tier", "amount", "currency"} <= set(errors)
    patch = await client.patch(
        f"/billing/plans/{(await new_plan())['id']}", json={"name": None}, headers=admin
    )
    assert patch.status_code == 422 and "name" in patch.json()["errors"]


async def test_a_price_change_makes_a_new_stripe_price_and_archives_the_old(
    client: httpx.AsyncClient,
    new_plan: NewPlan,
    admin: dict[str, str],
    sdk: stripe.StripeClient,
    db: async_sessionmaker[AsyncSession],
) -> None:
    plan = await new_plan(amount=1500)
    old_price = plan["stripe_price_id"]
    response = await client.patch(
        f"/billing/plans/{plan['id']}",
        json={"amount": 2500, "name": "Pro 2", "features": ["api"], "tier": "business"},
        headers=admin,
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["amount"] == 2500 and updated["name"] == "Pro 2" and updated["features"] == ["api"]
    assert (
        updated["stripe_price_id"] != old_price and updated["stripe_product_id"] == plan["stripe_product_id"]
    )
    assert sdk.v1.prices.retrieve(old_price).active is False
    new_price = sdk.v1.prices.retrieve(updated["stripe_price_id"])
    assert (
        new_price.active and new_price.unit_amount == 2500 and new_price.product == plan["stripe_product_id"]
    )
    product = sdk.v1.products.retrieve(plan["stripe_product_id"])
    assert product.name == "Pro 2" and product.default_price == new_price.id
    async with db() as session:
        history = (
            await session.execute(
                select(PlanPrice).where(PlanPrice.stripe_price_id.in_([old_price, new_price.id]))
            )
        ).scalars()
        by_id = {p.stripe_price_id: p for p in history}
    assert by_id[old_price].amount == 1500 and by_id[old_price].archived_at is not None
    assert by_id[new_price.id].amount == 2500 and by_id[new_price.id].archived_at is None

    # Changing only the description makes no new price.
    same = await client.patch(
        f"/billing/plans/{plan['id']}", json={"description": "new words"}, headers=admin
    )
    assert same.json()["stripe_price_id"] == new_price.id
    assert sdk.v1.products.retrieve(plan["stripe_product_id"]).description == "new words"


async def test_retiring_a_plan_archives_it_blocks_new_subscriptions_and_keeps_existing_ones(
    client: httpx.AsyncClient,
    paid_subscription: PaidSubscription,
    new_plan: NewPlan,
    admin: dict[str, str],
    sdk: stripe.StripeClient,
    new_user: Any,
) -> None:
    plan = await new_plan()
    existing = await paid_subscription(plan)

    deleted = await client.delete(f"/billing/plans/{plan['id']}", headers=admin)
    assert deleted.status_code == 204
    again = await client.delete(f"/billing/plans/{plan['id']}", headers=admin)
    assert again.status_code == 204  # idempotent

    assert sdk.v1.prices.retrieve(plan["stripe_price_id"]).active is False
    assert sdk.v1.products.retrieve(plan["stripe_product_id"]).active is False
    listing = (await client.get("/billing/plans", params={"limit": 100})).json()
    assert plan["code"] not in {p["code"] for p in listing["items"]}
    admin_listing = await client.get("/billing/admin/plans", params={"limit": 100}, headers=admin)
    codes = set()
    body = admin_listing.json()
    codes |= {p["code"] for p in body["items"]}
    while body["next_cursor"]:
        body = (
            await client.get(
                "/billing/admin/plans", params={"limit": 100, "cursor": body["next_cursor"]}, headers=admin
            )
        ).json()
        codes |= {p["code"] for p in body["items"]}
    assert plan["code"] in codes

    refused = await client.post(
        "/billing/subscriptions/subscribe", json={"plan_code": plan["code"]}, headers=new_user().headers
    )
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("/plan-not-available")

    # The subscriber keeps the plan: still active at Stripe and here.
    assert sdk.v1.subscriptions.retrieve(existing.stripe_subscription_id).status == "active"
    mine = (await client.get("/billing/subscriptions/me", headers=existing.user.headers)).json()
    assert mine["status"] == "active" and mine["plan"]["code"] == plan["code"] and mine["has_access"]

    # Offered again: a new subscriber can start it.
    revived = await client.patch(f"/billing/plans/{plan['id']}", json={"active": True}, headers=admin)
    assert revived.status_code == 200 and revived.json()["active"] is True
    assert sdk.v1.prices.retrieve(plan["stripe_price_id"]).active is True
    await subscribe(client, new_user(), plan["code"])


async def test_the_public_list_is_paginated_cheapest_first(
    client: httpx.AsyncClient, new_plan: NewPlan
) -> None:
    for amount in (1, 2, 3):
        await new_plan(amount=amount)
    first = (await client.get("/billing/plans", params={"limit": 2})).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = (await client.get("/billing/plans", params={"limit": 2, "cursor": first["next_cursor"]})).json()
    amounts = [p["amount"] for p in first["items"] + second["items"]]
    assert amounts == sorted(amounts)
    bad = await client.get("/billing/plans", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 400 and bad.json()["type"].endswith("/invalid-cursor")


async def test_unknown_plans_are_not_found(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    missing = await client.get("/billing/plans/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and missing.json()["type"].endswith("/plan-not-found")
    patch = await client.patch(
        "/billing/plans/00000000-0000-0000-0000-000000000000", json={"name": "x"}, headers=admin
    )
    assert patch.status_code == 404
