"""The console's billing pages over plain HTTP in this process: billing-service's admin API stood
in for by a fake keeping plans, coupons, a user's payments and the Stripe event log, answering as
billing does (404, 409 plan-code-taken, 422 refund-exceeds-payment, 409 stripe-event-not-failed,
503 payment-provider-unavailable); auth's by test_admin_pages' fake. Every change is asked first
and sent only once confirmed; bad input is a message on the page, never a 500; refunds carry one
Idempotency-Key per confirmation; who may open the pages; French. The refund and the plan's
creation also run in Chromium against the real system in test_browser_admin_billing.py."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from test_admin_pages import TARGET_ID, FakeAuth, signed_in

from conftest import csrf_of, problem

PLAN_ID = "2c1d0e0f-0000-4000-8000-000000000001"
COUPON_ID = "3c1d0e0f-0000-4000-8000-000000000001"
CODE_ID = "4c1d0e0f-0000-4000-8000-000000000001"
PAYMENT_ID = "5c1d0e0f-0000-4000-8000-000000000001"
FAILED_EVENT = "evt_1Failed"
APPLIED_EVENT = "evt_2Applied"
WHEN = "2026-02-03T04:05:06+00:00"


def plan(**extra: Any) -> dict[str, Any]:
    return {
        "id": PLAN_ID,
        "code": "pro",
        "name": "Pro",
        "description": "",
        "tier": "pro",
        "amount": 1900,
        "currency": "usd",
        "interval": "month",
        "interval_count": 1,
        "features": ["reports"],
        "trial_days": 0,
        "active": True,
        "stripe_product_id": "prod_1",
        "stripe_price_id": "price_1",
        "created_at": WHEN,
        "updated_at": WHEN,
        **extra,
    }


def stripe_event(event_id: str, status: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "invoice.paid",
        "object_id": "in_1",
        "source": "webhook",
        "status": status,
        "attempts": 3 if status == "failed" else 1,
        "last_error": "KeyError: 'subscription'" if status == "failed" else None,
        "received_at": WHEN,
        "stripe_created_at": WHEN,
        "processed_at": None if status == "failed" else WHEN,
        "next_attempt_at": WHEN,
        "payload": {"id": event_id, "type": "invoice.paid", "data": {"object": {"id": "in_1"}}},
        **extra,
    }


class FakeBilling(FakeAuth):
    """auth-service (the admin and the user) and billing-service's admin endpoints."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plans = {PLAN_ID: plan()}
        self.coupons = {
            COUPON_ID: {
                "id": COUPON_ID,
                "name": "Spring",
                "percent_off": 20.0,
                "amount_off": None,
                "currency": None,
                "duration": "repeating",
                "duration_in_months": 3,
                "max_redemptions": None,
                "redeem_by": None,
                "applies_to": [],
                "stripe_coupon_id": "co_1",
                "deleted_at": None,
                "created_at": WHEN,
            }
        }
        self.codes = {
            CODE_ID: {
                "id": CODE_ID,
                "coupon_id": COUPON_ID,
                "code": "SPRING20",
                "max_redemptions": None,
                "expires_at": None,
                "first_time_only": False,
                "active": True,
                "stripe_promotion_code_id": "promo_1",
                "created_at": WHEN,
            }
        }
        self.payment = {
            "id": PAYMENT_ID,
            "subscription_id": None,
            "invoice_id": "in_1",
            "status": "paid",
            "amount_due": 1900,
            "amount_paid": 1900,
            "amount_discount": 0,
            "currency": "usd",
            "billing_reason": "subscription_create",
            "attempt_count": 1,
            "failure_reason": None,
            "next_payment_attempt": None,
            "period_start": WHEN,
            "period_end": WHEN,
            "hosted_invoice_url": "https://invoice.stripe.test/in_1",
            "paid_at": WHEN,
            "amount_refunded": 0,
            "dispute_status": None,
            "created_at": WHEN,
        }
        self.refund_keys: dict[str, int] = {}
        self.events = {
            FAILED_EVENT: stripe_event(FAILED_EVENT, "failed"),
            APPLIED_EVENT: stripe_event(APPLIED_EVENT, "processed"),
        }
        self.stripe_down = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if not path.startswith("/billing"):
            return super().__call__(request)
        body = json.loads(request.content) if request.content else {}
        method, params = request.method, request.url.params
        self.calls.append((method, path, body, dict(params)))
        if self.refuse_with:
            return problem(403, "forbidden")
        if self.stripe_down and method != "GET":
            return problem(503, "payment-provider-unavailable")
        if path == "/billing/admin/plans":
            return httpx.Response(200, json={"items": list(self.plans.values()), "next_cursor": None})
        if path == "/billing/plans" and method == "POST":
            if any(p["code"] == body["code"] for p in self.plans.values()):
                return problem(409, "plan-code-taken")
            new = plan(id=str(uuid.uuid4()), **body)
            self.plans[new["id"]] = new
            return httpx.Response(201, json=new)
        if path.startswith("/billing/plans/"):
            plan_id = path.split("/")[3]
            if plan_id not in self.plans:
                return problem(404, "plan-not-found")
            if method == "PATCH":
                self.plans[plan_id].update(body)
            elif method == "DELETE":
                self.plans[plan_id]["active"] = False
                return httpx.Response(204)
            return httpx.Response(200, json=self.plans[plan_id])
        if path == "/billing/coupons":
            if method == "POST":
                new_id = str(uuid.uuid4())
                self.coupons[new_id] = {**self.coupons[COUPON_ID], "id": new_id, **body}
                return httpx.Response(201, json=self.coupons[new_id])
            if params.get("cursor") == "stale":
                return problem(400, "invalid-cursor")
            return httpx.Response(200, json={"items": list(self.coupons.values()), "next_cursor": None})
        if path.startswith("/billing/coupons/"):
            parts = path.split("/")
            if parts[3] not in self.coupons:
                return problem(404, "coupon-not-found")
            if method == "DELETE":
                self.coupons[parts[3]]["deleted_at"] = WHEN
                return httpx.Response(204)
            if path.endswith("/deactivate"):
                self.codes[parts[5]]["active"] = False
                return httpx.Response(200, json=self.codes[parts[5]])
            if method == "POST":
                if any(
                    c["code"].lower() == body["code"].lower() and c["active"] for c in self.codes.values()
                ):
                    return problem(409, "promotion-code-taken")
                new_id = str(uuid.uuid4())
                self.codes[new_id] = {**self.codes[CODE_ID], "id": new_id, **body, "active": True}
                return httpx.Response(201, json=self.codes[new_id])
            found = [c for c in self.codes.values() if c["coupon_id"] == parts[3]]
            return httpx.Response(200, json={"items": found, "next_cursor": None})
        if path == f"/billing/admin/users/{TARGET_ID}/subscriptions":
            return httpx.Response(200, json={"items": [], "next_cursor": None})
        if path == f"/billing/admin/users/{TARGET_ID}/payments":
            return httpx.Response(200, json={"items": [self.payment], "next_cursor": None})
        if path == f"/billing/admin/payments/{PAYMENT_ID}/refund":
            key = request.headers["Idempotency-Key"]
            if key in self.refund_keys:  # the same refund again, as billing answers a repeated key
                return httpx.Response(200, json={"payment": self.payment})
            left = self.payment["amount_paid"] - self.payment["amount_refunded"]
            if body["amount"] > left:
                return problem(422, "refund-exceeds-payment")
            self.refund_keys[key] = body["amount"]
            self.payment["amount_refunded"] += body["amount"]
            self.payment["status"] = "refunded" if body["amount"] == left else "partially_refunded"
            return httpx.Response(200, json={"payment": self.payment})
        if path == "/billing/admin/stripe-events":
            if params.get("cursor") == "stale":
                return problem(400, "invalid-cursor")
            found = [
                e
                for e in self.events.values()
                if params.get("status") in (None, e["status"]) and params.get("type") in (None, e["type"])
            ]
            return httpx.Response(200, json={"items": found, "next_cursor": None})
        if path.startswith("/billing/admin/stripe-events/"):
            event_id = path.split("/")[4]
            if event_id not in self.events:
                return problem(404, "stripe-event-not-found")
            if path.endswith("/retry"):
                if self.events[event_id]["status"] != "failed":
                    return problem(409, "stripe-event-not-failed")
                self.events[event_id]["status"] = "pending"
            return httpx.Response(200, json=self.events[event_id])
        return problem(404, "not-found")

    def changes(self) -> list[tuple[str, str, dict[str, Any]]]:
        return [
            (m, path, body) for m, path, body, _ in self.calls if m != "GET" and path.startswith("/billing")
        ]


