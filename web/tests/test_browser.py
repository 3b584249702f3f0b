"""Journeys in Debian's Chromium (Playwright, headless) against the whole running system, started
by tests-e2e's harness: every page through the gateway, emails from the SMTP catcher's Maildir.
axe-core checks each page at WCAG 2.1 AA; a failed test leaves a screenshot of its page in
var/web-tests/ (see the hook in conftest.py)."""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from gatehouse_emulators.smtp import read_maildir
from harness import System, link_in

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "web" / "tests" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "var" / "web-tests"
PASSWORD = "a browser passphrase 123"
NEW_PASSWORD = "another browser passphrase 456"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FIREFOX_ON_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def with_auth_settings(system: System, settings: Mapping[str, str]) -> System:
    """`system` with auth-service running with `settings` over the harness's (none: its own), for
    a browser module that needs other limits or modes: auth-service alone restarts, and only when
    they change. Other settings get Redis keys of their own, so that the throttling counters and
    bot-check failures earlier modules left behind do not count against this one."""
    if settings:
        keys = hashlib.sha256(repr(sorted(settings.items())).encode()).hexdigest()[:12]
        own = {"AUTH_REDIS_KEY_PREFIX": f"{system.env['AUTH_REDIS_KEY_PREFIX']}:{keys}"}
        system.configure("auth", {**settings, **own})
    else:
        system.configure("auth", {})
    return system


@pytest.fixture(scope="module")
def system(whole_system: System) -> System:
    """The worker's system, auth-service with the harness's settings."""
    return with_auth_settings(whole_system, {})


@pytest.fixture(scope="module")
def playwright(system: System) -> Iterator[Playwright]:
    """After the system (whose set-up runs asyncio.run: Playwright's sync driver keeps a loop
    running while it is open)."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(
        executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
    )
    yield chromium
    chromium.close()


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


def new_email() -> str:
    return f"web-{uuid.uuid4().hex[:12]}@example.com"


def wait_for_mail(system: System, address: str, subject: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in read_maildir(system.maildir, address):
            if subject.lower() in str(message["Subject"]).lower():
                return message
        time.sleep(0.2)
    raise AssertionError(f"no email to {address} about {subject!r}")


def shot(page: Page, name: str) -> None:
    """A picture of the page as a person sees it (var/web-tests/pages/), to look at after a run."""
    (SCREENSHOTS / "pages").mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "pages" / f"{name}.png"), full_page=True)


def axe_check(page: Page) -> None:
    """No WCAG 2.1 AA violation on the page as it is now. axe is evaluated through the DevTools
    protocol (the page's CSP, rightly, refuses injected inline script)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")
    result = page.evaluate(
        "async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags}})).violations"
        ".map(v => `${v.id}: ${v.help} (${v.nodes.map(n => n.target.join(' ')).join(', ')})`)",
        WCAG_AA,
    )
    assert result == [], f"axe on {page.url}: {result}"


def sign_up(page: Page, system: System, email: str) -> None:
    page.goto(f"{system.gateway}/register")
    axe_check(page)
    shot(page, "register")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Username").fill(f"u{uuid.uuid4().hex[:10]}")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")
    axe_check(page)


