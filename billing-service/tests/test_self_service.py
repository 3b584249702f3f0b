"""What a customer reads about their own billing (the card on file, their invoices with hosted and
PDF links, read from Stripe through the SDK and the emulator), and one trial per customer."""

from __future__ import annotations

from typing import Any

import httpx
import stripe
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_service.models import SubscriptionStatus
from billing_service.pagination import encode_cursor
from conftest import (
    Emulator,
    NewPlan,
    PaidSubscription,
    User,
    assert_problem,
    eventually,
    settled,
    subscribe,
    wait_for_status,
)

DAY = 86400


async def test_my_payment_method_is_the_card_paid_with_at_checkout(
    client: httpx.AsyncClient, paid_subscription: PaidSubscription, sdk: stripe.StripeClient
) -> None:
    subscribed = await paid_subscription(amount=1900)
    response = await client.get("/billing/payment-method/me", headers=subscribed.user.headers)
    assert response.status_code == 200, response.text
    stripe_sub = sdk.v1.subscriptions.retrieve(
        subscribed.stripe_subscription_id, params={"expand": ["default_payment_method"]}
    )
    card = stripe_sub.default_payment_method.card  # type: ignore[union-attr]
    assert response.json() == {
        "brand": "visa",
        "last4": card.last4,
        "exp_month": card.exp_month,
        "exp_year": card.exp_year,
    }
    assert card.last4 == "4242"


async def test_the_customers_default_card_comes_first(
    client: httpx.AsyncClient, paid_subscription: PaidSubscription, sdk: stripe.StripeClient
) -> None:
    subscribed = await paid_subscription(amount=1900)
    [card] = sdk.v1.customers.payment_methods.list(subscribed.stripe_customer_id).data
    sdk.v1.customers.update(
        subscribed.stripe_customer_id, params={"invoice_settings": {"default_payment_method": card.id}}
    )
    # The subscription's own card is gone from Stripe's view: only the customer's default is left.
    sdk.v1.subscriptions.update(subscribed.stripe_subscription_id, params={"default_payment_method": ""})
    response = await client.get("/billing/payment-method/me", headers=subscribed.user.headers)
    assert response.status_code == 200 and response.json()["last4"] == card.card.last4  # type: ignore[union-attr]


async def test_no_card_on_file_is_a_404_problem(
    client: httpx.AsyncClient, new_user: Any, new_plan: NewPlan
) -> None:
    stranger: User = new_user()
    assert_problem(
        await client.get("/billing/payment-method/me", headers=stranger.headers),
        404,
        "payment-method-not-found",
    )
    # Checkout opened (so a Stripe customer exists) but never paid: still no card.
    hesitant: User = new_user()
    await subscribe(client, hesitant, (await new_plan())["code"])
    assert_problem(
        await client.get("/billing/payment-method/me", headers=hesitant.headers),
        404,
        "payment-method-not-found",
    )
    assert (await client.get("/billing/payment-method/me")).status_code == 401


async def test_my_invoices_show_number_amounts_and_working_links_newest_first(
    client: httpx.AsyncClient,
    paid_subscription: PaidSubscription,
    emulator: Emulator,
    sdk: stripe.StripeClient,
    db: async_sessionmaker[AsyncSession],
) -> None:
    subscribed = await paid_subscription(amount=2500, interval="day")
    first = (await client.get("/billing/invoices/me", headers=subscribed.user.headers)).json()
    [invoice] = first["items"]
    assert first["next_cursor"] is None
    assert (
        invoice["number"]
        and invoice["status"] == "paid"
        and invoice["billing_reason"] == "subscription_create"
    )
    assert (invoice["subtotal"], invoice["discount"], invoice["tax"], invoice["total"]) == (2500, 0, 0, 2500)
    assert (invoice["amount_paid"], invoice["amount_remaining"], invoice["currency"]) == (2500, 0, "usd")

    page = httpx.get(invoice["hosted_url"])
    assert page.status_code == 200 and invoice["number"] in page.text
    pdf = httpx.get(invoice["pdf_url"])
    assert pdf.headers["content-type"] == "application/pdf" and invoice["number"].encode() in pdf.content

    await emulator.advance(DAY + 60)  # the daily plan renews
    await settled(emulator, db)

    async def two_invoices() -> list[dict[str, Any]] | None:
        listed = (await client.get("/billing/invoices/me", headers=subscribed.user.headers)).json()["items"]
        return listed if len(listed) == 2 else None

    newest, oldest = await eventually(two_invoices, "the renewal invoice")
    assert oldest["id"] == invoice["id"] and newest["billing_reason"] == "subscription_cycle"
    assert newest["created_at"] > oldest["created_at"] and newest["number"] != oldest["number"]

    one = (await client.get("/billing/invoices/me?limit=1", headers=subscribed.user.headers)).json()
    assert [i["id"] for i in one["items"]] == [newest["id"]] and one["next_cursor"]
    rest = (
        await client.get(
            "/billing/invoices/me",
            params={"limit": 1, "cursor": one["next_cursor"]},
            headers=subscribed.user.headers,
        )
    ).json()
    assert [i["id"] for i in rest["items"]] == [oldest["id"]] and rest["next_cursor"] is None
    # A daily plan left running would renew every day other tests move the shared clock over.
    sdk.v1.subscriptions.cancel(subscribed.stripe_subscription_id)


