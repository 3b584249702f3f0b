"""Sign in with Google and GitHub, end to end against emulators/oauth over real HTTP.

The test plays the browser: it follows auth-service's redirect to the provider, lets the emulator
approve as a named test user (`emulator_user`), and brings the code back to the callback with the
state cookie auth-service set.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth_service.main import create_app
from auth_service.models import Identity, User
from conftest import APP_ORIGIN, EventTap, bearer, login, make_settings, new_email, oauth_settings, register
from gatehouse_platform.db import utcnow

Sessions = async_sessionmaker[AsyncSession]


async def provider_user(
    emulator: str, provider: str, *, email: str, verified: bool = True, **extra: Any
) -> str:
    """A fresh user at the provider (unique per test); returns its key."""
    key = f"u{uuid.uuid4().hex[:10]}"
    if provider == "google":
        user: dict[str, Any] = {
            "key": key,
            "email": email,
            "email_verified": verified,
            "name": "Ada Lovelace",
        }
        user["given_name"] = "Ada"
    else:
        user = {
            "key": key,
            "login": f"ada-{key}",
            "name": "Ada Lovelace",
            "email": None,
            "emails": [{"email": email, "primary": True, "verified": verified}],
        }
    user.update(extra)
    async with httpx.AsyncClient(base_url=emulator) as http:
        response = await http.post("/_emulator/users", json={"provider": provider, "user": user})
        assert response.status_code == 201, response.text
    return key


class Browser:
    """The steps a browser takes; each returns what the next needs, so tests can tamper between."""

    def __init__(self, client: httpx.AsyncClient, provider: str) -> None:
        self.client = client
        self.provider = provider
        self.cookie = ""

    async def start(self, **params: str) -> str:
        response = await self.client.get(f"/auth/{self.provider}/login", params=params)
        assert response.status_code == 302, response.text
        self.cookie = response.cookies[f"gatehouse_oauth_{self.provider}"]
        set_cookie = response.headers["set-cookie"].lower()
        assert "httponly" in set_cookie
        assert "samesite=lax" in set_cookie
        assert f"path=/auth/{self.provider}" in set_cookie
        return response.headers["location"]

    async def at_provider(self, authorize_url: str, **params: str) -> str:
        """The provider's answer: the redirect back to our callback (path and query)."""
        async with httpx.AsyncClient() as http:
            response = await http.get(f"{authorize_url}&{urlencode(params)}")
        assert response.status_code in (302, 303), response.text
        back = urlsplit(response.headers["location"])
        assert back.path == f"/auth/{self.provider}/callback"
        return f"{back.path}?{back.query}"

    async def callback(self, path_and_query: str, cookie: str | None = None) -> httpx.Response:
        cookie = self.cookie if cookie is None else cookie
        headers = {"Cookie": f"gatehouse_oauth_{self.provider}={cookie}"} if cookie else {}
        return await self.client.get(path_and_query, headers=headers)

    async def sign_in(self, user_key: str, **start_params: str) -> httpx.Response:
        authorize = await self.start(**start_params)
        return await self.callback(await self.at_provider(authorize, emulator_user=user_key))


async def link_github(client: httpx.AsyncClient, tokens: dict[str, Any], user_key: str) -> httpx.Response:
    """Links the emulator's GitHub user `user_key` to the signed-in user: the callback's answer."""
    start = await client.post("/auth/github/link", headers=bearer(tokens))
    assert start.status_code == 200, start.text
    browser = Browser(client, "github")
    browser.cookie = start.cookies["gatehouse_oauth_github"]
    return await browser.callback(
        await browser.at_provider(start.json()["authorization_url"], emulator_user=user_key)
    )


def query(url_or_path: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url_or_path).query).items()}


def with_param(path_and_query: str, name: str, value: str) -> str:
    parts = urlsplit(path_and_query)
    return f"{parts.path}?{urlencode({**query(path_and_query), name: value})}"


async def identities_of(db: Sessions, user_id: str) -> list[Identity]:
    async with db() as session:
        rows = await session.scalars(select(Identity).where(Identity.user_id == uuid.UUID(user_id)))
        return list(rows)


async def mark_verified(db: Sessions, user_id: str) -> None:
    async with db() as session, session.begin():
        await session.execute(
            update(User).where(User.id == uuid.UUID(user_id)).values(email_verified_at=utcnow())
        )


# The redirect to the provider