def sign_in(page: Page, system: System, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{system.gateway}/login")
    page.get_by_label("Email or username").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(f"{system.gateway}/account")


def test_sign_up_verify_by_the_email_then_sign_in_to_the_account(page: Page, system: System) -> None:
    email = new_email()
    sign_up(page, system, email)

    message = wait_for_mail(system, email, "confirm your email")
    link = link_in(message, r"https?://\S+/verify-email\?token=[\w-]+")
    assert link.startswith(f"{system.gateway}/verify-email?token=")
    # The link sent before this page existed lands on it too, and neither GET spends the token.
    token = link.rsplit("=", 1)[1]
    page.goto(f"{system.gateway}/auth/verify?token={token}")
    expect(page).to_have_url(link)
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your email address")
    axe_check(page)
    shot(page, "verify-email")
    page.get_by_role("button", name="Confirm my email address").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your email address is confirmed")
    axe_check(page)

    sign_in(page, system, email)
    expect(page.locator(".facts").get_by_text(email)).to_be_visible()
    expect(page.locator(".facts .badge")).to_have_text("confirmed")
    axe_check(page)
    shot(page, "account")
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["gh_refresh"]["path"] == "/session" and cookies["gh_refresh"]["httpOnly"]
    assert cookies["gh_session"]["httpOnly"] and cookies["gh_session"]["sameSite"] == "Lax"
    assert page.evaluate("document.cookie") == ""  # nothing of the session is readable by scripts

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{system.gateway}/login?signed_out")
    expect(page.get_by_role("status")).to_have_text("You have signed out.")
    page.goto(f"{system.gateway}/account")
    expect(page).to_have_url(re.compile(r"/login\?return_to=%2Faccount$"))


def test_forgot_password_then_reset_by_the_email_and_sign_in_with_the_new_one(
    page: Page, system: System
) -> None:
    email = new_email()
    sign_up(page, system, email)
    page.goto(f"{system.gateway}/login")
    page.get_by_role("link", name="Forgot your password?").click()
    axe_check(page)
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")

    link = link_in(wait_for_mail(system, email, "reset your"), r"https?://\S+/reset-password\?token=[\w-]+")
    page.goto(link)
    axe_check(page)
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Repeat the new password").fill("not the same at all 789")
    page.get_by_role("button", name="Save the new password").click()
    expect(page.locator("#f-confirm_password-error")).to_have_text("The two passwords are not the same.")
    axe_check(page)
    page.get_by_label("New password", exact=True).fill("short")
    page.get_by_label("Repeat the new password").fill("short")
    page.get_by_role("button", name="Save the new password").click()
    expect(page.locator("#f-new_password-error")).to_be_visible()  # the API's 422, next to its field
    expect(page.get_by_label("New password", exact=True)).to_have_attribute("aria-invalid", "true")
    shot(page, "reset-password-errors")
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Repeat the new password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Save the new password").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your password is changed")

    page.goto(f"{system.gateway}/login")
    page.get_by_label("Email or username").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text("That email, username or password is not right.")
    axe_check(page)
    shot(page, "login-wrong-password")
    sign_in(page, system, email, NEW_PASSWORD)
    page.goto(link)  # the link worked once
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD + "x")
    page.get_by_label("Repeat the new password").fill(NEW_PASSWORD + "x")
    page.get_by_role("button", name="Save the new password").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("This link no longer works")


def test_sign_in_with_an_emailed_code(page: Page, system: System) -> None:
    email = new_email()
    sign_up(page, system, email)
    page.goto(f"{system.gateway}/login")
    page.get_by_role("link", name="Email me a sign-in code").click()
    axe_check(page)
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Email me a code").click()
    expect(page.get_by_label("Code")).to_be_visible()
    axe_check(page)
    shot(page, "login-code")
    code = re.search(
        r"\b(\d{6})\b", str(wait_for_mail(system, email, "code").get_body(("plain",)).get_content())
    )
    assert code
    page.get_by_label("Code").fill("000000" if code.group(1) != "000000" else "111111")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.locator("#f-code-error")).to_have_text("That code is not right, or it has expired.")
    page.get_by_label("Code").fill(code.group(1))
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(f"{system.gateway}/account")


def test_the_session_refreshes_quietly_for_pages_and_forms(page: Page, system: System) -> None:
    email = new_email()
    sign_up(page, system, email)
    sign_in(page, system, email)
    page.context.clear_cookies(name="gh_session")  # as when the access token has expired
    page.goto(f"{system.gateway}/account")
    expect(page).to_have_url(f"{system.gateway}/account")
    expect(page.locator(".facts").get_by_text(email)).to_be_visible()
    # A form sent after expiry goes through the refresh and arrives (307 keeps the POST and its body).
    page.context.clear_cookies(name="gh_session")
    page.get_by_role("button", name="Send the confirmation email again").click()
    expect(page.get_by_role("status")).to_have_text(f"We have sent the email again to {email}.")


def test_pages_without_a_session_and_the_404_pass_axe(page: Page, system: System) -> None:
    for path in ("/login", "/login/code", "/forgot-password", "/reset-password", "/no-such-page"):
        page.goto(f"{system.gateway}{path}")
        axe_check(page)
        shot(page, path.strip("/").replace("/", "-"))
    page.set_viewport_size({"width": 360, "height": 740})  # a phone: nothing overflows sideways
    for path in ("/login", "/register"):
        page.goto(f"{system.gateway}{path}")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), path
        axe_check(page)
    shot(page, "register-phone")