async def asked_then_confirmed(
    web: httpx.AsyncClient, page_url: str, action: str, data: dict[str, str]
) -> tuple[httpx.Response, httpx.Response]:
    """Send the form from `page_url`, check the confirmation, then send the confirmation."""
    page = await web.get(page_url)
    asked = await web.post(action, data={"csrf_token": csrf_of(page.text), **data})
    assert asked.status_code == 200, asked.text
    assert "Please confirm" in asked.text and 'name="confirmed" value="yes"' in asked.text
    hidden = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', asked.text))
    done = await web.post(action, data={**hidden, "csrf_token": csrf_of(asked.text)})
    return asked, done


async def test_only_admins_with_a_proven_second_factor_open_the_billing_pages(
    make_web: Callable[..., object],
) -> None:
    for fake, heading in (
        (FakeBilling(roles=()), "Administrators only"),
        (FakeBilling(factor=False), "Set up a second factor first"),
        (FakeBilling(amr=("pwd",)), "Sign in again with your second factor"),
    ):
        web = await signed_in(make_web, fake)
        for url in (
            "/admin/billing/plans",
            "/admin/billing/coupons",
            "/admin/billing/stripe-events",
            f"/admin/users/{TARGET_ID}/billing",
        ):
            page = await web.get(url)
            assert page.status_code == 403 and heading in page.text, url
        assert not [c for c in fake.calls if c[1].startswith("/billing")]