async def test_invoices_refuse_bad_paging_and_are_empty_before_any_purchase(
    client: httpx.AsyncClient, new_user: Any
) -> None:
    user: User = new_user()
    assert (await client.get("/billing/invoices/me", headers=user.headers)).json() == {
        "items": [],
        "next_cursor": None,
    }
    assert_problem(
        await client.get("/billing/invoices/me", params={"cursor": "bm90LW91cnM"}, headers=user.headers),
        400,
        "invalid-cursor",
    )
    assert_problem(
        await client.get("/billing/invoices/me", params={"cursor": "%%%"}, headers=user.headers),
        400,
        "invalid-cursor",
    )
    too_many = await client.get("/billing/invoices/me", params={"limit": 1000}, headers=user.headers)
    assert too_many.status_code == 422 and too_many.headers["content-type"].startswith(
        "application/problem+json"
    )
    assert (await client.get("/billing/invoices/me")).status_code == 401


async def test_a_cursor_naming_someone_elses_invoice_shows_nothing_of_theirs(
    client: httpx.AsyncClient, paid_subscription: PaidSubscription
) -> None:
    owner = await paid_subscription(amount=1500)
    [theirs] = (await client.get("/billing/invoices/me", headers=owner.user.headers)).json()["items"]
    other = await paid_subscription(amount=1500)
    response = await client.get(
        "/billing/invoices/me", params={"cursor": encode_cursor(theirs["id"])}, headers=other.user.headers
    )
    assert response.status_code == 200
    assert all(i["id"] != theirs["id"] for i in response.json()["items"])


async def test_one_trial_per_customer_cancelling_and_subscribing_again_is_charged_at_once(
    client: httpx.AsyncClient,
    paid_subscription: PaidSubscription,
    emulator: Emulator,
    sdk: stripe.StripeClient,
    db: async_sessionmaker[AsyncSession],
) -> None:
    first = await paid_subscription(amount=3300, trial_days=14)
    assert sdk.v1.subscriptions.retrieve(first.stripe_subscription_id).status == "trialing"
    # Cancelled (here at once, as from Stripe's dashboard): the trial is over for good.
    sdk.v1.subscriptions.cancel(first.stripe_subscription_id)
    await wait_for_status(db, first.subscription_id, SubscriptionStatus.CANCELED)

    again = await subscribe(client, first.user, first.plan["code"])
    session = sdk.v1.checkout.sessions.retrieve(again["session_id"])
    assert session.amount_total == 3300
    result = await emulator.complete_checkout(again["session_id"], "paid")
    second = sdk.v1.subscriptions.retrieve(result["subscription"]["id"])
    assert second.status == "active" and second.trial_end is None
    await wait_for_status(db, again["subscription_id"], SubscriptionStatus.ACTIVE)
    invoices = (await client.get("/billing/invoices/me", headers=first.user.headers)).json()["items"]
    assert [i["amount_paid"] for i in invoices] == [3300, 0]  # the paid start, then the trial's $0


async def test_a_trial_on_another_plan_still_counts(
    client: httpx.AsyncClient,
    paid_subscription: PaidSubscription,
    new_plan: NewPlan,
    sdk: stripe.StripeClient,
    db: async_sessionmaker[AsyncSession],
) -> None:
    first = await paid_subscription(amount=1000, trial_days=7)
    sdk.v1.subscriptions.cancel(first.stripe_subscription_id)
    await wait_for_status(db, first.subscription_id, SubscriptionStatus.CANCELED)
    other = await new_plan(amount=2000, trial_days=30)
    again = await subscribe(client, first.user, other["code"])
    assert sdk.v1.checkout.sessions.retrieve(again["session_id"]).amount_total == 2000