def test_pages_in_french_pass_axe(browser: Browser, system: System) -> None:
    context = browser.new_context(locale="fr-FR")
    page = context.new_page()
    try:
        page.goto(f"{system.gateway}/login")
        expect(page.get_by_role("heading", level=1)).to_have_text("Se connecter")
        assert page.get_attribute("html", "lang") == "fr"
        axe_check(page)
        shot(page, "login-fr")
    finally:
        context.close()


def test_edit_the_profile_and_the_page_follows_the_chosen_language(page: Page, system: System) -> None:
    email = new_email()
    sign_up(page, system, email)
    sign_in(page, system, email)
    page.get_by_label("Display name").fill("Ada Lovelace")
    page.get_by_label("Avatar URL").fill("not a url")
    page.get_by_role("button", name="Save the profile").click()
    expect(page.locator("#f-avatar_url-error")).to_be_visible()  # the API's 422, next to its field
    axe_check(page)
    page.get_by_label("Avatar URL").fill("https://example.com/ada.png")
    page.get_by_label("Time zone").fill("Europe/Paris")
    page.get_by_label("Language").select_option("fr")
    page.get_by_role("button", name="Save the profile").click()
    expect(page.get_by_role("status")).to_have_text("Votre profil est enregistré.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Bonjour, Ada Lovelace")
    assert page.get_attribute("html", "lang") == "fr"
    axe_check(page)
    shot(page, "account-fr")
    page.goto(f"{system.gateway}/account")  # the profile's language wins over the browser's (en-US)
    expect(page.get_by_label("Fuseau horaire")).to_have_value("Europe/Paris")


def test_change_the_password_then_sign_in_with_it(page: Page, system: System) -> None:
    email = new_email()
    sign_up(page, system, email)
    sign_in(page, system, email)
    page.get_by_label("Current password").fill("not my password at all")
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Repeat the new password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change the password").click()
    expect(page.locator("#f-old_password-error")).to_have_text("Your current password is not right.")
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Repeat the new password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change the password").click()
    expect(page.get_by_role("status")).to_have_text(
        "Your password is changed. Your other devices were signed out."
    )
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, system, email, NEW_PASSWORD)


def test_revoke_another_device_which_is_then_signed_out(browser: Browser, page: Page, system: System) -> None:
    email = new_email()
    sign_up(page, system, email)
    other = browser.new_context(user_agent=FIREFOX_ON_WINDOWS)
    try:
        other_page = other.new_page()
        sign_in(other_page, system, email)
        sign_in(page, system, email)
        page.get_by_role("link", name="Devices").click()
        expect(page.locator(".badge", has_text="this device")).to_have_count(1)
        expect(page.get_by_text("Firefox on Windows")).to_be_visible()  # named from its User-Agent
        axe_check(page)
        shot(page, "sessions")
        device = page.locator("li", has_text="Firefox on Windows")
        device.get_by_role("button", name="Sign out this device").click()
        expect(page.get_by_role("status")).to_have_text("That device is signed out.")
        expect(page.get_by_text("Firefox on Windows")).to_have_count(0)

        # The other browser's next page: its session is gone (refused at the edge, refresh refused).
        deadline = time.monotonic() + 20
        while True:
            other_page.goto(f"{system.gateway}/account")
            if "/login" in other_page.url or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        expect(other_page).to_have_url(re.compile(r"/login\?return_to=%2Faccount$"))

        sign_in(other_page, system, email)
        page.get_by_role("button", name="Sign out everywhere").click()
        expect(page).to_have_url(f"{system.gateway}/login?signed_out")
        other_page.goto(f"{system.gateway}/account")
        expect(other_page).to_have_url(re.compile(r"/login\?return_to=%2Faccount$"))
    finally:
        other.close()