async def test_plans_are_listed_with_their_stripe_state(make_web: Callable[..., object]) -> None:
    api = FakeBilling()
    api.plans["x"] = plan(
        id="6c1d0e0f-0000-4000-8000-000000000009", code="old", name="Old", active=False, stripe_price_id=None
    )
    web = await signed_in(make_web, api)
    page = await web.get("/admin/billing/plans")
    assert page.status_code == 200
    assert "$19.00 per month" in page.text and "price_1" in page.text
    assert (
        page.text.count("in Stripe</span>") == 2 and "not in Stripe" in page.text and "retired" in page.text
    )


async def test_a_plan_is_created_after_its_confirmation(make_web: Callable[..., object]) -> None:
    api = FakeBilling()
    web = await signed_in(make_web, api)
    form = {
        "code": "team",
        "name": "Team",
        "description": "For teams",
        "tier": "business",
        "amount": "49.50",
        "currency": "EUR",
        "interval": "year",
        "interval_count": "1",
        "trial_days": "14",
        "features": "reports, api",
    }
    asked, done = await asked_then_confirmed(web, "/admin/billing/plans/new", "/admin/billing/plans", form)
    assert "Create the plan Team (team) at €49.50 per year?" in asked.text
    assert done.status_code == 303 and done.headers["location"] == "/admin/billing/plans?done=created"
    [(method, path, body)] = api.changes()
    assert (method, path) == ("POST", "/billing/plans")
    assert body == {
        "code": "team",
        "name": "Team",
        "description": "For teams",
        "tier": "business",
        "amount": 4950,
        "currency": "eur",
        "interval": "year",
        "interval_count": 1,
        "features": ["reports", "api"],
        "trial_days": 14,
    }
    listed = await web.get(done.headers["location"])
    assert "The plan is created" in listed.text and "Team" in listed.text


