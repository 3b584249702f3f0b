"""`GET /auth/me/export`: a person's data as a JSON file (profile, linked accounts, sessions,
second factors and passkeys, security activity), and no secret in it."""

from __future__ import annotations

import base64
import uuid

import httpx
from authenticator import SoftAuthenticator
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from test_mfa import enable_totp
from test_oauth import link_github, provider_user
from test_passkeys import add_passkey

from auth_service.accounts.repository import UserRepository
from auth_service.models import Passkey
from auth_service.passkeys.repository import PasskeyRepository
from conftest import MovableClock, bearer, login, new_email, signed_up


async def test_the_export_holds_my_data_and_no_secret(
    client: httpx.AsyncClient,
    oauth_emulator: str,
    clock: MovableClock,
    db: async_sessionmaker[AsyncSession],
) -> None:
    user, tokens = await signed_up(client)
    other = await login(client, user["email"], **{"User-Agent": "Other browser/1.0"})
    assert (await client.post("/auth/logout", headers=bearer(other))).status_code in (200, 204)
    await client.post("/auth/login", json={"email": user["email"], "password": "wrong password!"})
    patched = await client.patch(
        "/auth/me", json={"display_name": "Ada L.", "timezone": "Europe/Paris"}, headers=bearer(tokens)
    )
    assert patched.status_code == 200, patched.text
    linked = await link_github(
        client, tokens, await provider_user(oauth_emulator, "github", email=new_email())
    )
    assert linked.status_code == 200, linked.text
    passkey = await add_passkey(client, tokens, SoftAuthenticator(), name="Work laptop")
    secret, recovery_codes = await enable_totp(client, tokens, clock)

    response = await client.get("/auth/me/export", headers=bearer(tokens))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="gatehouse-account-') and disposition.endswith(
        '.json"'
    )
    assert response.headers["cache-control"] == "no-store"
    data = response.json()

    assert data["service"] == "auth-service"
    assert data["user"]["id"] == user["id"]
    assert data["user"]["email"] == user["email"]
    assert data["user"]["profile"]["display_name"] == "Ada L."
    assert data["user"]["profile"]["timezone"] == "Europe/Paris"
    assert data["has_password"] is True
    assert [i["provider"] for i in data["identities"]] == ["github"]
    sessions = data["sessions"]
    assert len(sessions) == 2
    signed_out = next(s for s in sessions if s["user_agent"] == "Other browser/1.0")
    assert signed_out["revoked_at"] is not None and signed_out["revoke_reason"]
    assert signed_out["method"] == "password" and signed_out["amr"] == ["pwd"]
    assert sum(1 for s in sessions if s["revoked_at"] is None) == 1
    factors = data["second_factors"]
    assert factors["authenticator_app"]["confirmed_at"] is not None
    assert factors["recovery_codes_left"] == len(recovery_codes) == 10
    assert [(p["id"], p["name"]) for p in factors["passkeys"]] == [(passkey["id"], "Work laptop")]
    types = [e["type"] for e in data["audit_events"]]
    for expected in (
        "sign_in.succeeded",
        "sign_in.failed",
        "identity.linked",
        "mfa.passkey_added",
        "mfa.totp_enabled",
    ):
        assert expected in types, types
    assert all(e["user_id"] == user["id"] for e in data["audit_events"])

    # No secret: not the password's hash, the app's seed, a recovery code, a token or a key.
    async with db() as session:
        stored = await UserRepository(session).by_id(uuid.UUID(user["id"]))
        keys: list[Passkey] = await PasskeyRepository(session).of_user(uuid.UUID(user["id"]))
    assert stored is not None and stored.password_hash
    text = response.text
    secrets = [
        stored.password_hash,
        secret,
        *recovery_codes,
        tokens["access_token"],
        tokens["refresh_token"],
        other["refresh_token"],
        base64.urlsafe_b64encode(keys[0].public_key).decode().rstrip("="),
        base64.b64encode(keys[0].public_key).decode(),
    ]
    for value in secrets:
        assert value not in text
    for field in ("password_hash", "token_hash", "secret", "code_hash", "public_key"):
        assert f'"{field}"' not in text


async def test_the_export_needs_a_signed_in_person(client: httpx.AsyncClient) -> None:
    response = await client.get("/auth/me/export")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
