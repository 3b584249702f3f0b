"""docs/architecture.md flows 6–10 through the gateway: plans managed by an admin with Stripe
following, Checkout to an active subscription, renewal, failed payment, plan change, cancellation,
deactivation, and Stripe's webhooks (straight to billing-service) applied once however often they come.

The Stripe emulator has one clock for the whole run, so these journeys run in order, in one test
module, each on users and plans of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import stripe

from conftest import ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, System, bearer, text_of, verified_user
from gatehouse_platform.testing import eventually, rows_mentioning

DAY = 86400


@pytest.fixture(scope="module")
def sdk(system: System) -> stripe.StripeClient:
    """Stripe's own SDK, to look at what billing-service did at 'Stripe'."""
    return stripe.StripeClient(
        "sk_test_e2e_observer", base_addresses={"api": system.urls["stripe"]}, max_network_retries=0
    )


class Stripe:
    """The emulator's control endpoints: what a test (or a person clicking) does at 'Stripe'."""

    def __init__(self, base: str) -> None:
        self.http = httpx.AsyncClient(base_url=base, timeout=30)

    async def pay(self, session_id: str, outcome: str = "paid") -> None:
        response = await self.http.post(
            f"/_emulator/checkout/sessions/{session_id}/complete", json={"outcome": outcome}
        )
        assert response.status_code == 200, response.text

    async def advance(self, seconds: int) -> None:
        assert (
            await self.http.post("/_emulator/clock/advance", json={"seconds": seconds})
        ).status_code == 200

    async def card_of(self, customer: str, outcome: str) -> None:
        response = await self.http.post(
            f"/_emulator/customers/{customer}/payment_behavior", json={"outcome": outcome}
        )
        assert response.status_code == 200, response.text

    async def chaos(self, **settings: Any) -> None:
        assert (await self.http.post("/_emulator/webhooks/chaos", json=settings)).status_code == 200

    async def flush(self) -> None:
        await self.http.post("/_emulator/webhooks/flush")


@pytest.fixture(scope="module")
async def at_stripe(system: System) -> Stripe:
    return Stripe(system.urls["stripe"])