@pytest.mark.parametrize(
    ("changed", "message"),
    [
        ({"code": "Bad Code"}, "Use lower-case letters"),
        ({"amount": "12.345"}, "such as 12.50"),
        ({"amount": "ten"}, "such as 12.50"),
        ({"currency": "euro"}, "three-letter currency"),
        ({"interval_count": "13"}, "from 1 to 12"),
        ({"trial_days": "-1"}, "from 0 to 730"),
        ({"name": ""}, "Give the plan a name"),
    ],
)
async def test_a_plan_form_with_bad_input_says_what_to_fix(
    make_web: Callable[..., object], changed: dict[str, str], message: str
) -> None:
    api = FakeBilling()
    web = await signed_in(make_web, api)
    page = await web.get("/admin/billing/plans/new")
    form = {
        "code": "team",
        "name": "Team",
        "tier": "pro",
        "amount": "10",
        "currency": "usd",
        "interval": "month",
        "interval_count": "1",
    }
    answer = await web.post(
        "/admin/billing/plans", data={"csrf_token": csrf_of(page.text), **form, **changed}
    )
    assert answer.status_code == 422 and message in answer.text and 'aria-invalid="true"' in answer.text
    assert api.changes() == []


async def test_a_taken_code_and_stripe_away_are_messages(make_web: Callable[..., object]) -> None:
    api = FakeBilling()
    web = await signed_in(make_web, api)
    form = {
        "code": "pro",
        "name": "Pro 2",
        "tier": "pro",
        "amount": "10",
        "currency": "usd",
        "interval": "month",
        "interval_count": "1",
    }
    _, taken = await asked_then_confirmed(web, "/admin/billing/plans/new", "/admin/billing/plans", form)
    assert taken.status_code == 409 and "A plan already has this code." in taken.text
    api.stripe_down = True
    _, away = await asked_then_confirmed(
        web, "/admin/billing/plans/new", "/admin/billing/plans", {**form, "code": "new"}
    )
    assert away.status_code == 503 and "Stripe cannot be reached now" in away.text


async def test_a_plan_is_edited_with_only_what_changed_then_retired_and_offered_again(
    make_web: Callable[..., object],
) -> None:
    api = FakeBilling()
    web = await signed_in(make_web, api)
    edit = await web.get(f"/admin/billing/plans/{PLAN_ID}")
    assert 'value="19.00"' in edit.text and 'value="reports"' in edit.text
    form = {
        "name": "Pro",
        "tier": "pro",
        "amount": "25",
        "currency": "usd",
        "interval": "month",
        "interval_count": "1",
        "trial_days": "0",
        "features": "reports",
    }
    asked, done = await asked_then_confirmed(
        web, f"/admin/billing/plans/{PLAN_ID}", f"/admin/billing/plans/{PLAN_ID}", form
    )
    assert "Change the plan Pro to $25.00 per month?" in asked.text and "subscribers keep" in asked.text
    assert done.headers["location"] == "/admin/billing/plans?done=updated"
    assert api.changes() == [("PATCH", f"/billing/plans/{PLAN_ID}", {"amount": 2500})]
    _, retired = await asked_then_confirmed(
        web, f"/admin/billing/plans/{PLAN_ID}", f"/admin/billing/plans/{PLAN_ID}/retire", {}
    )
    assert (
        retired.headers["location"] == "/admin/billing/plans?done=retired"
        and not api.plans[PLAN_ID]["active"]
    )
    asked, offered = await asked_then_confirmed(
        web, f"/admin/billing/plans/{PLAN_ID}", f"/admin/billing/plans/{PLAN_ID}/retire", {}
    )
    assert "Offer the plan Pro (pro) again?" in asked.text and api.plans[PLAN_ID]["active"]
    assert offered.headers["location"] == "/admin/billing/plans?done=offered"
    assert api.changes()[-1] == ("PATCH", f"/billing/plans/{PLAN_ID}", {"active": True})
    missing = await web.get("/admin/billing/plans/7c1d0e0f-0000-4000-8000-000000000000")
    assert missing.status_code == 404