async def test_google_login_redirects_with_state_pkce_and_nonce(
    client: httpx.AsyncClient, oauth_emulator: str
) -> None:
    authorize = await Browser(client, "google").start()
    params = query(authorize)
    assert authorize.startswith(f"{oauth_emulator}/google/")
    assert params["client_id"] == "gatehouse-google-client"
    assert params["response_type"] == "code"
    assert params["redirect_uri"] == "http://127.0.0.1:8000/auth/google/callback"
    assert set(params["scope"].split()) == {"openid", "email", "profile"}
    assert params["code_challenge_method"] == "S256"
    assert len(params["code_challenge"]) == 43
    assert len(params["state"]) >= 43
    assert len(params["nonce"]) >= 43


async def test_github_login_redirects_with_state_and_pkce(
    client: httpx.AsyncClient, oauth_emulator: str
) -> None:
    authorize = await Browser(client, "github").start()
    params = query(authorize)
    assert authorize.startswith(f"{oauth_emulator}/github/login/oauth/authorize?")
    assert params["client_id"] == "gatehouse-github-client"
    assert params["code_challenge_method"] == "S256"
    assert "user:email" in params["scope"]
    assert "nonce" not in params


async def test_unknown_provider_is_a_validation_error(client: httpx.AsyncClient) -> None:
    response = await client.get("/auth/facebook/login")
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")


# First sign-in, returning user, linking


async def test_first_google_sign_in_provisions_a_verified_user(
    client: httpx.AsyncClient, oauth_emulator: str, db: Sessions, events: EventTap
) -> None:
    email = new_email()
    key = await provider_user(oauth_emulator, "google", email=email)

    response = await Browser(client, "google").sign_in(key)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["user"]["email"] == email
    assert body["user"]["email_verified"] is True
    assert body["user"]["username"] == "Ada"
    assert response.cookies.get("gatehouse_refresh")
    me = (await client.get("/auth/me", headers=bearer(body))).json()
    assert me["profile"]["display_name"] == "Ada Lovelace"
    [identity] = await identities_of(db, body["user"]["id"])
    assert (identity.provider, identity.email, identity.email_verified) == ("google", email, True)
    registered = await events.wait_for("user.registered", lambda e: e["data"]["email"] == email)
    assert registered["data"]["provider"] == "google"
    assert registered["data"]["email_verified"] is True
    sessions = (await client.get("/auth/sessions", headers=bearer(body))).json()["items"]
    assert [s["method"] for s in sessions] == ["google"]


async def test_returning_user_signs_in_to_the_same_account_without_a_second_registration(
    client: httpx.AsyncClient, oauth_emulator: str, events: EventTap
) -> None:
    email = new_email()
    key = await provider_user(oauth_emulator, "github", email=email)
    first = await Browser(client, "github").sign_in(key)
    second = await Browser(client, "github").sign_in(key)
    assert first.status_code == second.status_code == 200
    assert first.json()["user"]["id"] == second.json()["user"]["id"]
    registered = await events.all_of("user.registered", lambda e: e["data"]["email"] == email)
    assert len(registered) == 1


async def test_usernames_are_derived_and_deduplicated(client: httpx.AsyncClient, oauth_emulator: str) -> None:
    login_name = f"grace{uuid.uuid4().hex[:6]}"
    names = []
    for _ in range(2):
        key = await provider_user(oauth_emulator, "github", email=new_email(), login=login_name)
        response = await Browser(client, "github").sign_in(key)
        assert response.status_code == 200, response.text
        names.append(response.json()["user"]["username"])
    assert names == [login_name, f"{login_name}2"]


async def test_github_private_email_comes_from_the_emails_api(
    client: httpx.AsyncClient, oauth_emulator: str
) -> None:
    email = new_email()
    key = await provider_user(
        oauth_emulator,
        "github",
        email=email,
        emails=[
            {"email": new_email(), "primary": False, "verified": False},
            {"email": email, "primary": True, "verified": True, "visibility": "private"},
        ],
    )
    response = await Browser(client, "github").sign_in(key)
    assert response.status_code == 200, response.text
    assert response.json()["user"]["email"] == email
    assert response.json()["user"]["email_verified"] is True


