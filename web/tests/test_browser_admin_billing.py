"""The console's billing pages in Debian's Chromium against the whole running system (tests-e2e's
harness, as test_browser_admin.py): a customer subscribes and pays on the Stripe emulator's
Checkout page; an admin, signed in with their authenticator app, creates a plan (its product and
price made in the emulator) through the confirmation page, finds the customer, opens their billing,
refunds part of the payment through the confirmation page (billing's audit trail names the admin),
reads the Stripe event log and one event, the coupons and the System page. axe-core on every page,
at a phone's width and in French; screenshots in var/web-tests/pages/."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from test_billing_browser import confirmed_sign_up
from test_browser import (  # noqa: F401 - the browser fixtures, used by name
    PASSWORD,
    axe_check,
    browser,
    context,
    new_email,
    next_code,
    page,
    playwright,
    set_up_the_authenticator_app,
    shot,
    sign_in,
    sign_up,
    with_auth_settings,
)
from test_browser_admin import fits_the_width, make_admin

from harness import ADMIN_EMAIL, ADMIN_PASSWORD, System

pytestmark = pytest.mark.timeout(600)  # one long journey, and the system start before it


@pytest.fixture(scope="module")
def system(whole_system: System) -> System:
    return with_auth_settings(whole_system, {})


def refunds_audited(system: System, user_id: str, admin_email: str) -> list[dict[str, object]]:
    """Billing's audit trail of the customer's refunds, each with the id of the admin who made it."""
    with httpx.Client(base_url=system.gateway, timeout=10) as api:
        signed_in = api.post("/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        bearer = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
        [admin] = api.get("/auth/admin/users", params={"q": admin_email}, headers=bearer).json()["items"]
        found = api.get("/billing/admin/audit-events", params={"user_id": user_id}, headers=bearer)
        assert found.status_code == 200, found.text
        items: list[dict[str, object]] = found.json()["items"]
        return [e for e in items if e["action"] == "payment.refunded" and e["actor_id"] == admin["id"]]


def test_an_admin_creates_a_plan_and_refunds_part_of_a_payment(
    browser: Browser,  # noqa: F811 - the imported fixture
    page: Page,  # noqa: F811 - the imported fixture
    system: System,
) -> None:
    # A customer subscribes to Starter and pays ($9.00).
    customer = new_email()
    confirmed_sign_up(page, system, customer)
    page.goto(f"{system.gateway}/billing")
    page.get_by_role("button", name="Subscribe to Starter").click()
    page.get_by_role("button", name="Pay (card 4242)").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You are subscribed", timeout=30_000)
    page.context.clear_cookies()

    # An admin, signed in with the authenticator app.
    admin_email = new_email()
    sign_up(page, system, admin_email)
    make_admin(system, admin_email)
    sign_in(page, system, admin_email)
    app, _codes = set_up_the_authenticator_app(page, system)
    page.context.clear_cookies()
    page.goto(f"{system.gateway}/login")
    page.get_by_label("Email or username").fill(admin_email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_label("Code from the app").fill(next_code(app))
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(f"{system.gateway}/account")

    # Create a plan: a mistake first, then the confirmation, then the plan in the list, in Stripe.
    page.goto(f"{system.gateway}/admin/billing/plans")
    expect(page.get_by_role("heading", level=1)).to_have_text("Plans")
    axe_check(page)
    shot(page, "admin-plans")
    page.get_by_role("link", name="New plan").click()
    code = f"team{new_email().split('@')[0][-6:].lower()}"
    code = re.sub(r"[^a-z0-9]", "", code)
    page.get_by_label("Code").fill(code)
    page.get_by_label("Name").fill("Team")
    page.get_by_label("Tier").select_option("business")
    page.get_by_label("Price").fill("49.5.0")
    page.get_by_label("Features").fill("reports, api")
    page.get_by_role("button", name="Create the plan").click()
    expect(page.get_by_role("alert")).to_contain_text("such as 12.50")
    axe_check(page)
    shot(page, "admin-plan-form-error")
    page.get_by_label("Price").fill("49.50")
    page.get_by_role("button", name="Create the plan").click()
    expect(page.get_by_role("main")).to_contain_text(f"Create the plan Team ({code}) at $49.50 per month?")
    axe_check(page)
    shot(page, "admin-plan-confirm")
    page.get_by_role("button", name="Yes, do it").click()
    expect(page.get_by_role("status")).to_contain_text("The plan is created")
    created = page.locator("li.card", has=page.get_by_role("link", name="Team", exact=True))
    expect(created).to_contain_text("in Stripe")
    expect(created).to_contain_text(re.compile(r"price_\w+"))
    axe_check(page)
    shot(page, "admin-plans-created")

    # The customer's billing, from their user page; refund $4.00 of the $9.00.
    page.goto(f"{system.gateway}/admin/users?q={customer}")
    page.get_by_role("link", name=customer).click()
    page.wait_for_url(re.compile(r"/admin/users/[0-9a-f-]{36}$"))  # the user's page, not the search
    user_id = page.url.rsplit("/", 1)[1]
    page.get_by_role("link", name="Subscription, payments and refunds").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Billing of {customer}")
    payments = page.locator("section", has=page.get_by_role("heading", name="Payments and invoices"))
    expect(payments).to_contain_text("$9.00")
    expect(page.locator("section", has=page.get_by_role("heading", name="Subscriptions"))).to_contain_text(
        "Starter"
    )
    axe_check(page)
    shot(page, "admin-user-billing")
    payments.get_by_label("Amount to refund (USD)").fill("20")
    payments.get_by_role("button", name="Refund").click()
    expect(page.get_by_role("alert")).to_contain_text("At most $9.00 is left to refund")
    payments.get_by_label("Amount to refund (USD)").fill("4")
    payments.get_by_label("Reason").select_option("requested_by_customer")
    payments.get_by_role("button", name="Refund").click()
    expect(page.get_by_role("main")).to_contain_text("Refund $4.00 of the payment of $9.00")
    axe_check(page)
    shot(page, "admin-refund-confirm")
    page.get_by_role("button", name="Yes, do it").click()
    expect(page.get_by_role("status")).to_have_text("The refund is made: $4.00.")
    expect(payments).to_contain_text("partly refunded")
    expect(payments).to_contain_text("$4.00")
    axe_check(page)
    shot(page, "admin-user-billing-refunded")
    [refund] = refunds_audited(system, user_id, admin_email)
    assert refund["details"]["amount"] == 400, refund  # type: ignore[index]

    # The Stripe event log: the checkout's events, one of them with what Stripe sent.
    page.get_by_role("link", name="Stripe events").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Stripe events")
    page.get_by_label("Type").fill("invoice.paid")
    page.get_by_role("button", name="Search").click()
    found = page.locator("ul[aria-label='Stripe events found'] > li")
    expect(found.first).to_contain_text("applied")
    axe_check(page)
    shot(page, "admin-stripe-events")
    found.first.get_by_role("link").click()
    expect(page.get_by_role("heading", name="What Stripe sent")).to_be_visible()
    axe_check(page)
    shot(page, "admin-stripe-event")
    event_url = page.url

    # Coupons and the System page.
    page.get_by_role("link", name="Coupons").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Coupons")
    axe_check(page)
    shot(page, "admin-coupons")
    page.get_by_role("link", name="System").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("System")
    for service in ("auth-service", "billing-service", "notification-service"):
        expect(page.get_by_role("heading", name=re.compile(f"^{service}"))).to_contain_text("ready")
    expect(page.get_by_role("main")).to_contain_text("Receive-to-apply lag")
    axe_check(page)
    shot(page, "admin-system")

    # At a phone's width, and in French.
    page.set_viewport_size({"width": 375, "height": 800})
    for path, name in (
        ("/admin/billing/plans", "admin-plans-narrow"),
        (f"/admin/users/{user_id}/billing", "admin-user-billing-narrow"),
        (event_url, "admin-stripe-event-narrow"),
        ("/admin/system", "admin-system-narrow"),
    ):
        page.goto(path if path.startswith("http") else f"{system.gateway}{path}")
        fits_the_width(page)
        axe_check(page)
        shot(page, name)
    french = browser.new_context(locale="fr-FR", storage_state=page.context.storage_state())
    try:
        tab = french.new_page()
        tab.goto(f"{system.gateway}/admin/users/{user_id}/billing")
        expect(tab.get_by_role("heading", name="Paiements et factures")).to_be_visible()
        axe_check(tab)
        shot(tab, "admin-user-billing-fr")
        tab.goto(f"{system.gateway}/admin/system")
        expect(tab.get_by_role("heading", level=1)).to_have_text("Système")
        axe_check(tab)
    finally:
        french.close()