async def test_coupons_and_codes_are_created_and_stopped_after_confirming(
    make_web: Callable[..., object],
) -> None:
    api = FakeBilling()
    web = await signed_in(make_web, api)
    page = await web.get("/admin/billing/coupons")
    assert "20% off, for 3 months" in page.text and "SPRING20" in page.text
    form = {"name": "Welcome", "amount_off": "5", "currency": "usd", "duration": "once"}
    asked, done = await asked_then_confirmed(web, "/admin/billing/coupons", "/admin/billing/coupons", form)
    assert "Create the coupon Welcome: $5.00 off, once?" in asked.text
    assert done.headers["location"] == "/admin/billing/coupons?done=coupon-created"
    assert api.changes()[-1] == (
        "POST",
        "/billing/coupons",
        {"name": "Welcome", "duration": "once", "amount_off": 500, "currency": "usd", "applies_to": []},
    )
    _, added = await asked_then_confirmed(
        web,
        "/admin/billing/coupons",
        f"/admin/billing/coupons/{COUPON_ID}/promotion-codes",
        {"code": "SUMMER10", "max_redemptions": "5"},
    )
    assert added.headers["location"] == "/admin/billing/coupons?done=code-created"
    assert api.changes()[-1][2] == {"code": "SUMMER10", "first_time_only": False, "max_redemptions": 5}
    _, taken = await asked_then_confirmed(
        web,
        "/admin/billing/coupons",
        f"/admin/billing/coupons/{COUPON_ID}/promotion-codes",
        {"code": "spring20"},
    )
    assert (
        taken.status_code == 409 and "already SPRING20" not in taken.text and "already spring20" in taken.text
    )
    _, stopped = await asked_then_confirmed(
        web,
        "/admin/billing/coupons",
        f"/admin/billing/coupons/{COUPON_ID}/promotion-codes/{CODE_ID}/deactivate",
        {},
    )
    assert stopped.status_code == 303 and not api.codes[CODE_ID]["active"]
    _, deleted = await asked_then_confirmed(
        web, "/admin/billing/coupons", f"/admin/billing/coupons/{COUPON_ID}/delete", {}
    )
    assert deleted.status_code == 303 and api.coupons[COUPON_ID]["deleted_at"]
    page = await web.get("/admin/billing/coupons")
    for unknown in (
        f"/admin/billing/coupons/{CODE_ID}/delete",
        f"/admin/billing/coupons/{CODE_ID}/promotion-codes",
        f"/admin/billing/coupons/{CODE_ID}/promotion-codes/{CODE_ID}/deactivate",
        f"/admin/billing/coupons/{COUPON_ID}/promotion-codes/{COUPON_ID}/deactivate",
    ):
        missing = await web.post(unknown, data={"csrf_token": csrf_of(page.text), "code": "ABCD"})
        assert missing.status_code == 404, unknown


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"name": "X", "duration": "once"}, "either a percentage off or an amount off"),
        ({"name": "X", "percent_off": "20", "amount_off": "5", "duration": "once"}, "not both"),
        ({"name": "X", "percent_off": "120", "duration": "once"}, "up to 100"),
        ({"name": "X", "percent_off": "20", "duration": "repeating"}, "from 1 to 36"),
        ({"name": "X", "amount_off": "5", "currency": "dollars", "duration": "once"}, "three-letter"),
        (
            {"name": "X", "percent_off": "20", "duration": "once", "applies_to": "Pro!"},
            "Plan codes separated",
        ),
        ({"name": "", "percent_off": "20", "duration": "once"}, "name of up to 40"),
    ],
)
async def test_a_coupon_form_with_bad_input_says_what_to_fix(
    make_web: Callable[..., object], form: dict[str, str], message: str
) -> None:
    api = FakeBilling()
    web = await signed_in(make_web, api)
    page = await web.get("/admin/billing/coupons")
    answer = await web.post("/admin/billing/coupons", data={"csrf_token": csrf_of(page.text), **form})
    assert answer.status_code == 422 and message in answer.text
    bad_code = await web.post(
        f"/admin/billing/coupons/{COUPON_ID}/promotion-codes",
        data={"csrf_token": csrf_of(page.text), "code": "no"},
    )
    assert bad_code.status_code == 422 and "3 to 64 letters and digits" in bad_code.text
    assert api.changes() == []


