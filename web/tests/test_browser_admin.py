"""The admin console in Debian's Chromium against the whole running system (as test_browser.py,
whose browser fixtures and helpers these share): an admin is refused until they set up an
authenticator app and sign in with it, then finds a user by their email and signs one of their
sessions out through the confirmation page, and that browser is signed out; then replays a dead
letter (an event put straight into notification-service's dead-letter queue), whose email then
arrives; someone without the role gets the 403 page. axe-core on every page, wide, at a phone's
width (375 px, no sideways scrolling) and in French."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import aio_pika
import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from test_browser import (  # noqa: F401 - the browser fixtures, used by name
    FIREFOX_ON_WINDOWS,
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
    wait_for_mail,
    with_auth_settings,
)

from gatehouse_contracts.envelope import new_event
from gatehouse_contracts.events import PasswordChanged
from gatehouse_platform.outbox import event_message
from harness import ADMIN_EMAIL, ADMIN_PASSWORD, System

pytestmark = pytest.mark.timeout(600)  # one long journey, and the system start before it


@pytest.fixture(scope="module")
def system(whole_system: System) -> System:
    return with_auth_settings(whole_system, {})


def make_admin(system: System, email: str) -> None:
    """The harness's first admin grants the role (its own address, `….test`, is one auth's events
    refuse, so it cannot set up an authenticator app itself)."""
    with httpx.Client(base_url=system.gateway, timeout=10) as api:
        signed_in = api.post("/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        assert signed_in.status_code == 200, signed_in.text
        bearer = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
        [user] = api.get("/auth/admin/users", params={"q": email}, headers=bearer).json()["items"]
        granted = api.put(f"/auth/admin/users/{user['id']}/roles", json={"roles": ["admin"]}, headers=bearer)
        assert granted.status_code == 200, granted.text


def dead_letter_for(system: System, email: str) -> None:
    """An event for `email` put straight into notification-service's dead-letter queue, as if its
    handling had failed for good (in a thread: Playwright's sync driver holds this one's loop)."""
    event = new_event(
        PasswordChanged(user_id=uuid.uuid4(), email=email, method="change", changed_at=datetime.now(UTC)),
        source="/auth-service",
    )

    async def publish() -> None:
        connection = await aio_pika.connect(system.env["NOTIFICATION_AMQP_URL"])
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            await channel.default_exchange.publish(
                event_message(event), routing_key="notification-service.dlq"
            )

    with ThreadPoolExecutor(1) as worker:
        worker.submit(asyncio.run, publish()).result(timeout=30)


def fits_the_width(tab: Page) -> None:
    assert tab.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), tab.url


def test_an_admin_with_a_second_factor_finds_a_user_and_signs_out_their_session(
    browser: Browser,  # noqa: F811 - the imported fixture
    page: Page,  # noqa: F811 - the imported fixture
    system: System,
) -> None:
    # Someone signs up and signs in with another browser; the console is not for them.
    email = new_email()
    sign_up(page, system, email)
    other = browser.new_context(user_agent=FIREFOX_ON_WINDOWS, viewport={"width": 1100, "height": 820})
    try:
        theirs = other.new_page()
        sign_in(theirs, system, email)
        theirs.goto(f"{system.gateway}/admin")
        expect(theirs.get_by_role("heading", level=1)).to_have_text("Administrators only")
        axe_check(theirs)

        # The admin signed in with a password alone: first a second factor, then a sign-in with it.
        admin_email = new_email()
        sign_up(page, system, admin_email)
        make_admin(system, admin_email)
        sign_in(page, system, admin_email)
        page.goto(f"{system.gateway}/admin")
        expect(page.get_by_role("heading", level=1)).to_have_text("Set up a second factor first")
        axe_check(page)
        app, _codes = set_up_the_authenticator_app(page, system)
        page.goto(f"{system.gateway}/admin/users")
        expect(page.get_by_role("heading", level=1)).to_have_text("Sign in again with your second factor")
        axe_check(page)
        shot(page, "admin-sign-in-again")
        page.get_by_role("main").get_by_role("button", name="Sign out").click()
        page.get_by_label("Email or username").fill(admin_email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in", exact=True).click()
        page.get_by_label("Code from the app").fill(next_code(app))
        page.get_by_role("button", name="Continue").click()
        expect(page).to_have_url(f"{system.gateway}/account")

        # Find the person, open their page, sign their Firefox session out.
        page.get_by_role("link", name="Admin", exact=True).click()
        expect(page).to_have_url(f"{system.gateway}/admin/users")
        page.get_by_label("Find a user").fill(email.split("@")[0])
        page.get_by_role("button", name="Search").click()
        axe_check(page)
        shot(page, "admin-users")
        page.get_by_role("link", name=email).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(email)
        sessions = page.locator("section", has=page.get_by_role("heading", name="Sessions"))
        expect(sessions.get_by_text("Firefox on Windows")).to_be_visible()
        axe_check(page)
        shot(page, "admin-user")
        sessions.locator("li", has_text="Firefox on Windows").get_by_role(
            "button", name="Sign out this session"
        ).click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Please confirm")
        expect(page.get_by_role("main")).to_contain_text(
            f"Sign out the session of {email} on Firefox on Windows"
        )
        axe_check(page)
        shot(page, "admin-confirm")
        page.get_by_role("button", name="Yes, do it").click()
        expect(page.get_by_role("status")).to_have_text("The session is signed out.")
        expect(sessions.get_by_text("Firefox on Windows")).to_have_count(0)
        trail = page.locator("section", has=page.get_by_role("heading", name="Audit trail"))
        expect(trail.locator("li").first).to_contain_text("Signed out")
        expect(
            trail.locator("li").first.get_by_role("link", name=re.compile("^administrator "))
        ).to_be_visible()
        axe_check(page)

        # That browser's next page: signed out.
        deadline = time.monotonic() + 20
        while True:
            theirs.goto(f"{system.gateway}/account")
            if "/login" in theirs.url or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        expect(theirs).to_have_url(re.compile(r"/login\?return_to=%2Faccount$"))

        # A dead letter: counted, replayed after the confirmation, and its email then goes out.
        lost = new_email()
        dead_letter_for(system, lost)
        page.get_by_role("link", name="Email", exact=True).click()
        dead = page.locator("section", has=page.get_by_role("heading", name="Dead letters"))
        expect(dead).to_contain_text("waiting in the dead-letter queue: 1.")
        axe_check(page)
        shot(page, "admin-email")
        dead.get_by_role("button", name="Replay the dead letters").click()
        expect(page.get_by_role("main")).to_contain_text("Put the 1 dead letters back in the queue?")
        axe_check(page)
        page.get_by_role("button", name="Yes, do it").click()
        expect(page.get_by_role("status")).to_have_text("1 dead letters were put back in the queue.")
        assert "password was changed" in str(wait_for_mail(system, lost, "password was changed")["Subject"])
        page.get_by_label("Recipient's address").fill(lost)
        page.get_by_role("button", name="Search").click()
        deliveries = page.locator("section", has=page.get_by_role("heading", name="Deliveries"))
        expect(deliveries.locator(".badge")).to_have_text("sent")
        deliveries.get_by_role("link", name=re.compile("password was changed")).click()
        expect(page.get_by_role("main")).to_contain_text(lost)
        axe_check(page)
        shot(page, "admin-delivery")
        delivery_url = page.url
        page.goto(f"{system.gateway}/admin/users?q={email}")
        page.get_by_role("link", name=email).click()

        # The console at a phone's width, and in French.
        user_url = page.url
        page.set_viewport_size({"width": 375, "height": 800})
        for path, name in (
            (f"/admin/users?q={email}", "admin-users-narrow"),
            (user_url, "admin-user-narrow"),
            ("/admin/email", "admin-email-narrow"),
            (delivery_url, "admin-delivery-narrow"),
        ):
            page.goto(path if path.startswith("http") else f"{system.gateway}{path}")
            fits_the_width(page)
            axe_check(page)
            shot(page, name)
        french = browser.new_context(locale="fr-FR", storage_state=page.context.storage_state())
        try:
            tab = french.new_page()
            tab.goto(user_url)
            expect(tab.get_by_role("heading", name="Piste d’audit")).to_be_visible()
            axe_check(tab)
            shot(tab, "admin-user-fr")
            tab.goto(f"{system.gateway}/admin/email")
            expect(tab.get_by_role("heading", name="Lettres mortes")).to_be_visible()
            axe_check(tab)
        finally:
            french.close()
    finally:
        other.close()