async def test_verified_provider_email_links_to_the_existing_account(
    client: httpx.AsyncClient, oauth_emulator: str, db: Sessions, events: EventTap
) -> None:
    user = await register(client)
    await mark_verified(db, user["id"])
    key = await provider_user(oauth_emulator, "google", email=user["email"].upper())

    response = await Browser(client, "google").sign_in(key)

    assert response.status_code == 200, response.text
    assert response.json()["user"]["id"] == user["id"]
    assert [i.provider for i in await identities_of(db, user["id"])] == ["google"]
    await login(client, user["email"])  # the password still works
    linked = await events.wait_for("user.identity_linked", lambda e: e["subject"] == user["id"])
    assert linked["data"]["provider"] == "google"


async def test_linking_to_an_unverified_account_removes_the_unproven_password(
    client: httpx.AsyncClient, oauth_emulator: str, db: Sessions
) -> None:
    """Account pre-hijacking: someone registered the address first, with a password of theirs."""
    squatter = await register(client)
    squatter_session = await login(client, squatter["email"])
    key = await provider_user(oauth_emulator, "github", email=squatter["email"])

    response = await Browser(client, "github").sign_in(key)

    assert response.status_code == 200, response.text
    assert response.json()["user"]["id"] == squatter["id"]
    assert response.json()["user"]["email_verified"] is True
    refused = await client.post("/auth/login", json={"email": squatter["email"], "password": "x" * 12})
    assert refused.status_code == 401
    assert (await client.get("/auth/me", headers=bearer(squatter_session))).status_code == 401


async def test_unverified_provider_email_never_links_to_an_existing_account(
    client: httpx.AsyncClient, oauth_emulator: str, db: Sessions
) -> None:
    user = await register(client)
    await mark_verified(db, user["id"])
    key = await provider_user(oauth_emulator, "google", email=user["email"], verified=False)

    response = await Browser(client, "google").sign_in(key)

    assert response.status_code == 409
    assert response.json()["type"].endswith("/provider-email-unusable")
    assert await identities_of(db, user["id"]) == []


async def test_unverified_provider_email_provisions_an_unverified_account_and_sends_the_link(
    client: httpx.AsyncClient, oauth_emulator: str, events: EventTap
) -> None:
    email = new_email()
    key = await provider_user(oauth_emulator, "github", email=email, verified=False)
    response = await Browser(client, "github").sign_in(key)
    assert response.status_code == 200, response.text
    assert response.json()["user"]["email_verified"] is False
    await events.wait_for("user.email_verification_requested", lambda e: e["data"]["email"] == email)


async def test_deactivated_account_cannot_sign_in_with_a_provider(
    client: httpx.AsyncClient, oauth_emulator: str
) -> None:
    key = await provider_user(oauth_emulator, "google", email=new_email())
    tokens = (await Browser(client, "google").sign_in(key)).json()
    assert (await client.post("/auth/deactivate", headers=bearer(tokens))).status_code in (200, 204)
    response = await Browser(client, "google").sign_in(key)
    assert response.status_code == 403
    assert response.json()["type"].endswith("/account-deactivated")


# State, consent and provider failures


async def test_state_mismatch_is_refused(client: httpx.AsyncClient, oauth_emulator: str) -> None:
    key = await provider_user(oauth_emulator, "google", email=new_email())
    browser = Browser(client, "google")
    back = await browser.at_provider(await browser.start(), emulator_user=key)
    response = await browser.callback(with_param(back, "state", "attacker-chosen-state"))
    assert response.status_code == 400
    assert response.json()["type"].endswith("/oauth-state-invalid")


async def test_callback_without_the_state_cookie_is_refused(
    client: httpx.AsyncClient, oauth_emulator: str
) -> None:
    """Login CSRF: a callback URL from someone else's sign-in, opened in the victim's browser."""
    key = await provider_user(oauth_emulator, "google", email=new_email())
    browser = Browser(client, "google")
    back = await browser.at_provider(await browser.start(), emulator_user=key)
    response = await browser.callback(back, cookie="")
    assert response.status_code == 400
    assert response.json()["type"].endswith("/oauth-state-invalid")


async def test_a_tampered_state_cookie_is_refused(client: httpx.AsyncClient, oauth_emulator: str) -> None:
    key = await provider_user(oauth_emulator, "google", email=new_email())
    browser = Browser(client, "google")
    back = await browser.at_provider(await browser.start(), emulator_user=key)
    response = await browser.callback(back, cookie=browser.cookie[:-4] + "AAAA")
    assert response.status_code == 400