async def test_a_user_page_links_to_their_billing_where_a_payment_is_refunded_once(
    make_web: Callable[..., object],
) -> None:
    api = FakeBilling()
    web = await signed_in(make_web, api)
    user_page = await web.get(f"/admin/users/{TARGET_ID}")
    assert f'href="/admin/users/{TARGET_ID}/billing"' in user_page.text
    billing = f"/admin/users/{TARGET_ID}/billing"
    page = await web.get(billing)
    assert (
        "$19.00" in page.text
        and "https://invoice.stripe.test/in_1" in page.text
        and "No subscription." in page.text
    )
    action = f"{billing}/payments/{PAYMENT_ID}/refund"
    asked = await web.post(
        action, data={"csrf_token": csrf_of(page.text), "amount": "5", "reason": "duplicate"}
    )
    assert "Refund $5.00 of the payment of $19.00" in asked.text
    hidden = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', asked.text))
    confirmation = {**hidden, "csrf_token": csrf_of(asked.text)}
    done = await web.post(action, data=confirmation)
    assert done.status_code == 303 and done.headers["location"].startswith(f"{billing}?refunded=")
    again = await web.post(action, data=confirmation)  # a double click: the same key, one refund
    assert again.status_code == 303
    refunds = [(path, body) for m, path, body in api.changes() if path.endswith("/refund")]
    assert (
        refunds
        == [(f"/billing/admin/payments/{PAYMENT_ID}/refund", {"amount": 500, "reason": "duplicate"})] * 2
    )
    assert list(api.refund_keys.values()) == [500] and api.payment["amount_refunded"] == 500
    after = await web.get(done.headers["location"])
    assert "The refund is made: $5.00." in after.text and "partly refunded" in after.text


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("20", "At most $19.00 is left"),
        ("abc", "such as 12.50"),
        ("0", "such as 12.50"),
        ("1.234", "such as 12.50"),
    ],
)
async def test_a_bad_refund_amount_is_a_message(
    make_web: Callable[..., object], amount: str, message: str
) -> None:
    api = FakeBilling()
    web = await signed_in(make_web, api)
    page = await web.get(f"/admin/users/{TARGET_ID}/billing")
    answer = await web.post(
        f"/admin/users/{TARGET_ID}/billing/payments/{PAYMENT_ID}/refund",
        data={"csrf_token": csrf_of(page.text), "amount": amount},
    )
    assert answer.status_code == 422 and message in answer.text
    assert api.changes() == []


async def test_a_refund_billing_refuses_or_stripe_misses_is_a_message(
    make_web: Callable[..., object],
) -> None:
    api = FakeBilling()
    web = await signed_in(make_web, api)
    billing = f"/admin/users/{TARGET_ID}/billing"
    action = f"{billing}/payments/{PAYMENT_ID}/refund"
    page = await web.get(billing)
    asked = await web.post(action, data={"csrf_token": csrf_of(page.text), "amount": "10"})
    hidden = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', asked.text))
    api.payment["amount_refunded"] = 1500  # refunded meanwhile from another tab
    exceeded = await web.post(action, data={**hidden, "csrf_token": csrf_of(asked.text)})
    assert exceeded.status_code == 422 and "At most $4.00 is left" in exceeded.text
    api.payment["amount_refunded"] = 0
    api.stripe_down = True
    away = await web.post(action, data={**hidden, "csrf_token": csrf_of(asked.text)})
    assert away.status_code == 503 and "Stripe cannot be reached now" in away.text
    unknown = await web.post(
        f"{billing}/payments/{uuid.uuid4()}/refund", data={"csrf_token": csrf_of(page.text)}
    )
    assert unknown.status_code == 404


