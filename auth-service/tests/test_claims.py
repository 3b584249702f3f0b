"""The `auth_time` and `amr` claims: when and how the session's sign-in was proven."""

from __future__ import annotations

import time
from typing import Any

import httpx
import jwt
from test_oauth import Browser, provider_user
from test_recovery import login_code

from conftest import login, new_email, refresh, register
from gatehouse_contracts.tokens import AccessTokenClaims
from gatehouse_platform.pytest_plugin import EventTap


def claims(tokens: dict[str, Any]) -> AccessTokenClaims:
    return AccessTokenClaims.model_validate(
        jwt.decode(tokens["access_token"], options={"verify_signature": False})
    )


async def test_a_password_sign_in_says_pwd_and_when(client: httpx.AsyncClient) -> None:
    before = int(time.time())
    user = await register(client)
    signed_in = claims(await login(client, user["email"]))
    assert signed_in.amr == ["pwd"]
    assert signed_in.auth_time is not None and before - 1 <= signed_in.auth_time <= int(time.time()) + 1


async def test_refresh_keeps_auth_time_and_amr(client: httpx.AsyncClient) -> None:
    user = await register(client)
    tokens = await login(client, user["email"])
    first = claims(tokens)
    time.sleep(1.1)  # a second later: a renewed auth_time would show
    refreshed = await refresh(client, tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    later = claims(refreshed.json())
    assert (later.auth_time, later.amr) == (first.auth_time, first.amr)
    assert later.iat > first.iat


async def test_an_emailed_code_sign_in_says_otp(client: httpx.AsyncClient, events: EventTap) -> None:
    user = await register(client)
    code = await login_code(client, events, user["email"])
    response = await client.post("/auth/login/code", json={"email": user["email"], "code": code})
    assert response.status_code == 200, response.text
    assert claims(response.json()).amr == ["otp"]


def test_tokens_without_the_new_claims_still_parse() -> None:
    old = {
        "iss": "i",
        "aud": "a",
        "sub": "00000000-0000-0000-0000-000000000001",
        "iat": 1,
        "nbf": 1,
        "exp": 2,
        "jti": "j",
        "sid": "00000000-0000-0000-0000-000000000002",
        "email": "a@example.com",
        "email_verified": True,
    }
    parsed = AccessTokenClaims.model_validate(old)
    assert (parsed.auth_time, parsed.amr) == (None, [])


async def test_a_provider_sign_in_says_fed(client: httpx.AsyncClient, oauth_emulator: str) -> None:
    key = await provider_user(oauth_emulator, "github", email=new_email())
    response = await Browser(client, "github").sign_in(key)
    assert response.status_code == 200, response.text
    assert claims(response.json()).amr == ["fed"]
