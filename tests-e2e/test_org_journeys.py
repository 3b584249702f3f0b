"""An organization billed per seat, through the gateway (issue 17's journey): its owner creates it
and subscribes it to a per-seat plan, invites two people by email, they accept, and Stripe bills 3
seats; one is removed, Stripe bills 2 with a proration credit, and the removed member's token acting
in the org is refused at once; an API key of the org reads its subscription.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import stripe

from conftest import ADMIN_EMAIL, ADMIN_PASSWORD, System, bearer, link_in, verified_user
from gatehouse_platform.testing import eventually


@pytest.fixture(scope="module")
def sdk(system: System) -> stripe.StripeClient:
    """Stripe's own SDK, to look at what billing-service did at 'Stripe'."""
    return stripe.StripeClient(
        "sk_test_e2e_observer", base_addresses={"api": system.urls["stripe"]}, max_network_retries=0
    )


@pytest.fixture(scope="module")
async def per_seat_plan(client: httpx.AsyncClient) -> dict[str, Any]:
    login = await client.post("/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert login.status_code == 200, login.text
    body = {
        "code": f"team-{uuid.uuid4().hex[:6]}",
        "name": "Team",
        "tier": "business",
        "amount": 1200,
        "per_seat": True,
        "max_seats": 10,
        "features": ["projects:unlimited"],
    }
    created = await client.post("/billing/plans", json=body, headers=bearer(login.json()))
    assert created.status_code == 201, created.text
    return dict(created.json())


async def acting_in(client: httpx.AsyncClient, auth: dict[str, str], org_id: str) -> dict[str, str]:
    """The person's session switched to act in the org: its access token carries org_id."""
    switched = await client.post(f"/auth/orgs/{org_id}/switch", headers=auth)
    assert switched.status_code == 200, switched.text
    return bearer(switched.json())


async def invite_and_accept(
    system: System, client: httpx.AsyncClient, owner: dict[str, str], org_id: str
) -> tuple[str, dict[str, str]]:
    """A new person, invited by email, who accepts from the emailed link: (email, their token)."""
    email, auth = await verified_user(system, client)
    sent = await client.post(
        f"/auth/orgs/{org_id}/invitations", json={"email": email, "role": "member"}, headers=owner
    )
    assert sent.status_code == 201, sent.text
    link = link_in(await system.wait_for_mail(email, "invited you to join"), r"https?://\S+token=\S+")
    token = parse_qs(urlsplit(link).query)["token"][0]
    accepted = await client.post("/auth/invitations/accept", json={"token": token}, headers=auth)
    assert accepted.status_code == 200, accepted.text
    return email, auth


async def stripe_quantity(sdk: stripe.StripeClient, subscription_id: str, quantity: int) -> None:
    async def billed() -> bool:
        return bool(sdk.v1.subscriptions.retrieve(subscription_id)["items"].data[0].quantity == quantity)

    await eventually(billed, f"Stripe to bill {quantity} seats", within=30)


async def test_an_org_subscribes_per_seat_and_stripe_follows_its_members(
    system: System, client: httpx.AsyncClient, sdk: stripe.StripeClient, per_seat_plan: dict[str, Any]
) -> None:
    _owner_email, owner = await verified_user(system, client)
    slug = f"acme-{uuid.uuid4().hex[:6]}"
    created = await client.post("/auth/orgs", json={"name": "Acme", "slug": slug}, headers=owner)
    assert created.status_code == 201, created.text
    org_id = created.json()["id"]
    owner_in_org = await acting_in(client, owner, org_id)  # the personal session is exchanged for it

    checkout = await client.post(
        "/billing/subscriptions/subscribe",
        json={"plan_code": per_seat_plan["code"], "org_id": org_id},
        headers=owner_in_org,
    )
    assert checkout.status_code == 201, checkout.text
    paid = await httpx.AsyncClient(base_url=system.urls["stripe"], timeout=30).post(
        f"/_emulator/checkout/sessions/{checkout.json()['session_id']}/complete", json={"outcome": "paid"}
    )
    assert paid.status_code == 200, paid.text

    async def active() -> dict[str, Any] | None:
        answer = await client.get(f"/billing/orgs/{org_id}/subscription", headers=owner_in_org)
        body = answer.json() if answer.status_code == 200 else None
        return body if body and body["status"] == "active" else None

    subscription = await eventually(active, "the org's subscription to become active", within=30)
    assert subscription["org_id"] == org_id and subscription["quantity"] == 1
    stripe_subscription = sdk.v1.checkout.sessions.retrieve(checkout.json()["session_id"]).subscription
    assert isinstance(stripe_subscription, str)
    await stripe_quantity(sdk, stripe_subscription, 1)

    _first_email, _first = await invite_and_accept(system, client, owner_in_org, org_id)
    second_email, second = await invite_and_accept(system, client, owner_in_org, org_id)
    await stripe_quantity(sdk, stripe_subscription, 3)

    # the second member acts in the org and reads its subscription, as every member may
    second_in_org = await acting_in(client, second, org_id)
    seen = await client.get(f"/billing/orgs/{org_id}/subscription", headers=second_in_org)
    assert seen.status_code == 200 and seen.json()["id"] == subscription["id"]

    members = (await client.get(f"/auth/orgs/{org_id}/members", headers=owner_in_org)).json()["items"]
    [removed] = [m for m in members if m["email"] == second_email]
    gone = await client.delete(f"/auth/orgs/{org_id}/members/{removed['user_id']}", headers=owner_in_org)
    assert gone.status_code == 204, gone.text
    await stripe_quantity(sdk, stripe_subscription, 2)

    customer = sdk.v1.subscriptions.retrieve(stripe_subscription).customer
    items = sdk.v1.invoice_items.list({"customer": str(customer)}).data
    prorations = [item.amount for item in items if item.proration]
    assert any(amount < 0 for amount in prorations), "the seat removed is credited for the rest of the period"

    async def refused() -> bool:  # the removal reaches the gateway's denylist by an event
        answer = await client.get(f"/billing/orgs/{org_id}/subscription", headers=second_in_org)
        return answer.status_code == 401

    await eventually(refused, "the removed member's org token to be refused", within=10)
    await system.wait_for_mail(second_email, "removed from Acme")

    # a machine client of the org: an org API key, exchanged at the gateway for a scoped token
    made = await client.post(
        "/auth/api-keys",
        json={"name": "reporting", "scopes": ["billing:read"], "org_id": org_id},
        headers=owner_in_org,
    )
    assert made.status_code == 201, made.text
    key = {"Authorization": f"Bearer {made.json()['key']}"}
    read = await client.get(f"/billing/orgs/{org_id}/subscription", headers=key)
    assert read.status_code == 200, read.text
    assert read.json()["id"] == subscription["id"] and read.json()["quantity"] == 2
    refused_write = await client.post(
        "/billing/subscriptions/subscribe",
        json={"plan_code": per_seat_plan["code"], "org_id": org_id},
        headers=key,
    )
    assert refused_write.status_code == 403, refused_write.text  # billing:read only
