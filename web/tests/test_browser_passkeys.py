"""Passkeys in Debian's Chromium with its virtual authenticator (the DevTools protocol's WebAuthn
domain: CTAP2, built in, resident keys, user verification), against the whole running system.
Pages are browsed at http://localhost:<gateway port>: browsers refuse an IP address as RP ID, and
the harness sets auth's RP ID and origins to match. Here a sign-in counts as recent for
AUTH_RECENT_AUTH_SECONDS=3, so the journey can wait out the window and meet "confirm it's you"."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest
import test_browser
from playwright.sync_api import Browser, CDPSession, Page, expect
from test_browser import PASSWORD, axe_check, new_email, shot, sign_in, sign_up, with_auth_settings

from harness import System

# the browser and its pages as test_browser.py makes them, on this module's system (pytest finds
# fixtures by their names here)
playwright, browser = test_browser.playwright, test_browser.browser
context, page = test_browser.context, test_browser.page

pytestmark = pytest.mark.timeout(300)

RECENT_AUTH_SECONDS = 3


@pytest.fixture(scope="module")
def system(whole_system: System) -> System:
    running = with_auth_settings(whole_system, {"AUTH_RECENT_AUTH_SECONDS": str(RECENT_AUTH_SECONDS)})
    # the same system, addressed by name: passkeys are bound to the RP ID "localhost"
    local = running.gateway.replace("http://127.0.0.1:", "http://localhost:")
    return dataclasses.replace(running, urls={**running.urls, "gateway": local})


def virtual_authenticator(page: Page) -> tuple[CDPSession, str]:
    """A platform authenticator with resident keys and user verification (a fingerprint that
    always matches), presence simulated: navigator.credentials answers without a prompt."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, str(added["authenticatorId"])


def credentials(cdp: CDPSession, authenticator: str) -> list[dict[str, Any]]:
    return list(cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"])


def sign_out(page: Page, system: System) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{system.gateway}/login?signed_out")


def test_add_a_passkey_then_sign_in_with_it_and_no_password_rename_it_and_remove_it(
    page: Page, system: System
) -> None:
    cdp, authenticator = virtual_authenticator(page)
    email = new_email()
    sign_up(page, system, email)
    sign_in(page, system, email)

    page.goto(f"{system.gateway}/account/security")
    expect(page.get_by_text("You have no passkey yet.")).to_be_visible()
    expect(page.get_by_text("Passkeys need JavaScript", exact=False)).to_be_hidden()
    axe_check(page)
    page.get_by_role("button", name="Add a passkey").click()  # no name: the server says so
    expect(page.locator("#f-passkey_name-error")).to_have_text(
        "Name your passkey, so you can tell it from others later."
    )
    axe_check(page)
    page.get_by_label("Name of the new passkey").fill("Laptop")
    page.get_by_role("button", name="Add a passkey").click()
    expect(page.get_by_role("status")).to_have_text("Your passkey “Laptop” is added.")
    passkey = page.locator(".passkeys > li")
    expect(passkey).to_have_count(1)
    expect(passkey.locator(".device")).to_contain_text("Laptop")
    expect(passkey.locator(".badge")).to_have_text("this device only")
    expect(passkey.locator("dd").nth(1)).to_have_text("Not yet")
    axe_check(page)
    shot(page, "security-passkeys")
    [stored] = credentials(cdp, authenticator)
    assert stored["isResidentCredential"] is True and stored["rpId"] == "localhost"

    sign_out(page, system)
    expect(page.get_by_role("button", name="Sign in with a passkey")).to_be_visible()
    axe_check(page)
    shot(page, "login-passkey")
    page.get_by_role("button", name="Sign in with a passkey").click()  # no name, no password
    expect(page).to_have_url(f"{system.gateway}/account")
    expect(page.get_by_text(email)).to_be_visible()
    axe_check(page)
    assert credentials(cdp, authenticator)[0]["signCount"] >= 1

    page.goto(f"{system.gateway}/account/security")
    expect(passkey.locator("dd").nth(1)).not_to_have_text("Not yet")
    page.get_by_label("New name for “Laptop”").fill("")
    page.get_by_role("button", name="Rename").click()
    expect(page.locator(".passkeys .error")).to_have_text("Enter a name for the passkey.")
    axe_check(page)
    page.get_by_label("New name for “Laptop”").fill("Work laptop")
    page.get_by_role("button", name="Rename").click()
    expect(page.get_by_role("status")).to_have_text("The passkey is renamed “Work laptop”.")
    expect(passkey.locator(".device")).to_contain_text("Work laptop")
    page.set_viewport_size({"width": 375, "height": 800})
    axe_check(page)
    shot(page, "security-passkeys-phone")
    page.set_viewport_size({"width": 1100, "height": 820})

    # the passkey is the account's second step too: after the password, it finishes the sign-in
    sign_out(page, system)
    page.get_by_label("Email or username").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(f"{system.gateway}/login/mfa")
    expect(page.get_by_text("Use the passkey on this account to finish signing in.")).to_be_visible()
    axe_check(page)
    shot(page, "login-mfa-passkey")
    page.get_by_role("button", name="Use a passkey").click()
    expect(page).to_have_url(f"{system.gateway}/account")

    time.sleep(RECENT_AUTH_SECONDS + 1)  # the sign-in is no longer recent: removing asks first
    page.goto(f"{system.gateway}/account/security")
    page.get_by_role("button", name="Remove the passkey “Work laptop”").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm it's you")
    axe_check(page)
    shot(page, "reauthenticate-passkey")
    page.get_by_role("button", name="Confirm with a passkey").click()
    expect(page.get_by_role("status")).to_have_text("The passkey is removed.")
    expect(page.get_by_text("You have no passkey yet.")).to_be_visible()
    axe_check(page)

    # still on the authenticator, but no longer on the account: it signs nobody in
    sign_out(page, system)
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page.get_by_role("alert")).to_contain_text("That passkey did not work here.")
    expect(page).to_have_url(f"{system.gateway}/login/passkey")
    axe_check(page)


def test_without_javascript_the_passkey_buttons_are_hidden_and_the_page_says_why(
    browser: Browser, system: System
) -> None:
    context = browser.new_context(java_script_enabled=False, locale="fr-FR")
    try:
        page = context.new_page()
        page.goto(f"{system.gateway}/login")
        expect(page.get_by_role("button", name="Se connecter avec une clé d’accès")).to_be_hidden()
        expect(page.get_by_text("Les clés d’accès ont besoin de JavaScript", exact=False)).to_be_visible()
        expect(page.get_by_role("button", name="Se connecter", exact=True)).to_be_visible()
        shot(page, "login-passkey-no-javascript")
    finally:
        context.close()