async def test_a_replayed_callback_is_refused(client: httpx.AsyncClient, oauth_emulator: str) -> None:
    key = await provider_user(oauth_emulator, "github", email=new_email())
    browser = Browser(client, "github")
    back = await browser.at_provider(await browser.start(), emulator_user=key)
    assert (await browser.callback(back)).status_code == 200
    replay = await browser.callback(back)
    assert replay.status_code == 400
    assert replay.json()["type"].endswith("/oauth-state-invalid")


async def test_denied_consent_is_a_clear_error(client: httpx.AsyncClient) -> None:
    browser = Browser(client, "google")
    back = await browser.at_provider(await browser.start(), emulator_error="access_denied")
    response = await browser.callback(back)
    assert response.status_code == 400
    assert response.json()["type"].endswith("/oauth-denied")


async def test_denied_consent_returns_to_the_app_with_the_error(client: httpx.AsyncClient) -> None:
    browser = Browser(client, "github")
    authorize = await browser.start(redirect_to=f"{APP_ORIGIN}/signed-in")
    response = await browser.callback(await browser.at_provider(authorize, emulator_error="access_denied"))
    assert response.status_code == 303
    assert response.headers["location"] == f"{APP_ORIGIN}/signed-in?error=oauth-denied"
    assert "gatehouse_refresh" not in response.cookies


async def test_an_invalid_code_is_refused(client: httpx.AsyncClient, oauth_emulator: str) -> None:
    key = await provider_user(oauth_emulator, "google", email=new_email())
    browser = Browser(client, "google")
    back = await browser.at_provider(await browser.start(), emulator_user=key)
    response = await browser.callback(with_param(back, "code", "not-a-real-code"))
    assert response.status_code == 400
    assert response.json()["type"].endswith("/oauth-code-rejected")


async def test_an_id_token_with_another_nonce_is_refused(
    client: httpx.AsyncClient, oauth_emulator: str
) -> None:
    key = await provider_user(oauth_emulator, "google", email=new_email())
    async with httpx.AsyncClient(base_url=oauth_emulator) as http:
        fault = {"provider": "google", "endpoint": "id_token", "kind": "wrong_nonce"}
        assert (await http.post("/_emulator/faults", json=fault)).status_code == 201
    response = await Browser(client, "google").sign_in(key)
    assert response.status_code == 400
    assert "nonce" in response.json()["detail"]


@pytest.mark.parametrize(
    ("provider", "endpoint"), [("google", "token"), ("github", "token"), ("github", "emails")]
)
async def test_provider_down_is_a_clear_502(
    client: httpx.AsyncClient, oauth_emulator: str, provider: str, endpoint: str
) -> None:
    key = await provider_user(oauth_emulator, provider, email=new_email())
    browser = Browser(client, provider)
    back = await browser.at_provider(await browser.start(), emulator_user=key)
    async with httpx.AsyncClient(base_url=oauth_emulator) as http:
        fault = {"provider": provider, "endpoint": endpoint, "status": 500}
        assert (await http.post("/_emulator/faults", json=fault)).status_code == 201
    response = await browser.callback(back)
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith("/oauth-provider-unavailable")


# Where the browser goes afterwards


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example.net/steal",
        "https://app.example.com.evil.example.net/",
        "https://app.example.com@evil.example.net/",
        "http://app.example.com/",  # the allow-list says https
        "javascript:alert(1)",
        "/relative/path",
    ],
)
async def test_redirect_to_outside_the_allow_list_is_refused(client: httpx.AsyncClient, target: str) -> None:
    response = await client.get("/auth/google/login", params={"redirect_to": target})
    assert response.status_code == 400
    assert response.json()["type"].endswith("/redirect-not-allowed")
    assert "set-cookie" not in response.headers


async def test_allowed_redirect_to_gets_the_browser_back_signed_in(
    client: httpx.AsyncClient, oauth_emulator: str
) -> None:
    key = await provider_user(oauth_emulator, "google", email=new_email())
    response = await Browser(client, "google").sign_in(key, redirect_to=f"{APP_ORIGIN}/welcome?tab=1")
    assert response.status_code == 303
    assert response.headers["location"] == f"{APP_ORIGIN}/welcome?tab=1&signed_in=google"
    refresh_cookie = response.cookies["gatehouse_refresh"]
    refreshed = await client.post(
        "/auth/refresh-token", headers={"Cookie": f"gatehouse_refresh={refresh_cookie}"}
    )
    assert refreshed.status_code == 200


