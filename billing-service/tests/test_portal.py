"""The Customer Portal: `POST /billing/portal` opens a Stripe portal session (through the SDK, on
the emulator) on a configuration kept in step with the active plans; what the person does on the
portal page comes back as webhooks and is applied; return URLs only to allowed origins."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import stripe
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_service.self_service.portal import MANAGED_BY
from billing_service.settings import Settings
from conftest import (
    Emulator,
    NewPlan,
    PaidSubscription,
    User,
    assert_problem,
    eventually,
    make_settings,
    settled,
    subscription_row,
)

DEFAULT_RETURN = "https://app.example.com/billing"  # on the Checkout URLs' origin (conftest)


async def open_portal(client: httpx.AsyncClient, user: User, **body: Any) -> str:
    response = await client.post("/billing/portal", json=body, headers=user.headers)
    assert response.status_code == 200, response.text
    url: str = response.json()["url"]
    return url


def managed_configuration(sdk: stripe.StripeClient) -> stripe.billing_portal.Configuration:
    found = [
        c
        for c in sdk.v1.billing_portal.configurations.list(params={"active": True, "limit": 100}).data
        if c.metadata and c.metadata.to_dict().get("managed_by") == MANAGED_BY
    ]
    assert len(found) == 1, found
    return found[0]


async def act(url: str, **form: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.post(url, data=form, follow_redirects=True)


async def test_a_subscriber_gets_a_portal_session_on_our_configuration(
    client: httpx.AsyncClient,
    paid_subscription: PaidSubscription,
    new_plan: NewPlan,
    sdk: stripe.StripeClient,
    stripe_url: str,
) -> None:
    other = await new_plan(name="Business", amount=9000)
    subscribed = await paid_subscription(name="Pro", amount=3000)
    url = await open_portal(client, subscribed.user, return_url="https://app.example.com/account/billing?x=1")
    assert url.startswith(f"{stripe_url}/billing_portal/bps_")

    config = managed_configuration(sdk)
    offered = {p.product: p.prices for p in config.features.subscription_update.products or []}
    for plan in (subscribed.plan, other):
        assert offered[plan["stripe_product_id"]] == [plan["stripe_price_id"]]
    assert config.features.payment_method_update.enabled and config.features.invoice_history.enabled
    assert config.features.subscription_cancel.mode == "at_period_end"
    assert config.default_return_url == DEFAULT_RETURN

    page = httpx.get(url)
    assert page.status_code == 200 and "$30.00 per month" in page.text
    assert 'href="https://app.example.com/account/billing?x=1"' in page.text
    assert "Switch to Business" in page.text


async def test_a_retired_plan_leaves_the_configuration_at_the_next_portal(
    client: httpx.AsyncClient,
    paid_subscription: PaidSubscription,
    new_plan: NewPlan,
    sdk: stripe.StripeClient,
    admin: dict[str, str],
) -> None:
    retiring = await new_plan(name="Soon gone", amount=4500)
    subscribed = await paid_subscription(amount=2000)
    await open_portal(client, subscribed.user)
    products = {p.product for p in managed_configuration(sdk).features.subscription_update.products or []}
    assert retiring["stripe_product_id"] in products

    assert (await client.delete(f"/billing/plans/{retiring['id']}", headers=admin)).status_code == 204
    url = await open_portal(client, subscribed.user)
    products = {p.product for p in managed_configuration(sdk).features.subscription_update.products or []}
    assert retiring["stripe_product_id"] not in products
    assert "Soon gone" not in httpx.get(url).text


async def test_a_card_updated_in_the_portal_is_my_payment_method(
    client: httpx.AsyncClient,
    paid_subscription: PaidSubscription,
    emulator: Emulator,
    db: async_sessionmaker[AsyncSession],
) -> None:
    subscribed = await paid_subscription(amount=1500)
    url = await open_portal(client, subscribed.user)
    done = await act(url, action="card", card_number="5555555555554444", exp_month="7", exp_year="2031")
    assert done.status_code == 200 and "Your payment method was updated." in done.text
    await settled(emulator, db)
    response = await client.get("/billing/payment-method/me", headers=subscribed.user.headers)
    assert response.json() == {"brand": "mastercard", "last4": "4444", "exp_month": 7, "exp_year": 2031}


async def test_cancel_and_switch_in_the_portal_are_applied_from_the_webhooks(
    client: httpx.AsyncClient,
    paid_subscription: PaidSubscription,
    new_plan: NewPlan,
    db: async_sessionmaker[AsyncSession],
) -> None:
    bigger = await new_plan(name="Bigger", amount=6000)
    subscribed = await paid_subscription(amount=3000)
    url = await open_portal(client, subscribed.user)

    switched = await act(
        url, action="switch", subscription=subscribed.stripe_subscription_id, price=bigger["stripe_price_id"]
    )
    assert switched.status_code == 200, switched.text

    async def on_bigger() -> bool:
        return str((await subscription_row(db, subscribed.subscription_id)).plan_id) == bigger["id"]

    await eventually(on_bigger, "the portal's plan switch to be applied")

    canceled = await act(url, action="cancel", subscription=subscribed.stripe_subscription_id)
    assert canceled.status_code == 200, canceled.text

    async def canceling() -> bool:
        return (await subscription_row(db, subscribed.subscription_id)).cancel_at_period_end

    await eventually(canceling, "the portal's cancellation to be applied")
    mine = await client.get("/billing/subscriptions/me", headers=subscribed.user.headers)
    assert mine.json()["cancel_at_period_end"] is True


FOREIGN_RETURN_URLS = (
    "https://evil.example.net/account/billing",
    "https://app.example.com.evil.example.net/",
    "https://user@app.example.com/",
    "//app.example.com/account",
    "/account/billing",
    "javascript:alert(1)",
    "ftp://app.example.com/",
    "https://app.example.com:99999/",
    "https://app.example.com\\@evil.example.net/",
)


async def test_a_return_url_off_the_allowed_origins_is_refused(
    client: httpx.AsyncClient, paid_subscription: PaidSubscription
) -> None:
    subscribed = await paid_subscription(amount=1200)  # one subscriber: each live one renews in every test
    for return_url in FOREIGN_RETURN_URLS:
        response = await client.post(
            "/billing/portal", json={"return_url": return_url}, headers=subscribed.user.headers
        )
        assert_problem(response, 422, "return-url-not-allowed")


async def test_bad_bodies_and_people_without_a_billing_account(
    client: httpx.AsyncClient, new_user: Any
) -> None:
    user = new_user()
    assert_problem(
        await client.post("/billing/portal", json={}, headers=user.headers), 404, "billing-account-not-found"
    )
    assert_problem(
        await client.post("/billing/portal", headers=user.headers), 404, "billing-account-not-found"
    )
    assert (await client.post("/billing/portal", json={})).status_code == 401
    long = {"return_url": "https://app.example.com/" + "a" * 2100}
    assert (await client.post("/billing/portal", json=long, headers=user.headers)).status_code == 422
    extra = {"return_url": DEFAULT_RETURN, "configuration": "bpc_mine"}
    assert (await client.post("/billing/portal", json=extra, headers=user.headers)).status_code == 422
    broken = await client.post(
        "/billing/portal", content=b"{", headers={**user.headers, "content-type": "application/json"}
    )
    assert_problem(broken, 400, "malformed-body")


def test_checkout_and_portal_urls_must_be_on_the_allowed_origins() -> None:
    with pytest.raises(ValueError, match="BILLING_PORTAL_RETURN_URL"):
        make_settings(
            return_origins=["https://app.example.com"], portal_return_url="https://elsewhere.example/"
        )
    with pytest.raises(ValueError, match="BILLING_CHECKOUT_SUCCESS_URL"):
        make_settings(
            return_origins=["https://elsewhere.example"], portal_return_url="https://elsewhere.example/"
        )
    settings: Settings = make_settings(portal_return_url="https://app.example.com/account/billing")
    assert settings.allowed_return_origins == {"https://app.example.com"}
