"""The billing journey in Debian's Chromium against the whole running system (tests-e2e's harness):
subscribe → the Stripe emulator's Checkout page (leave it once, come back) → Pay → the success page
shows the plan once billing has the webhook → the email's link lands on /billing → change plan with
the preview shown first → cancel at the period end → resume. axe-core on every page, in English and
French and at a phone's width; screenshots in var/web-tests/pages/."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest
import test_browser as journeys
from playwright.sync_api import Browser, Locator, Page, expect

from harness import System, link_in

pytestmark = pytest.mark.timeout(300)

# The browser journeys' fixtures and helpers (one system for this module, started by its own fixture)
system = journeys.system
playwright = journeys.playwright
browser = journeys.browser
context = journeys.context
page = journeys.page
axe_check, shot, new_email, wait_for_mail = (
    journeys.axe_check,
    journeys.shot,
    journeys.new_email,
    journeys.wait_for_mail,
)
PHONE = {"width": 375, "height": 812}


def confirmed_sign_up(page: Page, system: System, email: str) -> None:
    """A new account whose email address is confirmed (billing refuses to sell to one that is not)."""
    journeys.sign_up(page, system, email)
    message = wait_for_mail(system, email, "confirm your email")
    page.goto(link_in(message, r"https?://\S+/verify-email\?token=[\w-]+"))
    page.get_by_role("button", name="Confirm my email address").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your email address is confirmed")
    journeys.sign_in(page, system, email)


def reload_until(page: Page, done: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"{page.url} never showed what was expected"
        time.sleep(0.5)
        page.reload()


def plan_card(page: Page, name: str) -> Locator:
    return page.locator(".plan").filter(has=page.get_by_role("heading", name=name, exact=True))


def fits_a_phone(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), page.url


def test_subscribe_pay_change_plan_cancel_and_resume(browser: Browser, page: Page, system: System) -> None:
    email = new_email()
    confirmed_sign_up(page, system, email)
    page.get_by_role("link", name="Plans and billing").click()  # from the account home
    expect(page).to_have_url(f"{system.gateway}/billing")
    expect(page.get_by_role("heading", level=1)).to_have_text("Billing")
    expect(page.get_by_text("No payments yet.")).to_be_visible()
    expect(plan_card(page, "Pro")).to_contain_text("14-day free trial")
    axe_check(page)
    shot(page, "billing-plans")

    # To the emulator's Checkout page, and back without paying
    page.get_by_role("button", name="Subscribe to Starter").click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(system.urls['stripe'])}/checkout/cs_"))
    checkout_url = page.url
    page.get_by_role("link", name="Cancel and return").click()
    expect(page).to_have_url(f"{system.gateway}/billing/cancel")
    expect(page.get_by_role("status")).to_contain_text("You left the payment page, so nothing was charged.")
    expect(page.locator("#mine")).to_be_visible()
    expect(page.locator(".badge").first).to_have_text("waiting for payment")
    axe_check(page)
    shot(page, "billing-checkout-left")
    # Before billing hears of a payment, the success page says it is still confirming
    page.goto(f"{system.gateway}/billing/success?session_id=cs_test_not_yet")
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirming your payment")
    expect(page.get_by_role("link", name="Check again")).to_be_visible()
    axe_check(page)
    shot(page, "billing-success-confirming")

    # The same plan again: the open Checkout, then Pay
    page.goto(f"{system.gateway}/billing")
    page.get_by_role("button", name="Subscribe to Starter").click()
    expect(page).to_have_url(checkout_url)
    page.get_by_role("button", name="Pay (card 4242)").click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(system.gateway)}/billing/success\?session_id=cs_"))
    # billing.js asks again until billing has the webhook, then shows the plan in place
    expect(page.get_by_role("heading", level=1)).to_have_text("You are subscribed", timeout=30_000)
    expect(page.get_by_text("Welcome to Starter.")).to_be_visible()
    axe_check(page)
    shot(page, "billing-success")

    # The email's link lands on the billing page
    message = wait_for_mail(system, email, "subscription is active")
    page.goto(link_in(message, r"https?://\S+/billing\b"))
    expect(page).to_have_url(f"{system.gateway}/billing")
    mine = page.locator("#mine").locator("..")
    expect(mine).to_contain_text("Starter")
    expect(mine).to_contain_text("Renews on")
    payments = page.locator("table.payments tbody tr")
    expect(payments).to_have_count(1)
    expect(payments.first).to_contain_text("$9.00")
    expect(payments.first).to_contain_text("paid")
    expect(payments.first.get_by_role("link", name="View the invoice")).to_have_attribute(
        "href", re.compile(rf"^{re.escape(system.urls['stripe'])}/invoices/in_")
    )
    axe_check(page)
    shot(page, "billing")

    # Change plan: the preview first, then the change
    page.get_by_role("link", name="Switch to Business").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Switch to Business")
    due = page.locator(".due")
    expect(due).to_contain_text(re.compile(r"Due now: \$\d+\.\d\d"))
    amount = re.search(r"\$\d+\.\d\d", due.inner_text())
    assert amount is not None
    axe_check(page)
    shot(page, "billing-change-preview")
    page.get_by_role("button", name=f"Pay {amount.group(0)} and switch").click()
    expect(page).to_have_url(f"{system.gateway}/billing?done=changed")
    expect(page.get_by_role("status")).to_have_text("Your plan is changed.")
    expect(mine).to_contain_text("Business")
    reload_until(page, lambda: payments.count() == 2)  # the invoice's webhook may come a moment later
    expect(payments.first).to_contain_text(amount.group(0))  # charged what the preview said
    expect(payments.first).to_contain_text("Plan change")

    # Cancel at the period end (asked once more), then resume
    page.get_by_role("link", name="Cancel my subscription").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Cancel your subscription?")
    axe_check(page)
    shot(page, "billing-cancel")
    page.get_by_role("button", name="Cancel at the end of the period").click()
    expect(page).to_have_url(f"{system.gateway}/billing?done=cancelled")
    expect(mine).to_contain_text("Cancelled: you keep access until")
    axe_check(page)
    shot(page, "billing-cancelled")
    page.get_by_role("button", name="Resume my subscription").click()
    expect(page).to_have_url(f"{system.gateway}/billing?done=resumed")
    expect(mine).to_contain_text("Renews on")
    expect(page.get_by_role("link", name="Cancel my subscription")).to_be_visible()

    # At a phone's width: nothing overflows sideways, and axe still passes
    page.set_viewport_size(PHONE)
    for path in ("/billing", "/billing/change?plan=pro", "/billing/cancellation"):
        page.goto(f"{system.gateway}{path}")
        fits_a_phone(page)
        axe_check(page)
    page.goto(f"{system.gateway}/billing")
    shot(page, "billing-phone")

    # In French (a browser that asks for it, signed in as the same person), money as French writes it
    french = browser.new_context(locale="fr-FR", viewport={"width": 1100, "height": 820})
    try:
        french.add_cookies(page.context.cookies())
        tab = french.new_page()
        tab.goto(f"{system.gateway}/billing")
        expect(tab.get_by_role("heading", level=1)).to_have_text("Facturation")
        expect(plan_card(tab, "Starter")).to_contain_text("9,00\u00a0$US par mois")
        expect(tab.locator("table.payments tbody tr").first).to_contain_text("payé")
        axe_check(tab)
        shot(tab, "billing-fr")
    finally:
        french.close()


def test_manage_billing_updates_the_card_in_the_portal_and_returns(page: Page, system: System) -> None:
    email = new_email()
    confirmed_sign_up(page, system, email)
    page.goto(f"{system.gateway}/billing")
    page.get_by_role("button", name="Subscribe to Starter").click()
    page.get_by_role("button", name="Pay (card 4242)").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You are subscribed", timeout=30_000)
    page.goto(f"{system.gateway}/billing")
    card = page.locator(".card-on-file")
    expect(card).to_have_text(re.compile(r"Visa ending in 4242, expires \d\d/\d{4}"))

    # To the emulator's portal page: a new card (one declined first), then back
    page.get_by_role("button", name="Manage billing").click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(system.urls['stripe'])}/billing_portal/bps_"))
    expect(page.get_by_text("Starter", exact=True)).to_be_visible()
    page.get_by_label("Card number").fill("4000 0000 0000 0002")
    page.get_by_label("Month").fill("9")
    page.get_by_label("Year").fill("2032")
    page.get_by_role("button", name="Update payment method").click()
    expect(page.get_by_role("alert")).to_have_text("Your card was declined.")
    page.get_by_label("Card number").fill("5555 5555 5555 4444")
    page.get_by_label("Month").fill("9")
    page.get_by_label("Year").fill("2032")
    page.get_by_role("button", name="Update payment method").click()
    expect(page.get_by_role("status")).to_have_text("Your payment method was updated.")
    expect(page.locator("#card")).to_contain_text("Mastercard •••• 4444 · expires 09/2032")
    shot(page, "billing-portal")
    page.get_by_role("link", name=re.compile("Return to")).click()

    expect(page).to_have_url(f"{system.gateway}/billing")
    expect(card).to_have_text("Mastercard ending in 4444, expires 09/2032")
    axe_check(page)
    shot(page, "billing-card-updated")
