"""The organization billing page in Debian's Chromium: the web app served over real HTTP in this
process, billing's org endpoints stood in for by test_org_billing_pages' fake (the whole-system
journey needs auth-service's organization tokens). Each state of the page (no subscription yet, a
per-seat plan with its seats, someone not acting in the org, a refusal), axe-core at WCAG 2.1 AA in
English and French and at a phone's width; screenshots in var/web-tests/pages/."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import test_browser as journeys
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright
from test_org_billing_pages import ORG, PAGE, FakeOrgBilling

from conftest import problem, web_settings
from gatehouse_platform.testing import serve_in_thread
from gatehouse_web.api import Api
from gatehouse_web.main import create_app

pytestmark = pytest.mark.timeout(300)
axe_check, shot = journeys.axe_check, journeys.shot
PHONE = {"width": 375, "height": 812}


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(
        executable_path="/usr/bin/chromium", headless=True, args=journeys.CHROMIUM_ARGS
    )
    yield chromium
    chromium.close()


@contextmanager
def serve(billing: FakeOrgBilling) -> Iterator[str]:
    settings = web_settings(checkout_origins=["https://checkout.stripe.com"])
    app = create_app(settings)
    app.state.web.api = Api(settings, transport=httpx.MockTransport(billing))
    with serve_in_thread(app) as base:
        yield base


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(locale="en-US", viewport={"width": 1100, "height": 820})
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext, request: pytest.FixtureRequest) -> Iterator[Page]:
    tab = context.new_page()
    violations: list[str] = []
    tab.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    request.node.page_for_screenshot = tab
    yield tab
    assert violations == [], f"the CSP blocked something on a page: {violations}"


def signed_in_to_the_page(page: Page, base: str) -> None:
    page.goto(f"{base}{PAGE}")  # signs in first, then back here
    page.get_by_label("Email or username").fill("ada")
    page.get_by_label("Password").fill("pw")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(f"{base}{PAGE}")


def test_an_org_without_a_subscription_offers_the_per_seat_plans(page: Page) -> None:
    billing = FakeOrgBilling()
    billing.refuse["/billing/subscriptions/subscribe"] = problem(409, "seat-limit-exceeded")
    with serve(billing) as base:
        signed_in_to_the_page(page, base)
        expect(page.get_by_role("heading", name="Organization billing")).to_be_visible()
        expect(page.get_by_text("$10.00 per month, per seat")).to_be_visible()
        axe_check(page)
        shot(page, "org-billing-none")
        page.get_by_role("button", name="Subscribe the organization to Team").click()
        expect(page.get_by_role("alert")).to_contain_text("more members than this plan allows")
        axe_check(page)
        shot(page, "org-billing-refused")


def test_the_orgs_plan_and_seats_in_english_french_and_on_a_phone(page: Page, browser: Browser) -> None:
    with serve(FakeOrgBilling("active")) as base:
        signed_in_to_the_page(page, base)
        expect(page.locator("dd.seats")).to_contain_text("7")
        expect(page.locator("dd.seats")).to_contain_text("at most 25 members")
        expect(page.get_by_role("button", name="Manage billing")).to_be_visible()
        axe_check(page)
        shot(page, "org-billing-active")
        page.set_viewport_size(PHONE)
        axe_check(page)
        shot(page, "org-billing-active-phone")

        french = browser.new_context(locale="fr-FR", viewport={"width": 1100, "height": 820})
        try:
            tab = french.new_page()
            signed_in_french(tab, base)
            expect(tab.get_by_role("heading", name="Facturation de l’organisation")).to_be_visible()
            axe_check(tab)
            shot(tab, "org-billing-active-fr")
        finally:
            french.close()


def signed_in_french(page: Page, base: str) -> None:
    page.goto(f"{base}{PAGE}")
    page.locator("input[name=login]").fill("ada")
    page.locator("input[name=password]").fill("pw")
    page.locator("form button[type=submit]").first.click()
    expect(page).to_have_url(f"{base}{PAGE}")


def test_someone_not_acting_in_the_org_is_told_to_switch(page: Page) -> None:
    with serve(FakeOrgBilling("active", outsider=True)) as base:
        signed_in_to_the_page(page, base)
        expect(page.get_by_role("alert")).to_contain_text("Act in this organization to see its billing")
        assert ORG in page.url
        axe_check(page)
        shot(page, "org-billing-outsider")