@pytest.fixture(scope="module")
async def admin(client: httpx.AsyncClient) -> dict[str, str]:
    response = await client.post("/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert response.status_code == 200, response.text
    return bearer(response.json())


@pytest.fixture(scope="module")
async def plans(client: httpx.AsyncClient, admin: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Two plans of this run, created by the admin through the gateway."""
    run = uuid.uuid4().hex[:6]
    created = {}
    for code, tier, amount, features in (
        (f"basic-{run}", "starter", 900, ["projects:3"]),
        (f"pro-{run}", "pro", 2900, ["projects:unlimited", "priority-support"]),
    ):
        body = {"code": code, "name": code.title(), "tier": tier, "amount": amount, "features": features}
        response = await client.post("/billing/plans", json=body, headers=admin)
        assert response.status_code == 201, response.text
        created[tier] = response.json()
    return created


async def subscribed(
    system: System, client: httpx.AsyncClient, at_stripe: Stripe, plan: dict[str, Any]
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """A verified user who went through Checkout and paid: their email, token, subscription."""
    email, auth = await verified_user(system, client)
    checkout = await client.post(
        "/billing/subscriptions/subscribe", json={"plan_code": plan["code"]}, headers=auth
    )
    assert checkout.status_code == 201, checkout.text
    page = await at_stripe.http.get(checkout.json()["checkout_url"].removeprefix(system.urls["stripe"]))
    assert page.status_code == 200 and "Pay" in page.text  # the page a person would click through
    await at_stripe.pay(checkout.json()["session_id"])

    async def active() -> dict[str, Any] | None:
        response = await client.get("/billing/subscriptions/me", headers=auth)
        body = response.json() if response.status_code == 200 else None
        return body if body and body["status"] == "active" else None

    return email, auth, await eventually(active, "the subscription to become active", within=30)


async def test_admin_manages_plans_and_stripe_follows(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    plans: dict[str, dict[str, Any]],
    sdk: stripe.StripeClient,
) -> None:
    pro = plans["pro"]
    listed = (await client.get("/billing/plans")).json()["items"]
    assert {pro["code"], plans["starter"]["code"]} <= {p["code"] for p in listed}

    old_price = pro["stripe_price_id"]
    changed = await client.patch(f"/billing/plans/{pro['id']}", json={"amount": 3900}, headers=admin)
    assert changed.status_code == 200, changed.text
    assert changed.json()["stripe_price_id"] != old_price
    assert sdk.v1.prices.retrieve(old_price).active is False  # prices are immutable: archived
    assert sdk.v1.prices.retrieve(changed.json()["stripe_price_id"]).unit_amount == 3900
    plans["pro"] = changed.json()

    retired = await client.post(
        "/billing/plans",
        json={"code": f"old-{uuid.uuid4().hex[:6]}", "name": "Old", "tier": "starter", "amount": 100},
        headers=admin,
    )
    assert (await client.delete(f"/billing/plans/{retired.json()['id']}", headers=admin)).status_code in (
        200,
        204,
    )
    assert retired.json()["code"] not in {
        p["code"] for p in (await client.get("/billing/plans")).json()["items"]
    }
    assert sdk.v1.products.retrieve(retired.json()["stripe_product_id"]).active is False
    assert (await client.post("/billing/plans", json={}, headers={})).status_code == 401  # admins only


async def test_checkout_to_active_subscription_with_emails(
    system: System, client: httpx.AsyncClient, at_stripe: Stripe, plans: dict[str, dict[str, Any]]
) -> None:
    email, auth, subscription = await subscribed(system, client, at_stripe, plans["starter"])
    assert subscription["plan"]["code"] == plans["starter"]["code"]
    entitlements = (await client.get("/billing/entitlements/me", headers=auth)).json()
    assert entitlements["features"] == ["projects:3"]
    await system.wait_for_mail(email, "subscription is active")
    await system.wait_for_mail(email, "receipt")
    payments = (await client.get("/billing/payments/me", headers=auth)).json()["items"]
    assert [(p["status"], p["amount_paid"]) for p in payments] == [("paid", 900)]
    card = (await client.get("/billing/payment-method/me", headers=auth)).json()
    assert (card["brand"], card["last4"]) == ("visa", "4242")
    [invoice] = (await client.get("/billing/invoices/me", headers=auth)).json()["items"]
    assert (invoice["status"], invoice["total"]) == ("paid", 900) and invoice["number"]
    assert (await client.get("/billing/invoices/me")).status_code == 401  # the gateway wants a token
    again = await client.post(
        "/billing/subscriptions/subscribe", json={"plan_code": plans["pro"]["code"]}, headers=auth
    )
    assert again.status_code == 409


async def test_renewal_failed_payment_upgrade_cancel_and_period_end(
    system: System,
    client: httpx.AsyncClient,
    at_stripe: Stripe,
    plans: dict[str, dict[str, Any]],
    sdk: stripe.StripeClient,
) -> None:
    email, auth, subscription = await subscribed(system, client, at_stripe, plans["starter"])
    first_end = subscription["current_period_end"]

    # Renewal: the period moves on, the payment is recorded, the customer hears of it.
    await at_stripe.advance(31 * DAY)

    async def renewed() -> dict[str, Any] | None:
        body = (await client.get("/billing/subscriptions/me", headers=auth)).json()
        return body if body["current_period_end"] != first_end else None

    await eventually(renewed, "the renewal", within=30)
    await system.wait_for_mail(email, "renewed")

    async def two_payments() -> list[Any] | None:
        items = (await client.get("/billing/payments/me", headers=auth)).json()["items"]
        return items if len(items) == 2 else None

    assert {p["status"] for p in await eventually(two_payments, "the renewal payment", within=30)} == {"paid"}

    # Upgrade: the same Stripe subscription changes price, prorated; never a second subscription.
    upgraded = await client.post(
        "/billing/subscriptions/upgrade", json={"plan_code": plans["pro"]["code"]}, headers=auth
    )
    assert upgraded.status_code == 200, upgraded.text
    await system.wait_for_mail(email, "you are now on")
    customer = sdk.v1.customers.list(params={"email": email}).data[0].id
    stripe_subscriptions = sdk.v1.subscriptions.list(params={"customer": customer, "status": "all"}).data
    assert len(stripe_subscriptions) == 1
    entitlements = (await client.get("/billing/entitlements/me", headers=auth)).json()
    assert "priority-support" in entitlements["features"]

    # A failed renewal: past due, and an email saying what to do, linking to where the card is updated.
    await at_stripe.card_of(customer, "declined")
    await at_stripe.advance(31 * DAY)
    failed = await system.wait_for_mail(email, "failed")
    assert f"{system.urls['gateway']}/billing" in text_of(failed)

    async def past_due() -> dict[str, Any] | None:
        body = (await client.get("/billing/subscriptions/me", headers=auth)).json()
        return body if body["status"] == "past_due" and body["next_payment_attempt"] else None

    dunning = await eventually(past_due, "past_due", within=30)
    assert dunning["grace_until"] and dunning["restricted"] is False
    # The card is updated; Stripe's retry 3 days later pays: "payment recovered", access as before.
    await at_stripe.card_of(customer, "paid")
    await at_stripe.advance(3 * DAY + 3600)
    await system.wait_for_mail(email, "recovered")

    async def recovered() -> bool:
        body = (await client.get("/billing/subscriptions/me", headers=auth)).json()
        return body["status"] == "active" and body["grace_until"] is None

    await eventually(recovered, "active again", within=30)

    # Cancel at period end; at the end, access ends.
    cancelled = await client.post("/billing/subscriptions/cancel", headers=auth)
    assert cancelled.status_code == 200, cancelled.text
    await system.wait_for_mail(email, "ends on")
    await at_stripe.advance(62 * DAY)

    async def ended() -> bool:
        return (await client.get("/billing/entitlements/me", headers=auth)).json()["features"] == []

    await eventually(ended, "access to end", within=30)
    await system.wait_for_mail(email, "has ended")


async def test_promotion_code_dunning_portal_refund_and_scheduled_downgrade(
    system: System,
    client: httpx.AsyncClient,
    at_stripe: Stripe,
    admin: dict[str, str],
    plans: dict[str, dict[str, Any]],
    sdk: stripe.StripeClient,
) -> None:
    """Issue 16's journey: subscribe with a promotion code, a renewal fails, the card is updated on
    the Customer Portal's page, Stripe's retry pays ("payment recovered"), an admin refunds half of
    it, a downgrade waits for the period end, and then the cheaper plan is the one billed."""
    pro, starter = plans["pro"], plans["starter"]
    coupon = await client.post(
        "/billing/coupons", json={"name": "Launch", "percent_off": 50, "duration": "once"}, headers=admin
    )
    assert coupon.status_code == 201, coupon.text
    code = f"LAUNCH{uuid.uuid4().hex[:6].upper()}"
    promo = await client.post(
        f"/billing/coupons/{coupon.json()['id']}/promotion-codes", json={"code": code}, headers=admin
    )
    assert promo.status_code == 201, promo.text

    # Subscribe with the code: Checkout charges half the first month.
    email, auth = await verified_user(system, client)
    checkout = await client.post(
        "/billing/subscriptions/subscribe",
        json={"plan_code": pro["code"], "promotion_code": code.lower()},
        headers=auth,
    )
    assert checkout.status_code == 201, checkout.text
    await at_stripe.pay(checkout.json()["session_id"])

    async def mine(status: str) -> dict[str, Any] | None:
        body = (await client.get("/billing/subscriptions/me", headers=auth)).json()
        return body if body.get("status") == status else None

    subscription = await eventually(lambda: mine("active"), "the discounted subscription", within=30)
    assert subscription["discount"]["promotion_code"] == code

    async def first_payment() -> dict[str, Any] | None:
        items = (await client.get("/billing/payments/me", headers=auth)).json()["items"]
        return items[0] if items else None

    first = await eventually(first_payment, "the first payment", within=30)
    assert (first["amount_paid"], first["amount_discount"]) == (pro["amount"] // 2, pro["amount"] // 2)

    # The renewal fails: past due, an email pointing to where the card is updated.
    customer = sdk.v1.customers.list(params={"email": email}).data[0].id
    await at_stripe.card_of(customer, "declined")
    await at_stripe.advance(31 * DAY)
    failed = await system.wait_for_mail(email, "failed")
    assert f"{system.urls['gateway']}/billing" in text_of(failed)
    past_due = await eventually(lambda: mine("past_due"), "past due", within=30)
    assert past_due["next_payment_attempt"] and past_due["grace_until"]

    # The person opens the portal and gives a new card on its page.
    portal = await client.post("/billing/portal", json={}, headers=auth)
    assert portal.status_code == 200, portal.text
    page_path = portal.json()["url"].removeprefix(system.urls["stripe"])
    page = await at_stripe.http.get(page_path)
    assert page.status_code == 200 and "Update payment method" in page.text
    updated = await at_stripe.http.post(
        page_path,
        data={"action": "card", "card_number": "5555 5555 5555 4444", "exp_month": "12", "exp_year": "2099"},
    )
    assert updated.status_code in (200, 303), updated.text

    async def new_card() -> bool:
        card = (await client.get("/billing/payment-method/me", headers=auth)).json()
        return (card.get("brand"), card.get("last4")) == ("mastercard", "4444")

    await eventually(new_card, "the new card on file", within=30)

    # Stripe's next retry pays with it: recovered.
    await at_stripe.advance(3 * DAY + 3600)
    await system.wait_for_mail(email, "payment recovered")
    recovered = await eventually(lambda: mine("active"), "active again", within=30)
    assert recovered["grace_until"] is None

    async def renewal_paid() -> dict[str, Any] | None:
        items = (await client.get("/billing/payments/me", headers=auth)).json()["items"]
        paid = [p for p in items if p["status"] == "paid" and p["id"] != first["id"]]
        return paid[0] if paid else None

    renewal = await eventually(renewal_paid, "the renewal paid", within=30)
    assert renewal["amount_paid"] == pro["amount"]  # the coupon was for once

    # An admin refunds half of the renewal; the person is told.
    refund = await client.post(
        f"/billing/admin/payments/{renewal['id']}/refund",
        json={"amount": pro["amount"] // 2, "reason": "requested_by_customer"},
        headers={**admin, "Idempotency-Key": f"e2e-{uuid.uuid4().hex}"},
    )
    assert refund.status_code == 200, refund.text
    assert refund.json()["payment"]["status"] == "partially_refunded"
    await system.wait_for_mail(email, "refund")

    # A downgrade waits for the period end; then the cheaper plan is the one billed.
    downgrade = await client.post(
        "/billing/subscriptions/upgrade", json={"plan_code": starter["code"]}, headers=auth
    )
    assert downgrade.status_code == 200, downgrade.text
    scheduled = downgrade.json()["scheduled_change"]
    assert scheduled["plan_code"] == starter["code"] and downgrade.json()["plan"]["code"] == pro["code"]
    period_end = datetime.fromisoformat(scheduled["effective_at"])
    now = datetime.fromtimestamp(float((await at_stripe.http.get("/_emulator/clock")).json()["now"]), UTC)
    await at_stripe.advance(int((period_end - now).total_seconds()) + 3600)

    async def downgraded() -> dict[str, Any] | None:
        body = (await client.get("/billing/subscriptions/me", headers=auth)).json()
        on_starter = body["plan"]["code"] == starter["code"] and body["scheduled_change"] is None
        return body if on_starter and body["status"] == "active" else None

    await eventually(downgraded, "the cheaper plan active", within=30)
    await system.wait_for_mail(email, f"you are now on {starter['name']}")
    entitlements = (await client.get("/billing/entitlements/me", headers=auth)).json()
    assert entitlements["features"] == ["projects:3"]

    async def billed_cheaper() -> bool:
        items = (await client.get("/billing/payments/me", headers=auth)).json()["items"]
        return any(p["status"] == "paid" and p["amount_paid"] == starter["amount"] for p in items)

    await eventually(billed_cheaper, "the cheaper plan's invoice paid", within=30)


async def test_deactivation_cancels_the_subscription_at_stripe(
    system: System,
    client: httpx.AsyncClient,
    at_stripe: Stripe,
    plans: dict[str, dict[str, Any]],
    sdk: stripe.StripeClient,
) -> None:
    email, auth, _ = await subscribed(system, client, at_stripe, plans["starter"])
    deactivated = await client.post("/auth/deactivate", json={"password": PASSWORD}, headers=auth)
    assert deactivated.status_code == 200, deactivated.text
    customer = sdk.v1.customers.list(params={"email": email}).data[0].id

    async def cancelled_at_stripe() -> bool:
        subscriptions = sdk.v1.subscriptions.list(params={"customer": customer, "status": "all"}).data
        return bool(subscriptions) and all(s.status == "canceled" for s in subscriptions)

    await eventually(cancelled_at_stripe, "billing to cancel the subscription at Stripe", within=30)


async def test_webhooks_are_verified_and_applied_once_however_often_they_come(
    system: System, client: httpx.AsyncClient, at_stripe: Stripe, plans: dict[str, dict[str, Any]]
) -> None:
    async with httpx.AsyncClient(base_url=system.urls["billing"]) as billing:
        forged = await billing.post(
            "/billing/stripe/webhook",
            content=b'{"id": "evt_forged"}',
            headers={"Stripe-Signature": "t=1,v1=00"},
        )
        assert forged.status_code == 400
        assert forged.headers["content-type"].startswith("application/problem+json")
    assert (
        await client.post("/billing/stripe/webhook", content=b"{}")
    ).status_code == 404  # not via the gateway

    await at_stripe.chaos(duplicates=3, shuffle=True)
    try:
        _, auth, _ = await subscribed(system, client, at_stripe, plans["pro"])
        await at_stripe.flush()
        await asyncio.sleep(1.0)
        payments = (await client.get("/billing/payments/me", headers=auth)).json()["items"]
        assert len(payments) == 1  # three deliveries of each event, one payment
    finally:
        await at_stripe.chaos(duplicates=1, shuffle=False)


async def test_billing_stopped_and_restarted_mid_journey(
    system: System, client: httpx.AsyncClient, at_stripe: Stripe, plans: dict[str, dict[str, Any]]
) -> None:
    """billing-service goes down between Checkout's start and the payment: the gateway answers 503
    meanwhile, Stripe's deliveries fail and are retried, and once billing is back the journey
    completes with every email sent once."""
    email, auth = await verified_user(system, client)
    checkout = await client.post(
        "/billing/subscriptions/subscribe", json={"plan_code": plans["starter"]["code"]}, headers=auth
    )
    assert checkout.status_code == 201, checkout.text
    billing = system.processes["billing"]
    # uvicorn drains, then re-raises the SIGTERM it caught: uv reports that as 128 + 15
    assert billing.stop() in (0, 128 + signal.SIGTERM), "billing-service exits cleanly on SIGTERM"

    for _ in range(3):  # connect refused, then the open circuit: 503 problem+json every time
        down = await client.get("/billing/subscriptions/me", headers=auth)
        assert down.status_code == 503, down.text
        assert down.headers["content-type"].startswith("application/problem+json")
        assert int(down.headers["retry-after"]) >= 1
    assert (await client.get("/auth/me", headers=auth)).status_code == 200  # the rest stays up

    await at_stripe.pay(checkout.json()["session_id"])  # Stripe's webhooks fail while billing is down
    billing.start()

    async def active() -> dict[str, Any] | None:
        response = await client.get("/billing/subscriptions/me", headers=auth)
        body = response.json() if response.status_code == 200 else None
        return body if body and body["status"] == "active" else None

    subscription = await eventually(active, "the subscription to become active after the restart", within=60)
    assert subscription["plan"]["code"] == plans["starter"]["code"]
    await system.wait_for_mail(email, "subscription is active")
    await system.wait_for_mail(email, "receipt")
    await at_stripe.flush()
    await asyncio.sleep(1.0)  # anything late or duplicated would land now
    subjects = [str(message["Subject"]) for message in system.mail_to(email)]
    assert len(subjects) == len(set(subjects)) == 3, subjects  # confirm email, active, receipt: once each
    payments = (await client.get("/billing/payments/me", headers=auth)).json()["items"]
    assert [(p["status"], p["amount_paid"]) for p in payments] == [("paid", 900)]


async def test_a_deleted_account_is_erased_from_every_service(
    system: System,
    client: httpx.AsyncClient,
    at_stripe: Stripe,
    plans: dict[str, dict[str, Any]],
    sdk: stripe.StripeClient,
) -> None:
    """Sign up, subscribe, delete the account: the subscription ends at Stripe at once and the
    goodbye email comes; after the erasure (forced here: the beat's job as of the scheduled time) no
    table of any service's database holds the address, the username or the name."""
    email, auth, _ = await subscribed(system, client, at_stripe, plans["starter"])
    name = f"Erasable {uuid.uuid4().hex[:8]}"
    me = await client.patch("/auth/me", json={"display_name": name}, headers=auth)
    assert me.status_code == 200, me.text
    username = me.json()["username"]
    customer = sdk.v1.customers.list(params={"email": email}).data[0].id

    deleted = await client.delete("/auth/me", headers=auth)
    assert deleted.status_code == 202, deleted.text
    erase_at = datetime.fromisoformat(deleted.json()["erase_at"])

    async def token_refused() -> bool:  # the revocation reaches the edge's denylist by an event
        return (await client.get("/billing/subscriptions/me", headers=auth)).status_code == 401

    await eventually(token_refused, "the deleted account's token refused", within=10)
    await system.wait_for_mail(email, "will be deleted")

    async def cancelled_at_stripe() -> bool:
        subscriptions = sdk.v1.subscriptions.list(params={"customer": customer, "status": "all"}).data
        return bool(subscriptions) and all(s.status == "canceled" for s in subscriptions)

    await eventually(cancelled_at_stripe, "billing to cancel the subscription at Stripe", within=30)
    await system.wait_for_mail(email, "has ended")
    await asyncio.sleep(2.0)  # the last events of the deletion reach every service

    as_of = (erase_at.astimezone(UTC) + timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%S")
    erase = subprocess.run(
        [
            sys.executable,
            "-m",
            "auth_service.cli",
            "erase-deleted",
            "--as-of",
            as_of,
        ],
        env={**os.environ, **system.env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert erase.returncode == 0, erase.stderr
    assert "erased" in erase.stdout

    databases = {s: system.env[f"{s.upper()}_DATABASE_URL"] for s in ("auth", "billing", "notification")}

    async def personal_rows() -> dict[str, dict[str, int]]:
        found = {s: await rows_mentioning(url, email, username, name) for s, url in databases.items()}
        return {s: tables for s, tables in found.items() if tables}

    async def nothing_left() -> bool:
        return not await personal_rows()

    with contextlib.suppress(AssertionError):
        await eventually(nothing_left, "every service to erase the person", within=60)
    assert await personal_rows() == {}
    assert sdk.v1.customers.retrieve(customer).to_dict().get("deleted") is True
    login = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 401
