"""API keys in Debian's Chromium against the whole running system (test_browser.py's fixtures):
create a key (a refused form first), see it once with its copy button and the warning, the email
that tells of it, use it through the gateway, revoke it after the confirmation page, and the key
refused at the gateway within seconds. axe-core on each page; screenshots under var/web-tests/pages/."""

from __future__ import annotations

import re
import time
import uuid

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from test_browser import (  # noqa: F401 - the browser fixtures, used by name
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

from harness import System

pytestmark = pytest.mark.timeout(480)  # the first test also waits for the whole system to start


@pytest.fixture(scope="module")
def system(whole_system: System) -> System:
    return with_auth_settings(whole_system, {})


def me_with(system: System, key: str) -> httpx.Response:
    return httpx.get(f"{system.gateway}/auth/me", headers={"Authorization": f"Bearer {key}"}, timeout=10)


def test_create_a_key_see_it_once_use_it_then_revoke_it(page: Page, system: System) -> None:  # noqa: F811 - the imported fixture
    email = new_email()
    sign_up(page, system, email)
    sign_in(page, system, email)
    page.get_by_role("navigation", name="Account").get_by_role("link", name="API keys").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("API keys")
    expect(page.get_by_text("You have no API keys.")).to_be_visible()
    axe_check(page)

    form = page.locator("form[action='/account/api-keys']")
    form.get_by_role("button", name="Create the key").click()  # no name, no scope: refused
    expect(page.locator("#f-name-error")).to_have_text("Give the key a name, so you can tell it apart later.")
    expect(page.locator("#f-scope-error")).to_have_text("Choose at least one thing the key may do.")
    axe_check(page)
    shot(page, "api-keys-refused")

    form.get_by_label("Name").fill("Nightly export")
    form.get_by_label(re.compile("^Read your profile")).check()
    form.get_by_label(re.compile("^Read your subscription")).check()
    form.get_by_label("It stops working").select_option("30")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=system.gateway)
    form.get_by_role("button", name="Create the key").click()

    expect(page.get_by_role("heading", name="Your new key “Nightly export”")).to_be_visible()
    expect(page.get_by_role("alert")).to_have_text(
        "Copy it now and keep it somewhere safe: this is the only time we show it."
    )
    key = page.get_by_label("The key").input_value()
    assert re.fullmatch(r"gk_live_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", key)
    page.get_by_role("button", name="Copy the key").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == key
    listed = page.locator(".api-keys li")
    expect(listed).to_have_count(1)
    expect(listed).to_contain_text("Nightly export")
    expect(listed).to_contain_text(key[:20] + "…")
    expect(listed).to_contain_text("Read your profile; Read your subscription, payments and invoices")
    axe_check(page)
    shot(page, "api-keys-created")

    page.goto(f"{system.gateway}/account/api-keys")  # shown once: the page never shows it again
    assert key[21:] not in page.content()

    message = wait_for_mail(system, email, "API key was created")
    assert key[:20] in message.get_body(preferencelist=("plain",)).get_content()
    assert key[21:] not in message.as_string()

    used = me_with(system, key)
    assert used.status_code == 200 and used.json()["email"] == email
    page.goto(f"{system.gateway}/account/api-keys")
    expect(page.locator(".api-keys li dd").nth(2)).not_to_have_text("Never")  # last used: the exchange

    page.get_by_role("link", name="Revoke “Nightly export”").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Revoke “Nightly export”?")
    axe_check(page)
    shot(page, "api-key-revoke-confirm")
    page.get_by_role("button", name="Revoke the key").click()
    expect(page.get_by_role("status")).to_have_text(
        "The key “Nightly export” is revoked: it stops working within seconds."
    )
    expect(page.get_by_text("You have no API keys.")).to_be_visible()
    axe_check(page)
    shot(page, "api-keys-revoked")

    deadline = time.monotonic() + 5
    while me_with(system, key).status_code != 401:
        assert time.monotonic() < deadline, "the revoked key still works at the gateway after 5 s"
        time.sleep(0.1)


def test_an_org_admin_makes_the_orgs_key_which_reads_the_org_as_a_member(page: Page, system: System) -> None:  # noqa: F811 - the imported fixture
    email = new_email()
    sign_up(page, system, email)
    sign_in(page, system, email)
    page.get_by_role("navigation", name="Account").get_by_role("link", name="Organizations").click()
    page.get_by_label("Name", exact=True).fill("Acme Ltd")
    page.get_by_label("Short name").fill(f"acme-{uuid.uuid4().hex[:8]}")
    page.get_by_role("button", name="Create the organization").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Acme Ltd")
    org_id = page.url.split("?")[0].rstrip("/").rsplit("/", 1)[1]
    page.get_by_role("button", name="Act in Acme Ltd").click()
    expect(page.get_by_role("status")).to_have_text("You are now acting in this organization.")

    page.goto(f"{system.gateway}/account/api-keys")
    expect(page.get_by_role("heading", name="The keys of Acme Ltd")).to_be_visible()
    expect(page.get_by_text("The organization has no API keys.")).to_be_visible()
    form = page.locator("form[aria-labelledby='create-org-key']")
    form.get_by_label("Name").fill("Monthly report")
    form.get_by_label(re.compile("^Read the organization and its members")).check()
    form.get_by_role("button", name="Create the organization’s key").click()
    expect(page.get_by_role("heading", name="Your new key “Monthly report”")).to_be_visible()
    key = page.get_by_label("The key", exact=True).input_value()
    org_keys = page.locator("section[aria-labelledby='org-keys'] .api-keys li")
    expect(org_keys).to_have_count(1)
    expect(org_keys).to_contain_text("Read the organization and its members")
    expect(page.get_by_text("You have no API keys.")).to_be_visible()  # not a personal key
    axe_check(page)
    shot(page, "api-keys-org")

    headers = {"Authorization": f"Bearer {key}"}
    read = httpx.get(f"{system.gateway}/auth/orgs/{org_id}", headers=headers, timeout=10)
    assert read.status_code == 200 and read.json()["role"] == "member", read.text
    assert me_with(system, key).status_code == 403  # it names no person

    page.get_by_role("link", name="Revoke “Monthly report”").click()
    page.get_by_role("button", name="Revoke the key").click()
    expect(page.get_by_text("The organization has no API keys.")).to_be_visible()


def test_the_api_keys_page_in_french(browser: Browser, page: Page, system: System) -> None:  # noqa: F811 - the imported fixtures
    email = new_email()
    sign_up(page, system, email)
    sign_in(page, system, email)
    french = browser.new_context(locale="fr-FR", storage_state=page.context.storage_state())
    try:
        tab = french.new_page()
        tab.goto(f"{system.gateway}/account/api-keys")
        expect(tab.get_by_role("heading", level=1)).to_have_text("Clés d’API")
        expect(tab.get_by_text("Lire votre profil")).to_be_visible()
        tab.get_by_role("button", name="Créer la clé").click()
        expect(tab.locator("#f-scope-error")).to_have_text(
            "Choisissez au moins une chose que la clé peut faire."
        )
        axe_check(tab)
        shot(tab, "api-keys-fr")
    finally:
        french.close()