def test_a_new_device_is_told_by_email_and_the_security_activity_lists_the_sign_ins(
    browser: Browser, page: Page, system: System
) -> None:
    email = new_email()
    sign_up(page, system, email)
    sign_in(page, system, email)  # the first sign-in: nothing to tell
    other = browser.new_context(user_agent=FIREFOX_ON_WINDOWS)
    try:
        other_page = other.new_page()
        other_page.goto(f"{system.gateway}/login")
        other_page.get_by_label("Email or username").fill(email)
        other_page.get_by_label("Password").fill("not my password at all")
        other_page.get_by_role("button", name="Sign in", exact=True).click()
        expect(other_page.get_by_role("alert")).to_be_visible()
        sign_in(other_page, system, email)
    finally:
        other.close()
    alert = wait_for_mail(system, email, "New sign-in")
    text = alert.get_body(preferencelist=("plain",)).get_content()
    assert FIREFOX_ON_WINDOWS in text and f"{system.gateway}/forgot-password" in text
    sign_in(page, system, email)  # this device again: known, no email
    time.sleep(3)
    alerts = [m for m in read_maildir(system.maildir, email) if "New sign-in" in str(m["Subject"])]
    assert len(alerts) == 1

    page.goto(f"{system.gateway}/account/security")
    page.get_by_role("link", name="See your security activity").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Security activity")
    expect(page.locator("li strong", has_text="Failed sign-in")).to_have_count(1)
    expect(page.locator("li strong", has_text="Signed in")).to_have_count(3)
    expect(page.locator("li", has_text="Firefox on Windows")).to_have_count(2)
    axe_check(page)
    shot(page, "security_activity")


def test_continue_with_google_through_the_emulators_consent_page(page: Page, system: System) -> None:
    key = f"g{uuid.uuid4().hex[:10]}"
    email = f"{key}@example.com"
    created = httpx.post(
        f"{system.urls['oauth']}/_emulator/users",
        json={"provider": "google", "user": {"key": key, "email": email, "name": "Grace Hopper"}},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    page.goto(f"{system.gateway}/login")
    page.get_by_role("link", name="Continue with Google").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in with google", ignore_case=True)
    page.get_by_role("button", name="Approve as Grace Hopper").click()
    expect(page).to_have_url(f"{system.gateway}/account")
    expect(page.locator(".facts").get_by_text(email)).to_be_visible()
    names = {c["name"]: c for c in page.context.cookies()}
    assert "gatehouse_refresh" not in names  # auth's cookie was exchanged for the web's own session
    assert names["gh_refresh"]["path"] == "/session"
    page.context.clear_cookies(name="gh_session")  # and that session refreshes like any other
    page.goto(f"{system.gateway}/account")
    expect(page.locator(".facts").get_by_text(email)).to_be_visible()


def set_up_the_authenticator_app(page: Page, system: System) -> tuple[pyotp.TOTP, list[str]]:
    """From the account page: the security page, the QR code and manual key, a wrong code then the
    right one (computed from the manual key, as an app would), the recovery codes and their file."""
    page.goto(f"{system.gateway}/account")
    page.get_by_role("link", name="Security settings").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Security")
    axe_check(page)
    shot(page, "security")
    page.get_by_role("button", name="Set up an authenticator app").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Set up an authenticator app")
    qr = page.get_by_role("img", name="QR code for your authenticator app")
    expect(qr).to_be_visible()
    assert qr.bounding_box()["width"] >= 150  # type: ignore[index]
    axe_check(page)
    shot(page, "security-setup")
    app = pyotp.TOTP(page.locator("#manual-key").inner_text().strip())
    wrong = "000000" if app.now() != "000000" else "111111"
    page.get_by_label("Code from the app").fill(wrong)
    page.get_by_role("button", name="Turn the app on").click()
    expect(page.locator("#f-code-error")).to_have_text(
        "That code does not match. Check the app's clock and try again."
    )
    expect(qr).to_be_visible()  # still there to scan
    axe_check(page)
    page.get_by_label("Code from the app").fill(app.now())
    page.get_by_role("button", name="Turn the app on").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your authenticator app is on")
    codes = page.locator(".codes code").all_inner_texts()
    assert len(codes) == 10 and all(re.fullmatch(r"[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}", c) for c in codes)
    axe_check(page)
    shot(page, "security-recovery-codes")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download as a text file").click()
    assert download.value.suggested_filename == "recovery-codes.txt"
    saved = Path(download.value.path()).read_text(encoding="utf-8")
    assert all(code in saved.splitlines() for code in codes)
    page.get_by_role("link", name="I have saved them").click()
    expect(page.locator(".badge.ok")).to_have_text("on")
    assert all(code not in page.content() for code in codes)  # shown once
    return app, codes


def next_code(app: pyotp.TOTP) -> str:
    """The code of the next time-step: the one just used to confirm is spent (no replay)."""
    return app.at(time.time() + 30)


def sign_in_with_password_to_the_second_step(page: Page, system: System, email: str) -> None:
    page.goto(f"{system.gateway}/login")
    page.get_by_label("Email or username").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(f"{system.gateway}/login/mfa")
    expect(page.get_by_role("heading", level=1)).to_have_text("Second step")
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert "gh_session" not in cookies  # not signed in before the second step
    assert cookies["gh_mfa"]["httpOnly"] and cookies["gh_mfa"]["path"] == "/login/mfa"


def test_set_up_an_authenticator_app_then_sign_in_with_a_code_from_it(page: Page, system: System) -> None:
    email = new_email()
    sign_up(page, system, email)
    page.goto(
        link_in(
            wait_for_mail(system, email, "confirm your email"), r"https?://\S+/verify-email\?token=[\w-]+"
        )
    )
    page.get_by_role("button", name="Confirm my email address").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your email address is confirmed")
    sign_in(page, system, email)
    app, _codes = set_up_the_authenticator_app(page, system)
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{system.gateway}/login?signed_out")

    sign_in_with_password_to_the_second_step(page, system, email)
    axe_check(page)
    shot(page, "login-mfa")
    page.get_by_label("Code from the app").fill("12345")
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("#f-code-error")).to_have_text(
        "The code is the six digits your authenticator app shows."
    )
    axe_check(page)
    shot(page, "login-mfa-error")
    page.get_by_label("Code from the app").fill(next_code(app))
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(f"{system.gateway}/account")
    expect(page.locator(".facts").get_by_text(email)).to_be_visible()
    assert "gh_mfa" not in {c["name"] for c in page.context.cookies()}  # the pending sign-in is forgotten