async def test_the_stripe_event_log_filters_shows_one_and_retries_a_failed_one(
    make_web: Callable[..., object],
) -> None:
    api = FakeBilling()
    web = await signed_in(make_web, api)
    page = await web.get("/admin/billing/stripe-events")
    assert page.text.count('href="/admin/billing/stripe-events/evt_') == 2 and "KeyError" in page.text
    failed = await web.get(
        "/admin/billing/stripe-events", params={"status": "failed", "type": " invoice.paid ", "object_id": ""}
    )
    assert failed.text.count('href="/admin/billing/stripe-events/evt_') == 1
    listing = [params for m, path, _, params in api.calls if path == "/billing/admin/stripe-events"][-1]
    assert listing == {"limit": "25", "status": "failed", "type": "invoice.paid"}
    odd = await web.get("/admin/billing/stripe-events", params={"status": "bogus"})
    assert odd.status_code == 200
    stale = await web.get("/admin/billing/stripe-events", params={"cursor": "stale"})
    assert stale.status_code == 303
    detail = await web.get(f"/admin/billing/stripe-events/{FAILED_EVENT}")
    assert (
        "What Stripe sent" in detail.text and "&#34;in_1&#34;" in detail.text and "Retry now" in detail.text
    )
    asked, done = await asked_then_confirmed(
        web,
        f"/admin/billing/stripe-events/{FAILED_EVENT}",
        f"/admin/billing/stripe-events/{FAILED_EVENT}/retry",
        {},
    )
    assert "It failed 3 times" in asked.text
    assert done.headers["location"] == f"/admin/billing/stripe-events/{FAILED_EVENT}?retried=1"
    assert api.events[FAILED_EVENT]["status"] == "pending"
    _, refused = await asked_then_confirmed(
        web,
        f"/admin/billing/stripe-events/{APPLIED_EVENT}",
        f"/admin/billing/stripe-events/{APPLIED_EVENT}/retry",
        {},
    )
    assert refused.status_code == 409 and "Only a failed event can be retried" in refused.text
    assert (await web.get("/admin/billing/stripe-events/evt_nope")).status_code == 404
    assert (await web.get("/admin/billing/stripe-events/not-an-event")).status_code in (404, 422)


async def test_an_admin_action_without_the_csrf_token_is_refused(make_web: Callable[..., object]) -> None:
    api = FakeBilling()
    web = await signed_in(make_web, api)
    for action in (
        "/admin/billing/plans",
        f"/admin/billing/plans/{PLAN_ID}/retire",
        "/admin/billing/coupons",
        f"/admin/users/{TARGET_ID}/billing/payments/{PAYMENT_ID}/refund",
        f"/admin/billing/stripe-events/{FAILED_EVENT}/retry",
    ):
        answer = await web.post(action, data={"confirmed": "yes"})
        assert answer.status_code == 403, action
    assert api.changes() == []


async def test_the_billing_pages_in_french(make_web: Callable[..., object]) -> None:
    api = FakeBilling()
    web = await signed_in(make_web, api, locale="fr")
    plans = await web.get("/admin/billing/plans")
    assert "Formules" in plans.text and "dans Stripe" in plans.text
    events = await web.get("/admin/billing/stripe-events")
    assert "Événements Stripe" in events.text and "échoué" in events.text
    billing = await web.get(f"/admin/users/{TARGET_ID}/billing")
    assert "Paiements et factures" in billing.text and "Rembourser" in billing.text
