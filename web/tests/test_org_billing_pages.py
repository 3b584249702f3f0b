"""The organization billing page (/orgs/{org_id}/billing) over plain HTTP in this process,
billing-service's org endpoints stood in for by a small fake: the plan and seats, subscribing the org
through Checkout, its portal, and billing's refusals (a member who is not admin, a token not acting
in the org, more members than the plan allows) as messages on the page, in English and French."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from conftest import SIGNED_IN, USER, csrf_of, problem

ORG = "7a0c1e2b-0000-4000-8000-0000000000aa"
PAGE = f"/orgs/{ORG}/billing"
CHECKOUT = "https://checkout.stripe.com/c/pay/cs_test_org"
PORTAL = "https://checkout.stripe.com/p/session/test_org"

TEAM = {
    "id": "plan-team",
    "code": "team",
    "name": "Team",
    "description": "For teams.",
    "tier": "business",
    "amount": 1000,
    "currency": "usd",
    "interval": "month",
    "interval_count": 1,
    "features": ["sso"],
    "trial_days": 0,
    "per_seat": True,
    "min_seats": None,
    "max_seats": 25,
    "active": True,
}


class FakeOrgBilling:
    def __init__(self, status: str | None = None, *, outsider: bool = False) -> None:
        self.status, self.outsider = status, outsider
        self.refuse: dict[str, httpx.Response] = {}
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def subscription(self) -> dict[str, Any]:
        return {
            "id": "5d1c3e2a-0000-4000-8000-0000000000bb",
            "user_id": USER["id"],
            "org_id": ORG,
            "quantity": 7,
            "status": self.status,
            "plan": {
                "id": "plan-team",
                "code": "team",
                "name": "Team",
                "tier": "business",
                "per_seat": True,
                "max_seats": 25,
            },
            "amount": 1000,
            "currency": "usd",
            "interval": "month",
            "current_period_start": "2026-03-01T10:00:00+00:00",
            "current_period_end": "2026-04-01T10:00:00+00:00",
            "cancel_at_period_end": False,
            "checkout_url": CHECKOUT if self.status == "checkout_pending" else None,
            "created_at": "2026-03-01T09:59:00+00:00",
        }

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else {}
        path = request.url.path
        self.calls.append((request.method, path, body))
        if path in self.refuse:
            return self.refuse[path]
        if path == "/auth/login":
            return httpx.Response(200, json=SIGNED_IN)
        if path == "/auth/me":
            return httpx.Response(200, json=USER)
        if path.startswith(f"/billing/orgs/{ORG}/") and self.outsider:
            return problem(404, "org-not-found")
        if path == "/billing/plans":
            return httpx.Response(200, json={"items": [TEAM], "next_cursor": None})
        if path == f"/billing/orgs/{ORG}/subscription":
            if self.status is None:
                return problem(404, "subscription-not-found")
            return httpx.Response(200, json=self.subscription())
        if path == f"/billing/orgs/{ORG}/payments":
            return httpx.Response(200, json={"items": [], "next_cursor": None})
        if path == "/billing/subscriptions/subscribe":
            self.status = "checkout_pending"
            return httpx.Response(
                201, json={"checkout_url": CHECKOUT, "session_id": "cs_test_org", "subscription_id": "x"}
            )
        if path == f"/billing/orgs/{ORG}/portal":
            return httpx.Response(200, json={"url": PORTAL})
        return httpx.Response(404, json={"title": "Not found", "status": 404})


async def signed_in(
    make_web: Callable[..., object], billing: FakeOrgBilling, **settings: object
) -> httpx.AsyncClient:
    web = await make_web(
        api=httpx.MockTransport(billing), checkout_origins=["https://checkout.stripe.com"], **settings
    )  # type: ignore[misc]
    assert isinstance(web, httpx.AsyncClient)
    page = await web.get("/login")
    answer = await web.post(
        "/login", data={"csrf_token": csrf_of(page.text), "login": "ada", "password": "pw"}
    )
    assert answer.status_code == 303
    return web


async def test_an_admin_subscribes_the_org_per_seat_through_checkout(make_web: Callable[..., object]) -> None:
    billing = FakeOrgBilling()
    web = await signed_in(make_web, billing)
    page = await web.get(PAGE)
    assert page.status_code == 200, page.text
    assert "The organization has no subscription yet." in page.text
    assert "$10.00 per month, per seat" in page.text
    assert 'aria-label="Subscribe the organization to Team"' in page.text

    answer = await web.post(f"{PAGE}/subscribe", data={"csrf_token": csrf_of(page.text), "plan_code": "team"})
    assert answer.status_code == 303 and answer.headers["location"] == CHECKOUT
    assert ("POST", "/billing/subscriptions/subscribe", {"plan_code": "team", "org_id": ORG}) in billing.calls


async def test_the_orgs_plan_shows_its_seats_and_manage_opens_its_portal(
    make_web: Callable[..., object],
) -> None:
    billing = FakeOrgBilling("active")
    web = await signed_in(make_web, billing)
    page = await web.get(PAGE)
    assert "The organization&#39;s plan" in page.text or "The organization's plan" in page.text
    seats = page.text.split('class="seats">', 1)[1].split("</dd>", 1)[0]
    assert "7" in seats and "(at most 25 members)" in seats
    assert "Subscribe the organization" not in page.text  # one live subscription per org
    answer = await web.post(f"{PAGE}/manage", data={"csrf_token": csrf_of(page.text)})
    assert answer.status_code == 303 and answer.headers["location"] == PORTAL
    assert any(call[1] == f"/billing/orgs/{ORG}/portal" for call in billing.calls)

    french = await web.get(PAGE, headers={"Accept-Language": "fr"})
    assert "Facturation de l’organisation" in french.text and "Sièges facturés" in french.text


async def test_billings_refusals_read_as_messages(make_web: Callable[..., object]) -> None:
    billing = FakeOrgBilling()
    billing.refuse["/billing/subscriptions/subscribe"] = problem(403, "org-billing-forbidden")
    web = await signed_in(make_web, billing)
    page = await web.get(PAGE)
    refused = await web.post(
        f"{PAGE}/subscribe", data={"csrf_token": csrf_of(page.text), "plan_code": "team"}
    )
    assert refused.status_code == 403
    assert (
        "Only the organization&#39;s owners and admins" in refused.text
        or "Only the organization's owners and admins" in refused.text
    )

    billing.refuse["/billing/subscriptions/subscribe"] = problem(409, "seat-limit-exceeded")
    too_many = await web.post(
        f"{PAGE}/subscribe", data={"csrf_token": csrf_of(page.text), "plan_code": "team"}
    )
    assert too_many.status_code == 409 and "more members than this plan allows" in too_many.text

    bad = await web.post(f"{PAGE}/subscribe", data={"csrf_token": csrf_of(page.text), "plan_code": "No Such"})
    assert bad.status_code == 400 and "Choose one of the plans below." in bad.text


async def test_someone_not_acting_in_the_org_is_told_to_switch_to_it(make_web: Callable[..., object]) -> None:
    web = await signed_in(make_web, FakeOrgBilling("active", outsider=True))
    page = await web.get(PAGE)
    assert page.status_code == 404
    assert "Act in this organization to see its billing" in page.text and "Seats billed" not in page.text
