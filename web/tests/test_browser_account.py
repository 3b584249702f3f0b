"""The account's own journeys in Debian's Chromium against the whole running system (as
test_browser.py, whose browser fixtures and helpers these share): change the email → the email to
the new address → confirm it; link GitHub through the OAuth emulator's consent page → sign in with
it → unlink it, and the last way to sign in refused; "Download my data" → one JSON file with
auth's and billing's exports; a breached password refused at registration; deactivate after
"confirm it's you"; every
signed-in page at a phone's width (375 px) without sideways scrolling. axe-core on each page."""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from test_browser import (  # noqa: F401 - the browser fixtures, used by name
    PASSWORD,
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

# A sign-in counts as recent this long: the deactivation waits it out, so "confirm it's you" shows.
RECENT_SECONDS = 15
# Sign-in attempts per address and minute at auth-service (the other journeys here make a dozen).
PER_ADDRESS = 30


@pytest.fixture(scope="module")
def system(whole_system: System) -> System:
    settings = {
        "AUTH_RECENT_AUTH_SECONDS": str(RECENT_SECONDS),
        "AUTH_CREDENTIAL_IP_LIMIT": f"{PER_ADDRESS}/minute",
    }
    return with_auth_settings(whole_system, settings)


def provider_user(system: System, provider: str, email: str, name: str) -> str:
    """A person at the OAuth emulator; answers the label its consent page shows."""
    key = f"{provider[0]}{uuid.uuid4().hex[:10]}"
    created = httpx.post(
        f"{system.urls['oauth']}/_emulator/users",
        json={"provider": provider, "user": {"key": key, "email": email, "name": name}},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    return key if provider == "github" else name


def test_change_the_email_then_confirm_it_from_the_new_address(page: Page, system: System) -> None:  # noqa: F811 - the imported fixture
    old, new = new_email(), new_email()
    sign_up(page, system, old)
    sign_in(page, system, old)
    form = page.locator("form[action='/account/email']")
    form.get_by_label("New email address").fill("taken-" + old)  # first, an address already in use
    form.get_by_label("Your password, to confirm").fill("not my password")
    form.get_by_role("button", name="Change the email address").click()
    expect(page.locator("#f-password-error")).to_have_text("Your current password is not right.")
    axe_check(page)

    form.get_by_label("New email address").fill(new)
    form.get_by_label("Your password, to confirm").fill(PASSWORD)
    form.get_by_role("button", name="Change the email address").click()
    expect(page.get_by_role("status")).to_contain_text(
        f"Your email address is now {new}. We have sent a link"
    )
    expect(page.locator(".facts .badge")).to_have_text("not confirmed yet")
    axe_check(page)
    shot(page, "account-email-changed")

    link = link_in(
        wait_for_mail(system, new, "confirm your email"), r"https?://\S+/verify-email\?token=[\w-]+"
    )
    page.goto(link)
    page.get_by_role("button", name="Confirm my email address").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your email address is confirmed")
    page.goto(f"{system.gateway}/account")
    expect(page.locator(".facts dd").first).to_contain_text(new)
    expect(page.locator(".facts .badge")).to_have_text("confirmed")

    page.get_by_role("button", name="Sign out").click()
    sign_in(page, system, new)  # the new address signs in; the old one no longer names the account
    page.get_by_role("button", name="Sign out").click()
    page.goto(f"{system.gateway}/login")
    page.get_by_label("Email or username").fill(old)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text("That email, username or password is not right.")


def test_link_github_through_the_consent_page_sign_in_with_it_then_unlink_it(
    page: Page,  # noqa: F811 - the imported fixture
    system: System,
) -> None:
    email = new_email()
    label = provider_user(system, "github", f"gh-{email}", "Linus")
    sign_up(page, system, email)
    sign_in(page, system, email)
    providers = page.locator("section", has=page.get_by_role("heading", name="Sign in with Google or GitHub"))
    expect(providers.get_by_text("not linked")).to_have_count(2)
    providers.get_by_role("link", name="Link GitHub").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in with github", ignore_case=True)
    page.get_by_role("button", name=f"Approve as {label}").click()
    expect(page).to_have_url(f"{system.gateway}/account?linked=github")
    expect(page.get_by_role("status")).to_have_text("GitHub is linked: you can sign in with it.")
    expect(providers.get_by_text(f"gh-{email}")).to_be_visible()
    axe_check(page)
    shot(page, "account-linked")
    assert not [c for c in page.context.cookies() if c["name"].startswith("gatehouse_oauth")]  # state spent

    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("link", name="Continue with GitHub").click()
    page.get_by_role("button", name=f"Approve as {label}").click()
    expect(page).to_have_url(f"{system.gateway}/account")
    expect(page.locator(".facts dd").first).to_contain_text(email)  # the same account

    providers.get_by_role("button", name="Unlink GitHub").click()
    expect(page.get_by_role("status")).to_have_text("GitHub is unlinked: it no longer signs you in.")
    expect(providers.get_by_role("link", name="Link GitHub")).to_be_visible()
    axe_check(page)


def test_unlinking_the_only_way_to_sign_in_is_refused(page: Page, system: System) -> None:  # noqa: F811 - the imported fixture
    email = new_email()
    label = provider_user(system, "google", email, "Grace Hopper")
    page.goto(f"{system.gateway}/login")
    page.get_by_role("link", name="Continue with Google").click()
    page.get_by_role("button", name=f"Approve as {label}").click()
    expect(page).to_have_url(f"{system.gateway}/account")
    expect(
        page.locator("form[action='/account/email']").get_by_label("Your password, to confirm")
    ).to_have_count(0)
    expect(page.get_by_role("link", name="Set a password by email")).to_be_visible()
    page.get_by_role("button", name="Unlink Google").click()
    expect(page.get_by_role("alert")).to_contain_text(
        "Google is the only way you can sign in, so it stays linked."
    )
    expect(page.get_by_role("button", name="Unlink Google")).to_be_visible()
    axe_check(page)
    shot(page, "account-unlink-refused")


def test_a_breached_password_is_refused_then_download_my_data_gives_one_json_file(
    page: Page,  # noqa: F811 - the imported fixture
    system: System,
) -> None:
    email = new_email()
    # The Pwned Passwords emulator (in the Procfile) lists this one by default: refused by its field.
    page.goto(f"{system.gateway}/register")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Username").fill(f"u{uuid.uuid4().hex[:10]}")
    page.get_by_label("Password").fill("Password1234!")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("#f-password-error")).to_contain_text("This password has appeared in a data breach")
    axe_check(page)
    shot(page, "register-breached-password")

    sign_up(page, system, email)
    sign_in(page, system, email)
    expect(page.get_by_role("heading", name="Your data")).to_be_visible()
    axe_check(page)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download my data").click()
    assert re.fullmatch(r"gatehouse-my-data-\d{4}-\d{2}-\d{2}\.json", download.value.suggested_filename)
    text = Path(download.value.path()).read_text(encoding="utf-8")
    data = json.loads(text)
    assert data["format"] == "gatehouse-data-export/1"
    account = data["account"]
    assert account["service"] == "auth-service"
    assert account["user"]["email"] == email
    assert account["has_password"] is True
    assert any(s["revoked_at"] is None for s in account["sessions"])
    assert "sign_in.succeeded" in [e["type"] for e in account["audit_events"]]
    assert account["second_factors"] == {"authenticator_app": None, "recovery_codes_left": 0, "passkeys": []}
    billing = data["billing"]
    assert billing["service"] == "billing-service"
    assert billing["user_id"] == account["user"]["id"]
    assert billing["subscriptions"] == billing["payments"] == billing["invoices"] == []
    assert billing["payment_method"] is None
    assert PASSWORD not in text and "password_hash" not in text and "refresh_token" not in text
    expect(page).to_have_url(f"{system.gateway}/account")  # the page stays; the file was saved


def test_deactivate_after_confirming_its_you_then_signed_out(page: Page, system: System) -> None:  # noqa: F811 - the imported fixture
    email = new_email()
    sign_up(page, system, email)
    sign_in(page, system, email)
    page.get_by_role("link", name="Deactivate my account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Deactivate your account")
    axe_check(page)
    shot(page, "deactivate")
    page.get_by_label("Your password, to confirm").fill("not my password")
    page.get_by_role("button", name="Deactivate my account").click()
    expect(page.locator("#f-password-error")).to_have_text("Your password is not right.")

    time.sleep(RECENT_SECONDS + 1.5)  # the sign-in is no longer recent
    page.get_by_label("Your password, to confirm").fill(PASSWORD)
    page.get_by_role("button", name="Deactivate my account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm it's you")
    axe_check(page)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Confirm with my password").click()
    expect(page).to_have_url(f"{system.gateway}/account/deactivate?confirmed")
    expect(page.get_by_role("status")).to_have_text("Thank you. Now you can do it.")
    page.get_by_label("Your password, to confirm").fill(PASSWORD)
    page.get_by_role("button", name="Deactivate my account").click()

    expect(page).to_have_url(f"{system.gateway}/account/deactivated")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your account is deactivated")
    axe_check(page)
    shot(page, "deactivated")
    assert not [c for c in page.context.cookies() if c["name"] in ("gh_session", "gh_refresh")]
    page.goto(f"{system.gateway}/account")
    expect(page).to_have_url(re.compile(r"/login\?return_to=%2Faccount$"))
    page.get_by_label("Email or username").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text("This account is deactivated.")


def test_delete_the_account_then_cancel_it_by_signing_in(page: Page, system: System) -> None:  # noqa: F811 - the imported fixture
    email = new_email()
    sign_up(page, system, email)
    sign_in(page, system, email)
    page.get_by_role("link", name="Delete my account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Delete your account")
    axe_check(page)
    shot(page, "delete-account")
    page.get_by_label("Type your email address to confirm").fill("someone-else@example.com")
    page.get_by_role("button", name="Delete my account").click()
    expect(page.locator("#f-confirm_email-error")).to_have_text("That is not your email address.")
    page.get_by_label("Type your email address to confirm").fill(email.upper())  # any case
    page.get_by_role("button", name="Delete my account").click()

    expect(page).to_have_url(re.compile(r"/account/deleted\?until="))
    expect(page.get_by_role("heading", level=1)).to_have_text("Your account is scheduled for deletion")
    axe_check(page)
    shot(page, "account-deleted")
    assert not [c for c in page.context.cookies() if c["name"] in ("gh_session", "gh_refresh")]
    goodbye = wait_for_mail(system, email, "will be deleted")
    assert "cancel the deletion" in str(goodbye.get_body(("plain",)).get_content())  # type: ignore[union-attr]

    # Signing in with the password offers to keep the account.
    page.goto(f"{system.gateway}/login")
    page.get_by_label("Email or username").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your account is scheduled for deletion")
    axe_check(page)
    shot(page, "cancel-deletion")
    page.get_by_label("Your password, to confirm").fill("not my password")
    page.get_by_role("button", name="Cancel the deletion and sign in").click()
    expect(page.locator("#f-password-error")).to_have_text("Your password is not right.")
    page.get_by_label("Your password, to confirm").fill(PASSWORD)
    page.get_by_role("button", name="Cancel the deletion and sign in").click()
    expect(page).to_have_url(f"{system.gateway}/account")
    expect(page.get_by_role("heading", name="Delete the account")).to_be_visible()


SIGNED_IN_PAGES = [
    "/account",
    "/account/sessions",
    "/account/security",
    "/account/deactivate",
    "/account/delete",
]


def test_every_signed_in_page_fits_a_phone(browser: Browser, system: System) -> None:  # noqa: F811 - the imported fixture
    phone = browser.new_context(locale="en-US", viewport={"width": 375, "height": 812}, is_mobile=True)
    try:
        page = phone.new_page()
        email = new_email()
        sign_up(page, system, email)
        sign_in(page, system, email)
        for path in SIGNED_IN_PAGES:
            page.goto(f"{system.gateway}{path}")
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at 375px"
            axe_check(page)
            shot(page, "phone" + path.replace("/", "-"))
        page.goto(f"{system.gateway}/account/security")
        page.get_by_role("button", name="Set up an authenticator app").click()
        # the click posts a form: measure the page it leads to, not the one it leaves mid-navigation
        expect(page.get_by_role("heading", level=1)).to_have_text("Set up an authenticator app")
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"the app's setup scrolls sideways by {overflow}px at 375px"
        shot(page, "phone-account-security-setup")
    finally:
        phone.close()


def test_two_people_behind_the_web_front_are_limited_one_by_one(system: System) -> None:
    """Through the gateway to the web's sign-in form, which calls the API through the gateway
    again: each hop trusts the one before (127.0.0.1, as under `make run`), so auth-service counts
    the person the first hop named, not the web front's own address."""

    def attempts(person: str, times: int) -> list[str]:
        seen = []
        with httpx.Client(base_url=system.gateway, headers={"X-Forwarded-For": person}, timeout=20) as client:
            for _ in range(times):
                form = client.get("/login")
                token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', form.text)
                assert token, form.text
                answer = client.post(
                    "/login",
                    data={"csrf_token": token.group(1), "login": new_email(), "password": "not the one"},
                )
                seen.append("wait" if "Too many attempts" in answer.text else "wrong password")
        return seen

    first, second = f"198.51.100.{uuid.uuid4().int % 200 + 1}", f"203.0.113.{uuid.uuid4().int % 200 + 1}"
    assert attempts(first, PER_ADDRESS + 1) == ["wrong password"] * PER_ADDRESS + ["wait"]
    assert attempts(second, 1) == ["wrong password"]  # someone else, behind the same web front
