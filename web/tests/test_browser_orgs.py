"""Organizations in Debian's Chromium against the whole running system (as test_browser.py, whose
browser fixtures and helpers these share): create an org, invite an address that has no account
yet, the invitee signs up, opens the emailed link signed out, signs in and accepts, then acts in
the org; removed by the owner, the invitee's session acting in it is refused at once. axe-core on
each page."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import Browser, Page, expect
from test_browser import (  # noqa: F401 - the browser fixtures, used by name
    CHROMIUM_ARGS,
    axe_check,
    browser,
    context,
    new_email,
    page,
    playwright,
    shot,
    sign_in,
    sign_up,
    wait_for_mail,
    with_auth_settings,
)

from harness import System, link_in

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def system(whole_system: System) -> System:
    return with_auth_settings(whole_system, {})


def confirmed_account(page: Page, system: System, email: str) -> None:  # noqa: F811 - a parameter
    sign_up(page, system, email)
    page.goto(
        link_in(
            wait_for_mail(system, email, "confirm your email"), r"https?://\S+/verify-email\?token=[\w-]+"
        )
    )
    page.get_by_role("button", name="Confirm my email address").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your email address is confirmed")


def test_create_an_org_invite_someone_who_accepts_from_the_email_and_acts_in_it(
    browser: Browser,  # noqa: F811 - the imported fixture
    page: Page,  # noqa: F811 - the imported fixture
    system: System,
) -> None:
    owner, invitee = new_email(), new_email()
    confirmed_account(page, system, owner)
    sign_in(page, system, owner)
    page.get_by_role("navigation", name="Account").get_by_role("link", name="Organizations").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Organizations")
    axe_check(page)
    slug = f"acme-{uuid.uuid4().hex[:8]}"
    page.get_by_label("Short name").fill("Not A Slug")
    page.get_by_label("Name", exact=True).fill("Acme Ltd")
    page.get_by_role("button", name="Create the organization").click()
    expect(page.locator("#f-slug-error")).to_contain_text("lowercase letters")
    axe_check(page)
    page.get_by_label("Short name").fill(slug)
    page.get_by_role("button", name="Create the organization").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Acme Ltd")
    expect(page.get_by_role("status")).to_have_text("Your organization is ready. Invite people to it below.")
    org_url = page.url.split("?")[0]

    page.get_by_label("Email address to invite").fill(invitee)
    page.get_by_role("button", name="Send the invitation").click()
    expect(page.get_by_role("status")).to_have_text("The invitation is on its way.")
    expect(page.get_by_role("button", name=f"Withdraw the invitation to {invitee}")).to_be_visible()
    axe_check(page)
    shot(page, "org")

    # The invitee has no account yet: they create one, then open the emailed link signed out.
    other = browser.new_context()  # a second person, in a browser of their own
    their = other.new_page()
    try:
        confirmed_account(their, system, invitee)
        message = wait_for_mail(system, invitee, "invited you to join Acme Ltd")
        link = link_in(message, r"https?://\S+/invitations/accept\?token=[\w%-]+")
        their.goto(link)
        expect(their.get_by_role("heading", level=1)).to_have_text("Join an organization")
        axe_check(their)
        shot(their, "invitation-accept-signed-out")
        their.get_by_role("link", name="Sign in to accept").click()
        their.get_by_label("Email or username").fill(invitee)
        their.get_by_label("Password").fill("a browser passphrase 123")
        their.get_by_role("button", name="Sign in", exact=True).click()
        expect(their).to_have_url(link)
        their.get_by_role("button", name="Accept the invitation").click()
        expect(their.get_by_role("heading", level=1)).to_have_text("Acme Ltd")
        expect(their.get_by_role("status")).to_have_text(
            "Welcome: you are now a member of this organization."
        )
        axe_check(their)

        their.get_by_role("button", name="Act in Acme Ltd").click()
        expect(their.get_by_role("status")).to_have_text("You are now acting in this organization.")
        expect(their.get_by_text("acting now")).to_be_visible()
        shot(their, "org-acting")
        their.get_by_role("link", name="Organizations").click()
        expect(their.get_by_role("button", name="Act as myself")).to_be_visible()
        axe_check(their)
        shot(their, "orgs-switcher")

        # The link works once.
        their.goto(link)
        their.get_by_role("button", name="Accept the invitation").click()
        expect(their.get_by_role("alert")).to_contain_text("no longer works")

        # The owner removes them: the session acting in the org is refused at once.
        page.goto(org_url)
        page.get_by_role("button", name=re.compile(r"^Remove ")).click()
        expect(page.get_by_role("status")).to_have_text(
            "The member is removed: they can no longer act in the organization."
        )
        removed = wait_for_mail(system, invitee, "You were removed from Acme Ltd")
        assert "removed you" in str(removed)
        their.goto(f"{system.gateway}/orgs")
        expect(their).to_have_url(re.compile(r"/login"))
    finally:
        other.close()