async def test_a_sign_in_returning_to_the_web_front_puts_its_refresh_cookie_on_the_configured_path(
    database_url: str, amqp_url: str, oauth_emulator: str
) -> None:
    """AUTH_OAUTH_REDIRECT_COOKIE_PATH: the web front reads the refresh cookie on its own landing
    route (under /session), which a cookie scoped to /auth never reaches."""
    settings = make_settings(
        database_url, amqp_url, oauth_redirect_cookie_path="/session", **oauth_settings(oauth_emulator)
    )
    app = create_app(settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://auth.test") as client,
    ):
        key = await provider_user(oauth_emulator, "google", email=new_email())
        response = await Browser(client, "google").sign_in(
            key, redirect_to=f"{APP_ORIGIN}/session/oauth/google"
        )
        assert response.status_code == 303
        [cookie] = [v for v in response.headers.get_list("set-cookie") if v.startswith("gatehouse_refresh=")]
        assert "Path=/session" in cookie and "HttpOnly" in cookie
        direct = await client.post("/auth/login", json={"email": "nobody@example.com", "password": "x"})
        assert "gatehouse_refresh" not in direct.headers.get("set-cookie", "")  # other answers unchanged


# Linked identities: list, link while signed in, unlink


async def test_identities_link_and_unlink_rules(
    client: httpx.AsyncClient, oauth_emulator: str, db: Sessions, events: EventTap
) -> None:
    email = new_email()
    google_key = await provider_user(oauth_emulator, "google", email=email)
    tokens = (await Browser(client, "google").sign_in(google_key)).json()
    listed = (await client.get("/auth/identities", headers=bearer(tokens))).json()
    assert [i["provider"] for i in listed["items"]] == ["google"]
    assert listed["has_password"] is False

    only_way = await client.delete("/auth/identities/google", headers=bearer(tokens))
    assert only_way.status_code == 409
    assert only_way.json()["type"].endswith("/last-sign-in-method")

    # Link GitHub (another address) while signed in.
    github_key = await provider_user(oauth_emulator, "github", email=new_email())
    linked = await link_github(client, tokens, github_key)
    assert linked.status_code == 200, linked.text
    assert linked.json()["provider"] == "github"
    assert sorted(i.provider for i in await identities_of(db, tokens["user"]["id"])) == ["github", "google"]

    assert (await client.delete("/auth/identities/google", headers=bearer(tokens))).status_code == 204
    assert [i.provider for i in await identities_of(db, tokens["user"]["id"])] == ["github"]
    unlinked = await events.wait_for("user.identity_unlinked", lambda e: e["subject"] == tokens["user"]["id"])
    assert unlinked["data"]["provider"] == "google"
    assert (await client.delete("/auth/identities/google", headers=bearer(tokens))).status_code == 404
    # Google now provisions nothing new: it is simply not linked; GitHub still signs in.
    again = await Browser(client, "github").sign_in(github_key)
    assert again.json()["user"]["id"] == tokens["user"]["id"]


async def test_linking_a_provider_account_that_belongs_to_someone_else_is_refused(
    client: httpx.AsyncClient, oauth_emulator: str
) -> None:
    key = await provider_user(oauth_emulator, "github", email=new_email())
    assert (await Browser(client, "github").sign_in(key)).status_code == 200  # Ada's own account
    other = await login(client, (await register(client))["email"])
    start = await client.post("/auth/github/link", headers=bearer(other))
    browser = Browser(client, "github")
    browser.cookie = start.cookies["gatehouse_oauth_github"]
    response = await browser.callback(
        await browser.at_provider(start.json()["authorization_url"], emulator_user=key)
    )
    assert response.status_code == 409
    assert response.json()["type"].endswith("/identity-in-use")


async def test_identity_endpoints_need_a_signed_in_user(client: httpx.AsyncClient) -> None:
    assert (await client.get("/auth/identities")).status_code == 401
    assert (await client.delete("/auth/identities/google")).status_code == 401
    assert (await client.post("/auth/google/link")).status_code == 401


def test_the_redirect_allow_list_is_read_from_a_comma_separated_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from auth_service.settings import Settings

    monkeypatch.setenv("AUTH_OAUTH_REDIRECT_ALLOWLIST", "https://app.example.com/, http://localhost:3000/")
    assert Settings().oauth_redirect_allowlist == ["https://app.example.com/", "http://localhost:3000/"]