def test_sign_in_with_a_recovery_code_make_new_ones_then_turn_the_app_off(page: Page, system: System) -> None:
    email = new_email()
    sign_up(page, system, email)
    sign_in(page, system, email)
    _app, codes = set_up_the_authenticator_app(page, system)
    page.get_by_role("button", name="Sign out").click()

    sign_in_with_password_to_the_second_step(page, system, email)
    page.get_by_role("link", name="Use a recovery code instead").click()
    axe_check(page)
    shot(page, "login-mfa-recovery")
    page.get_by_label("Recovery code").fill(codes[0])
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(f"{system.gateway}/account")

    page.goto(f"{system.gateway}/account/security")
    expect(page.locator(".facts dd")).to_have_text("9")
    axe_check(page)
    shot(page, "security-app-on")
    page.get_by_role("button", name="Make new recovery codes").click()
    # a sign-in within AUTH_RECENT_AUTH_SECONDS needs no confirmation; this one was just now
    expect(page.get_by_role("heading", level=1)).to_have_text("Your new recovery codes")
    axe_check(page)
    fresh = page.locator(".codes code").all_inner_texts()
    assert len(fresh) == 10 and not set(fresh) & set(codes)

    page.get_by_role("link", name="I have saved them").click()
    page.get_by_role("button", name="Turn the authenticator app off").click()
    expect(page.get_by_role("status")).to_have_text("Your authenticator app is off.")
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, system, email)  # the password alone again


def test_continue_with_google_then_the_second_step_from_the_fragment(page: Page, system: System) -> None:
    key = f"g{uuid.uuid4().hex[:10]}"
    email = f"{key}@example.com"
    created = httpx.post(
        f"{system.urls['oauth']}/_emulator/users",
        json={"provider": "google", "user": {"key": key, "email": email, "name": "Ada Lovelace"}},
        timeout=10,
    )
    assert created.status_code == 201, created.text

    def continue_with_google() -> None:
        page.goto(f"{system.gateway}/login")
        page.get_by_role("link", name="Continue with Google").click()
        page.get_by_role("button", name="Approve as Ada Lovelace").click()

    continue_with_google()
    expect(page).to_have_url(f"{system.gateway}/account")
    app, _codes = set_up_the_authenticator_app(page, system)
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{system.gateway}/login?signed_out")

    continue_with_google()  # back with #mfa_token=…: app.js posts it on, and the address bar loses it
    expect(page).to_have_url(f"{system.gateway}/login/mfa")
    axe_check(page)
    page.get_by_label("Code from the app").fill(next_code(app))
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(f"{system.gateway}/account")
    expect(page.locator(".facts").get_by_text(email)).to_be_visible()
