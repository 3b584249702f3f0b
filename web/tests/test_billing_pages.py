"""The billing pages over plain HTTP in this process, billing-service's endpoints stood in for by a
small fake that keeps one subscription's state as billing does (subscribe → Checkout URL, plan change
with its preview, cancel at period end, resume) and can answer each call with a refusal: how each
state reads, money in English and French, and every refusal (403, 409, 422, 429, 503) as a message
on the page, never an error page. The real journey is in test_billing_browser.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from conftest import SIGNED_IN, USER, csrf_of, problem
from gatehouse_web.i18n import money
from gatehouse_web.settings import Settings

CHECKOUT = "https://checkout.stripe.com/c/pay/cs_test_123"
PORTAL = "https://checkout.stripe.com/p/session/test_123"


def plan(code: str, name: str, amount: int, interval: str = "month", trial_days: int = 0) -> dict[str, Any]:
    return {
        "id": f"plan-{code}",
        "code": code,
        "name": name,
        "description": f"The {name} plan.",
        "tier": "pro",
        "amount": amount,
        "currency": "usd",
        "interval": interval,
        "interval_count": 1,
        "features": ["projects:unlimited", "api"] if amount > 1000 else ["projects:3"],
        "trial_days": trial_days,
        "active": True,
    }


PLANS = [
    plan("starter", "Starter", 900),
    plan("pro", "Pro", 2900, trial_days=14),
    plan("business", "Business", 9900),
]


class FakeBilling:
    """auth's /auth/me and /auth/login, and billing's endpoints as far as these pages use them."""

    def __init__(self, status: str | None = None, plan_code: str = "starter") -> None:
        self.status, self.plan_code, self.cancelling = status, plan_code, False
        self.refuse: dict[str, httpx.Response] = {}  # path → the answer instead
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def subscription(self) -> dict[str, Any]:
        chosen = next(p for p in PLANS if p["code"] == self.plan_code)
        return {
            "id": "5d1c3e2a-0000-4000-8000-000000000001",
            "user_id": USER["id"],
            "status": self.status,
            "plan": {k: chosen[k] for k in ("id", "code", "name", "tier")},
            "amount": chosen["amount"],
            "currency": "usd",
            "interval": "month",
            "current_period_start": "2026-03-01T10:00:00+00:00",
            "current_period_end": "2026-04-01T10:00:00+00:00",
            "cancel_at_period_end": self.cancelling,
            "cancel_at": "2026-04-01T10:00:00+00:00" if self.cancelling else None,
            "canceled_at": None,
            "ended_at": None,
            "end_reason": None,
            "trial_end": "2026-03-15T10:00:00+00:00" if self.status == "trialing" else None,
            "checkout_url": CHECKOUT if self.status == "checkout_pending" else None,
            "has_access": self.status in ("trialing", "active", "past_due"),
            "entitlements": [],
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
        if path == "/auth/identities":  # the account page lists them
            return httpx.Response(200, json={"items": [], "has_password": True})
        if path == "/billing/plans":
            return httpx.Response(200, json={"items": PLANS, "next_cursor": None})
        if path == "/billing/payments/me":
            payments = [] if self.status in (None, "checkout_pending", "trialing") else [PAYMENT]
            return httpx.Response(200, json={"items": payments, "next_cursor": None})
        if path == "/billing/subscriptions/me":
            if self.status is None:
                return problem(404, "subscription-not-found")
            return httpx.Response(200, json=self.subscription())
        if path == "/billing/subscriptions/subscribe":
            self.status, self.plan_code = "checkout_pending", body["plan_code"]
            return httpx.Response(
                201, json={"checkout_url": CHECKOUT, "session_id": "cs_test_123", "subscription_id": "x"}
            )
        if path == "/billing/subscriptions/upgrade/preview":
            return httpx.Response(
                200, json=PREVIEW_UP if request.url.params["plan_code"] == "business" else PREVIEW_DOWN
            )
        if path == "/billing/subscriptions/upgrade":
            self.plan_code = body["plan_code"]
            return httpx.Response(200, json=self.subscription())
        if path == "/billing/subscriptions/cancel":
            if self.status == "checkout_pending":
                self.status = "checkout_expired"
            else:
                self.cancelling = True
            return httpx.Response(200, json=self.subscription())
        if path == "/billing/subscriptions/resume":
            self.cancelling = False
            return httpx.Response(200, json=self.subscription())
        if path == "/billing/payment-method/me":
            if self.status in (None, "checkout_pending"):
                return problem(404, "payment-method-not-found")
            return httpx.Response(
                200, json={"brand": "visa", "last4": "4242", "exp_month": 4, "exp_year": 2031}
            )
        if path == "/billing/portal":
            if self.status is None:
                return problem(404, "billing-account-not-found")
            return httpx.Response(200, json={"url": PORTAL})
        return httpx.Response(404, json={"title": "Not found", "status": 404})


PAYMENT = {
    "id": "9d1c3e2a-0000-4000-8000-000000000001",
    "subscription_id": "5d1c3e2a-0000-4000-8000-000000000001",
    "invoice_id": "in_1",
    "status": "paid",
    "amount_due": 2900,
    "amount_paid": 2900,
    "currency": "usd",
    "billing_reason": "subscription_create",
    "attempt_count": 1,
    "failure_reason": None,
    "next_payment_attempt": None,
    "period_start": "2026-03-01T10:00:00+00:00",
    "period_end": "2026-04-01T10:00:00+00:00",
    "hosted_invoice_url": "https://invoice.stripe.com/i/in_1",
    "paid_at": "2026-03-01T10:00:05+00:00",
    "created_at": "2026-03-01T10:00:00+00:00",
}
PREVIEW_UP = {
    "plan_code": "business",
    "direction": "upgrade",
    "proration_behavior": "always_invoice",
    "proration_date": 1772960000,
    "due_now": True,
    "amount_due": 5000,
    "currency": "usd",
    "lines": [
        {
            "description": "Unused time on Pro",
            "amount": -1450,
            "proration": True,
            "period_start": "2026-03-16T10:00:00+00:00",
            "period_end": "2026-04-01T10:00:00+00:00",
        },
        {
            "description": "Remaining time on Business",
            "amount": 6450,
            "proration": True,
            "period_start": "2026-03-16T10:00:00+00:00",
            "period_end": "2026-04-01T10:00:00+00:00",
        },
    ],
}
PREVIEW_DOWN = {
    **PREVIEW_UP,
    "plan_code": "starter",
    "direction": "downgrade",
    "proration_behavior": "create_prorations",
    "due_now": False,
    "amount_due": 0,
    "lines": [
        {
            "description": "Unused time on Pro",
            "amount": -1000,
            "proration": True,
            "period_start": "2026-03-16T10:00:00+00:00",
            "period_end": "2026-04-01T10:00:00+00:00",
        },
        {
            "description": "Remaining time on Starter",
            "amount": 450,
            "proration": True,
            "period_start": "2026-03-16T10:00:00+00:00",
            "period_end": "2026-04-01T10:00:00+00:00",
        },
        {
            "description": "Starter (next period)",
            "amount": 900,
            "proration": False,
            "period_start": "2026-04-01T10:00:00+00:00",
            "period_end": "2026-05-01T10:00:00+00:00",
        },
    ],
}
PREVIEW_DOWN["amount_due"] = 350


async def signed_in(
    make_web: Callable[..., object], billing: FakeBilling, **settings: object
) -> httpx.AsyncClient:
    web = await make_web(api=httpx.MockTransport(billing), **settings)  # type: ignore[misc]
    assert isinstance(web, httpx.AsyncClient)
    page = await web.get("/login")
    answer = await web.post(
        "/login", data={"csrf_token": csrf_of(page.text), "login": "ada", "password": "pw"}
    )
    assert answer.status_code == 303
    return web


def between(html: str, start: str, end: str) -> str:
    return html.split(start, 1)[1].split(end, 1)[0]


def test_money_is_written_as_each_language_writes_it() -> None:
    assert money(2900, "usd", "en") == "$29.00"
    assert money(2900, "usd", "fr") == "29,00\u00a0$US"
    assert money(2900, "eur", "fr") == "29,00\u00a0€"
    assert money(-1450, "eur", "en") == "-€14.50"
    assert money(1500, "jpy", "en") == "¥1,500"  # no minor unit: the amount is in yen


async def test_a_newcomer_sees_the_plans_and_subscribes_through_checkout(
    make_web: Callable[..., object],
) -> None:
    billing = FakeBilling()
    web = await signed_in(make_web, billing, checkout_origins=["https://checkout.stripe.com"])
    page = await web.get("/billing")
    assert page.status_code == 200
    assert "Your plan" not in page.text and "No payments yet." in page.text
    pro = between(page.text, "<h3>Pro", "</form>")
    assert "$29.00 per month" in pro and "14-day free trial" in pro and "<li>api</li>" in pro
    assert 'aria-label="Subscribe to Pro"' in pro
    assert 'href="/billing" aria-current="page"' in page.text  # the signed-in nav links here

    answer = await web.post("/billing/subscribe", data={"csrf_token": csrf_of(page.text), "plan_code": "pro"})
    assert answer.status_code == 303 and answer.headers["location"] == CHECKOUT
    assert ("POST", "/billing/subscriptions/subscribe", {"plan_code": "pro"}) in billing.calls
    # The payment page's origin may end a form (CSP form-action applies to the redirect).
    assert (
        "form-action 'self' https://app.example.test https://checkout.stripe.com"
        in answer.headers["content-security-policy"]
    )


async def test_an_open_checkout_is_resumed_and_a_checkout_url_elsewhere_is_refused(
    make_web: Callable[..., object],
) -> None:
    billing = FakeBilling("checkout_pending", "pro")
    billing.refuse["/billing/subscriptions/subscribe"] = problem(
        409, "checkout-in-progress", checkout_url=CHECKOUT, session_id="cs_test_123"
    )
    web = await signed_in(make_web, billing, checkout_origins=["https://checkout.stripe.com"])
    page = await web.get("/billing")
    assert "waiting for payment" in page.text and f'href="{CHECKOUT}"' in page.text
    assert "Abandon this payment" in page.text and "your plan</span>" not in page.text
    assert 'aria-label="Subscribe to Business"' in page.text  # another plan may still be chosen
    again = await web.post("/billing/subscribe", data={"csrf_token": csrf_of(page.text), "plan_code": "pro"})
    assert again.status_code == 303 and again.headers["location"] == CHECKOUT

    elsewhere = await signed_in(make_web, FakeBilling(), checkout_origins=["https://pay.example.test"])
    page = await elsewhere.get("/billing")
    refused = await elsewhere.post(
        "/billing/subscribe", data={"csrf_token": csrf_of(page.text), "plan_code": "pro"}
    )
    assert refused.status_code == 503 and "location" not in refused.headers  # never an open redirect


@pytest.mark.parametrize(
    ("answer", "status", "message"),
    [
        (problem(409, "subscription-exists"), 409, "You already have a subscription."),
        (problem(403, "email-not-verified"), 403, "Confirm your email address first"),
        (problem(409, "plan-not-available"), 409, "That plan is not offered any more."),
        (
            problem(422, "validation", errors={"plan_code": "string does not match pattern"}),
            422,
            "string does not match pattern",
        ),
        (problem(429, "rate-limited", retry_after=30), 429, "Please wait 30 seconds"),
        (
            problem(503, "payment-provider-unavailable", retry_after=5),
            503,
            "Payments are unavailable for a moment. Please try again in 5 seconds.",
        ),
        (problem(502, "payment-provider-error"), 503, "Payments are unavailable for a moment."),
    ],
)
async def test_a_refused_subscription_is_explained_on_the_billing_page(
    make_web: Callable[..., object], answer: httpx.Response, status: int, message: str
) -> None:
    billing = FakeBilling()
    billing.refuse["/billing/subscriptions/subscribe"] = answer
    web = await signed_in(make_web, billing)
    page = await web.get("/billing")
    refused = await web.post(
        "/billing/subscribe", data={"csrf_token": csrf_of(page.text), "plan_code": "pro"}
    )
    assert refused.status_code == status
    assert message in between(refused.text, 'role="alert"', "</div>")
    assert '<h2 id="plans">Plans</h2>' in refused.text  # the page itself, to choose again


async def test_a_bad_plan_code_is_refused_before_the_api(make_web: Callable[..., object]) -> None:
    billing = FakeBilling()
    web = await signed_in(make_web, billing)
    page = await web.get("/billing")
    refused = await web.post(
        "/billing/subscribe", data={"csrf_token": csrf_of(page.text), "plan_code": "../admin"}
    )
    assert refused.status_code == 400 and "Choose one of the plans below." in refused.text
    assert not any(path == "/billing/subscriptions/subscribe" for _, path, _ in billing.calls)
    preview = await web.get("/billing/change?plan=%3Cscript%3E")
    assert preview.status_code == 400 and "<script>" not in preview.text
    forged = await web.post("/billing/subscribe", data={"plan_code": "pro"})
    assert forged.status_code == 403  # no CSRF token


async def test_the_success_page_waits_for_the_webhook_then_shows_the_plan(
    make_web: Callable[..., object],
) -> None:
    billing = FakeBilling("checkout_pending", "pro")
    web = await signed_in(make_web, billing)
    waiting = await web.get("/billing/success?session_id=cs_test_123")
    assert waiting.status_code == 200 and "Confirming your payment" in waiting.text
    assert 'role="status"' in waiting.text and "data-billing-pending" in waiting.text
    # Without JavaScript: a link asks again; with it, static/billing.js does.
    assert 'href="/billing/success?session_id=cs_test_123">Check again</a>' in waiting.text
    assert '<script src="/static/billing.js?v=' in waiting.text and "http-equiv" not in waiting.text
    odd = await web.get("/billing/success?session_id=%22%3E%3Cb%3E")
    assert 'href="/billing/success">Check again' in odd.text  # only a session id is kept

    billing.status = "trialing"  # the webhook arrived
    done = await web.get("/billing/success?session_id=cs_test_123")
    assert "You are subscribed" in done.text and "data-billing-pending" not in done.text
    assert "Welcome to Pro." in done.text and "free trial" in done.text
    assert "Your free trial ends on March 15, 2026" in done.text

    billing.status = "checkout_expired"
    failed = await web.get("/billing/success?session_id=cs_test_123")
    assert "The payment did not go through" in failed.text


async def test_leaving_checkout_comes_back_to_the_plans_with_a_message(
    make_web: Callable[..., object],
) -> None:
    web = await signed_in(make_web, FakeBilling())
    page = await web.get("/billing/cancel")
    assert page.status_code == 200
    assert "You left the payment page, so nothing was charged." in between(page.text, 'role="status"', "</p>")


async def test_an_active_plan_shows_its_renewal_payments_and_the_switches(
    make_web: Callable[..., object],
) -> None:
    web = await signed_in(make_web, FakeBilling("active", "pro"))
    page = await web.get("/billing")
    mine = between(page.text, 'id="mine"', "</section>")
    assert "<strong>Pro</strong>" in mine and ">active</span>" in mine
    assert "Renews on April 1, 2026." in mine and 'href="/billing/cancellation"' in mine
    assert 'href="/billing/change?plan=business">Switch to Business</a>' in page.text
    assert 'href="/billing/change?plan=pro"' not in page.text  # not to the plan I am on
    assert "Subscribe to" not in page.text
    payments = between(page.text, 'id="payments"', "</section>")
    assert "March 1, 2026" in payments and "First payment" in payments and "$29.00" in payments
    assert ">paid</span>" in payments and 'href="https://invoice.stripe.com/i/in_1"' in payments
    assert 'role="region"' in payments and 'tabindex="0"' in payments  # the table scrolls on a phone


@pytest.mark.parametrize(
    ("changes", "label"),
    [
        ({"status": "partially_refunded", "amount_refunded": 1000}, ">partly refunded</span>"),
        ({"status": "refunded", "amount_refunded": 2900}, ">refunded</span>"),
        ({"status": "disputed", "dispute_status": "open"}, ">disputed</span>"),
        ({"status": "paid", "dispute_status": "lost"}, ">dispute lost</span>"),
    ],
)
async def test_a_refunded_or_disputed_payment_shows_what_happened_to_it(
    make_web: Callable[..., object], monkeypatch: pytest.MonkeyPatch, changes: dict[str, Any], label: str
) -> None:
    monkeypatch.setitem(
        globals(), "PAYMENT", {**PAYMENT, "amount_refunded": 0, "dispute_status": None, **changes}
    )
    web = await signed_in(make_web, FakeBilling("active", "pro"))
    payments = between((await web.get("/billing")).text, 'id="payments"', "</section>")
    assert label in payments and "$29.00" in payments  # what was paid


async def test_an_upgrade_shows_what_is_due_now_before_it_changes_anything(
    make_web: Callable[..., object],
) -> None:
    billing = FakeBilling("active", "pro")
    web = await signed_in(make_web, billing)
    preview = await web.get("/billing/change?plan=business")
    assert preview.status_code == 200
    assert "Switch to Business" in preview.text and "Due now: $50.00" in preview.text
    assert "Pay $50.00 and switch" in preview.text and "-$14.50" in preview.text
    assert billing.plan_code == "pro"  # a preview changes nothing
    assert '<input type="hidden" name="proration_date" value="1772960000">' in preview.text

    done = await web.post(
        "/billing/change",
        data={"csrf_token": csrf_of(preview.text), "plan_code": "business", "proration_date": "1772960000"},
    )
    assert done.status_code == 303 and done.headers["location"] == "/billing?done=changed"
    assert (
        "POST",
        "/billing/subscriptions/upgrade",
        {"plan_code": "business", "when": "now", "proration_date": 1772960000},
    ) in billing.calls
    after = await web.get(done.headers["location"])
    assert "Your plan is changed." in after.text and "<strong>Business</strong>" in after.text


async def test_a_downgrade_shows_the_credit_and_nothing_due_now(make_web: Callable[..., object]) -> None:
    web = await signed_in(make_web, FakeBilling("active", "pro"))
    preview = await web.get("/billing/change?plan=starter")
    assert "Nothing to pay now." in preview.text
    assert "The unused time on your current plan, $10.00, is credited to your next invoice." in preview.text
    assert "Your next invoice: $3.50." in preview.text and "Switch now" in preview.text


@pytest.mark.parametrize(
    ("answer", "status", "message"),
    [
        (problem(402, "payment-declined"), 402, "Your card was declined, so nothing has changed."),
        (problem(409, "same-plan"), 409, "You are on that plan already."),
        (problem(422, "invalid-proration-date"), 422, "The price you saw has changed since."),
        (problem(503, "payment-provider-unavailable"), 503, "Payments are unavailable for a moment."),
    ],
)
async def test_a_refused_plan_change_is_explained(
    make_web: Callable[..., object], answer: httpx.Response, status: int, message: str
) -> None:
    billing = FakeBilling("active", "pro")
    billing.refuse["/billing/subscriptions/upgrade"] = answer
    web = await signed_in(make_web, billing)
    preview = await web.get("/billing/change?plan=business")
    refused = await web.post(
        "/billing/change", data={"csrf_token": csrf_of(preview.text), "plan_code": "business"}
    )
    assert refused.status_code == status and message in refused.text
    assert billing.plan_code == "pro"


async def test_a_preview_the_api_refuses_is_explained(make_web: Callable[..., object]) -> None:
    billing = FakeBilling("past_due", "pro")
    billing.refuse["/billing/subscriptions/upgrade/preview"] = problem(409, "subscription-not-changeable")
    web = await signed_in(make_web, billing)
    page = await web.get("/billing")
    assert "Your last payment failed." in page.text and "Switch to" not in page.text
    refused = await web.get("/billing/change?plan=business")
    assert refused.status_code == 409 and "cannot be changed right now" in refused.text


async def test_cancel_at_the_period_end_after_a_confirmation_then_resume(
    make_web: Callable[..., object],
) -> None:
    billing = FakeBilling("active", "pro")
    web = await signed_in(make_web, billing)
    confirm = await web.get("/billing/cancellation")
    assert confirm.status_code == 200 and "Cancel your subscription?" in confirm.text
    assert "Pro stays yours until April 1, 2026" in confirm.text
    assert not billing.cancelling  # asking is not doing

    done = await web.post("/billing/cancellation", data={"csrf_token": csrf_of(confirm.text)})
    assert done.status_code == 303 and done.headers["location"] == "/billing?done=cancelled"
    page = await web.get(done.headers["location"])
    assert "Your subscription is cancelled at the end of the period." in page.text
    assert "Cancelled: you keep access until April 1, 2026." in page.text
    assert ">cancelled, access until the period end</span>" in page.text
    assert "Resume my subscription" in page.text and 'href="/billing/cancellation"' not in page.text

    resumed = await web.post("/billing/resume", data={"csrf_token": csrf_of(page.text)})
    assert resumed.headers["location"] == "/billing?done=resumed"
    page = await web.get(resumed.headers["location"])
    assert "Your subscription goes on" in page.text and "Renews on April 1, 2026." in page.text

    billing.refuse["/billing/subscriptions/resume"] = problem(409, "subscription-not-changeable")
    refused = await web.post("/billing/resume", data={"csrf_token": csrf_of(page.text)})
    assert refused.status_code == 409 and "cannot be changed right now" in refused.text


async def test_manage_billing_goes_to_the_portal_which_returns_to_the_billing_page(
    make_web: Callable[..., object],
) -> None:
    billing = FakeBilling("active", "pro")
    web = await signed_in(
        make_web,
        billing,
        checkout_origins=["https://checkout.stripe.com"],
        public_url="https://app.example.test",
    )
    page = await web.get("/billing")
    assert "Visa ending in 4242, expires 04/2031" in page.text and 'action="/billing/manage"' in page.text
    moved = await web.post("/billing/manage", data={"csrf_token": csrf_of(page.text)})
    assert moved.status_code == 303 and moved.headers["location"] == PORTAL
    assert billing.calls[-1] == (
        "POST",
        "/billing/portal",
        {"return_url": "https://app.example.test/billing"},
    )
    assert (await web.post("/billing/manage", data={"csrf_token": "forged"})).status_code == 403

    elsewhere = await signed_in(
        make_web, FakeBilling("active"), checkout_origins=["https://pay.example.test"]
    )
    page = await elsewhere.get("/billing")
    refused = await elsewhere.post("/billing/manage", data={"csrf_token": csrf_of(page.text)})
    assert refused.status_code == 503 and "location" not in refused.headers  # never an open redirect


async def test_manage_billing_without_a_billing_account_is_explained(make_web: Callable[..., object]) -> None:
    billing = FakeBilling()
    web = await signed_in(make_web, billing)
    page = await web.get("/billing")
    assert 'action="/billing/manage"' not in page.text  # nothing to manage before a subscription
    refused = await web.post("/billing/manage", data={"csrf_token": csrf_of(page.text)})
    assert refused.status_code == 404 and "There is nothing to manage yet" in refused.text


async def test_abandon_an_unfinished_payment(make_web: Callable[..., object]) -> None:
    billing = FakeBilling("checkout_pending", "pro")
    web = await signed_in(make_web, billing)
    confirm = await web.get("/billing/cancellation")
    assert "Abandon the payment?" in confirm.text
    done = await web.post("/billing/cancellation", data={"csrf_token": csrf_of(confirm.text)})
    assert done.headers["location"] == "/billing?done=abandoned"
    page = await web.get(done.headers["location"])
    assert "The unfinished payment is abandoned." in page.text and "Subscribe to Pro" in page.text
    nothing = await web.get("/billing/cancellation")  # nothing left to cancel: back to the page
    assert nothing.status_code == 303 and nothing.headers["location"] == "/billing"


async def test_the_billing_pages_in_french(make_web: Callable[..., object]) -> None:
    web = await signed_in(make_web, FakeBilling("active", "pro"))
    page = await web.get("/billing", headers={"Accept-Language": "fr"})
    assert page.headers["content-language"] == "fr"
    assert "<h1>Facturation</h1>" in page.text
    assert "29,00\u00a0$US par mois" in page.text and "1 avril 2026" in page.text
    preview = await web.get("/billing/change?plan=business", headers={"Accept-Language": "fr"})
    assert "50,00\u00a0$US" in preview.text and "Passer à Business" in preview.text


async def test_a_stranger_is_sent_to_sign_in_and_back(make_web: Callable[..., object]) -> None:
    web = await make_web(api=httpx.MockTransport(FakeBilling()))  # type: ignore[misc]
    for path in ("/billing", "/billing/success?session_id=cs_1", "/billing/change?plan=pro"):
        answer = await web.get(path)
        assert answer.status_code == 303 and answer.headers["location"].startswith(
            "/session/refresh?return_to="
        )


async def test_the_account_page_links_to_billing(make_web: Callable[..., object]) -> None:
    web = await signed_in(make_web, FakeBilling())
    account = await web.get("/account")
    assert 'href="/billing">Plans and billing</a>' in account.text


def test_the_checkout_origins_are_read_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEB_CHECKOUT_ORIGINS", "http://127.0.0.1:12111, https://Checkout.Stripe.com/")
    assert Settings().checkout_origins == ["http://127.0.0.1:12111", "https://checkout.stripe.com"]
    monkeypatch.setenv("WEB_CHECKOUT_ORIGINS", "https://checkout.stripe.com/pay")
    with pytest.raises(ValueError, match="must be an origin"):
        Settings()
