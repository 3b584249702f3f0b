"""docs/architecture.md flows 1–6 through the gateway, against the whole running system: sign-up and
verification by email, sessions, password recovery, email codes, provider sign-in, deactivation."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import httpx

from conftest import PASSWORD, System, bearer, link_in, new_email, text_of


async def sign_up(client: httpx.AsyncClient, email: str) -> dict[str, object]:
    response = await client.post(
        "/auth/register", json={"email": email, "username": f"u{email[4:16]}", "password": PASSWORD}
    )
    assert response.status_code == 202, response.text
    return dict(response.json())


async def log_in(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, str]:
    response = await client.post("/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_sign_up_then_verify_by_the_emailed_link(system: System, client: httpx.AsyncClient) -> None:
    email = new_email()
    await sign_up(client, email)
    message = await system.wait_for_mail(email, "confirm your email")
    link = link_in(message, r"https?://\S+/verify-email\?token=[\w-]+")
    assert link.startswith(system.gateway)  # built from configuration, pointing at the web page
    token = parse_qs(urlsplit(link).query)["token"][0]

    # An API client (and a link sent before the web page existed) verifies with the GET.
    clicked = await client.get("/auth/verify", params={"token": token})
    assert clicked.status_code == 200, clicked.text
    tokens = await log_in(client, email)
    me = await client.get("/auth/me", headers=bearer(tokens))
    assert me.json()["email_verified"] is True
    assert "X-Request-ID" in me.headers


async def test_signing_up_with_a_taken_address_answers_alike_and_emails_its_owner(
    system: System, client: httpx.AsyncClient
) -> None:
    """No enumeration: the answer is the new-address one; the owner's inbox says what happened."""
    email = new_email()
    first = await sign_up(client, email)
    await system.wait_for_mail(email, "confirm your email")
    again = await client.post(
        "/auth/register", json={"email": email, "username": f"v{email[4:16]}", "password": PASSWORD}
    )
    assert again.status_code == 202 and again.json() == first
    message = await system.wait_for_mail(email, "someone tried to sign up")
    text = text_of(message)
    assert f"{system.gateway}/login" in text and f"{system.gateway}/forgot-password" in text
    assert "token=" not in text
    assert (await client.post("/auth/login", json={"email": email, "password": PASSWORD})).status_code == 200


async def test_sessions_rotate_detect_reuse_and_log_out(client: httpx.AsyncClient) -> None:
    email = new_email()
    await sign_up(client, email)
    first = await log_in(client, email)

    async def refresh(token: str) -> httpx.Response:
        return await client.post("/auth/refresh-token", json={"refresh_token": token})

    second = (await refresh(first["refresh_token"])).json()["refresh_token"]
    third = (await refresh(second)).json()["refresh_token"]
    assert len({first["refresh_token"], second, third}) == 3
    # A token rotated out before the latest one comes back: theft; the whole family dies.
    assert (await refresh(first["refresh_token"])).status_code == 401
    assert (await refresh(third)).status_code == 401

    other = await log_in(client, email)
    assert (await client.post("/auth/logout", headers=bearer(other))).status_code == 200
    assert (await client.get("/auth/me", headers=bearer(other))).status_code == 401  # refused at the edge

    a, b = await log_in(client, email), await log_in(client, email)
    assert (await client.post("/auth/logout-all", headers=bearer(a))).status_code == 200
    for tokens in (a, b):
        assert (
            await client.post("/auth/refresh-token", json={"refresh_token": tokens["refresh_token"]})
        ).status_code == 401


async def test_forgotten_password_reset_by_email_signs_out_everywhere(
    system: System, client: httpx.AsyncClient
) -> None:
    email = new_email()
    await sign_up(client, email)
    session = await log_in(client, email)
    assert (await client.post("/auth/forget-password", json={"email": email})).status_code == 202
    message = await system.wait_for_mail(email, "reset your")
    token = parse_qs(urlsplit(link_in(message, r"https?://\S+token=[\w-]+")).query)["token"][0]

    reset = await client.post(
        "/auth/new-password", json={"token": token, "new_password": "a brand new passphrase"}
    )
    assert reset.status_code == 200, reset.text
    assert (
        await client.post("/auth/refresh-token", json={"refresh_token": session["refresh_token"]})
    ).status_code == 401
    await system.wait_for_mail(email, "password was changed")
    tokens = await log_in(client, email, "a brand new passphrase")

    changed = await client.post(
        "/auth/change-password",
        json={"old_password": "a brand new passphrase", "new_password": "yet another passphrase"},
        headers=bearer(tokens),
    )
    assert changed.status_code == 200, changed.text
    await log_in(client, email, "yet another passphrase")


async def test_email_code_sign_in(system: System, client: httpx.AsyncClient) -> None:
    email = new_email()
    await sign_up(client, email)
    assert (await client.post("/auth/request/login-code", json={"email": email})).status_code == 202
    message = await system.wait_for_mail(email, "sign-in code")
    match = re.search(r"\b(\d{6})\b", text_of(message))
    assert match
    signed_in = await client.post("/auth/login/code", json={"email": email, "code": match.group(1)})
    assert signed_in.status_code == 200, signed_in.text
    again = await client.post("/auth/login/code", json={"email": email, "code": match.group(1)})
    assert again.status_code == 401  # single use


async def test_google_sign_in_provisions_then_signs_in(system: System, client: httpx.AsyncClient) -> None:
    start = await client.get("/auth/google/login")
    assert start.status_code == 302
    state_cookie = start.cookies["gatehouse_oauth_google"]
    async with httpx.AsyncClient() as browser:
        consent = await browser.get(f"{start.headers['location']}&emulator_user=alice")
    back = consent.headers["location"]
    assert back.startswith(f"{system.gateway}/auth/google/callback?")  # providers return to the gateway
    signed_in = await client.get(
        back.removeprefix(system.gateway), headers={"Cookie": f"gatehouse_oauth_google={state_cookie}"}
    )
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json()["user"]["email"] == "alice@example.com"
    assert signed_in.json()["user"]["email_verified"] is True


async def test_deactivation_stops_tokens_at_once_everywhere(
    system: System, client: httpx.AsyncClient
) -> None:
    email = new_email()
    await sign_up(client, email)
    tokens = await log_in(client, email)
    assert (await client.get("/billing/subscriptions/me", headers=bearer(tokens))).status_code in (200, 404)

    deactivated = await client.post("/auth/deactivate", json={"password": PASSWORD}, headers=bearer(tokens))
    assert deactivated.status_code == 200, deactivated.text
    await system.wait_for_mail(email, "deactivated")
    # The access token has not expired, yet the gateway and billing-service refuse it.
    for path in ("/auth/me", "/billing/subscriptions/me"):
        assert (await client.get(path, headers=bearer(tokens))).status_code == 401
    async with httpx.AsyncClient(base_url=system.urls["billing"]) as direct:
        assert (await direct.get("/billing/subscriptions/me", headers=bearer(tokens))).status_code == 401
