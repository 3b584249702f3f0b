"""Second factors: the authenticator app (TOTP), recovery codes, and the second step of a sign-in —
with the attacks on them (replayed codes, brute force, a reused or expired mfa_token)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pyotp
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from test_claims import claims
from test_oauth import Browser, provider_user
from test_recovery import login_code

from auth_service.main import create_app
from auth_service.models import MfaChallenge, TotpFactor
from conftest import (
    PASSWORD,
    MovableClock,
    bearer,
    login,
    make_settings,
    new_email,
    register,
    signed_up,
)
from gatehouse_platform.db import utcnow
from gatehouse_platform.errors import PROBLEM_TYPE_BASE
from gatehouse_platform.pytest_plugin import EventTap

Sessions = async_sessionmaker[AsyncSession]
STEP = 30


def totp_code(secret: str, clock: MovableClock, steps_ahead: int = 0) -> str:
    return str(pyotp.TOTP(secret).at(clock.now() + steps_ahead * STEP))


async def enable_totp(
    client: httpx.AsyncClient, tokens: dict[str, Any], clock: MovableClock
) -> tuple[str, list[str]]:
    """Sets up and confirms an authenticator app; returns its secret and the recovery codes. The
    confirming code spends the current time-step, so the clock moves on one step."""
    setup = await client.post("/auth/mfa/totp/setup", headers=bearer(tokens))
    assert setup.status_code == 200, setup.text
    secret = setup.json()["secret"]
    confirm = await client.post(
        "/auth/mfa/totp/confirm", json={"code": totp_code(secret, clock)}, headers=bearer(tokens)
    )
    assert confirm.status_code == 200, confirm.text
    clock.offset += STEP
    return secret, list(confirm.json()["recovery_codes"])


async def with_totp(client: httpx.AsyncClient, clock: MovableClock) -> tuple[dict[str, Any], str, list[str]]:
    """A user with an authenticator app; returns the user, its secret and recovery codes."""
    user, tokens = await signed_up(client)
    secret, codes = await enable_totp(client, tokens, clock)
    return user, secret, codes


async def first_factor(client: httpx.AsyncClient, email: str) -> str:
    response = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["mfa_required"] is True
    return str(body["mfa_token"])


async def second_factor(client: httpx.AsyncClient, mfa_token: str, **factor: str) -> httpx.Response:
    return await client.post("/auth/login/mfa", json={"mfa_token": mfa_token, **factor})


def problem_type(response: httpx.Response) -> str:
    return str(response.json()["type"]).removeprefix(PROBLEM_TYPE_BASE)


async def test_setup_shows_a_secret_and_qr_code_and_turns_nothing_on(
    client: httpx.AsyncClient, db: Sessions
) -> None:
    user, tokens = await signed_up(client)
    setup = await client.post("/auth/mfa/totp/setup", headers=bearer(tokens))
    assert setup.status_code == 200, setup.text
    body = setup.json()
    assert body["otpauth_uri"].startswith("otpauth://totp/Gatehouse:")
    assert f"secret={body['secret']}" in body["otpauth_uri"]
    assert body["qr_svg"].startswith('<svg xmlns="http://www.w3.org/2000/svg"')
    assert setup.headers["cache-control"] == "no-store"
    status = (await client.get("/auth/mfa", headers=bearer(tokens))).json()
    assert status == {"totp": False, "recovery_codes_left": 0, "passkeys": 0, "methods": []}
    assert "access_token" in (await login(client, user["email"]))  # no second step yet
    async with db() as session:
        stored = (
            await session.execute(select(TotpFactor).where(TotpFactor.user_id == user["id"]))
        ).scalar_one()
    assert body["secret"].encode() not in stored.secret_encrypted  # encrypted at rest


async def test_confirming_with_a_code_turns_the_app_on_and_gives_ten_recovery_codes(
    client: httpx.AsyncClient, clock: MovableClock, events: EventTap
) -> None:
    user, tokens = await signed_up(client)
    setup = (await client.post("/auth/mfa/totp/setup", headers=bearer(tokens))).json()
    wrong = await client.post("/auth/mfa/totp/confirm", json={"code": "000000"}, headers=bearer(tokens))
    if totp_code(setup["secret"], clock) != "000000":
        assert wrong.status_code == 422
    confirm = await client.post(
        "/auth/mfa/totp/confirm", json={"code": totp_code(setup["secret"], clock)}, headers=bearer(tokens)
    )
    assert confirm.status_code == 200, confirm.text
    codes = confirm.json()["recovery_codes"]
    assert len(codes) == len(set(codes)) == 10
    status = (await client.get("/auth/mfa", headers=bearer(tokens))).json()
    assert status == {
        "totp": True,
        "recovery_codes_left": 10,
        "passkeys": 0,
        "methods": ["totp", "recovery_code"],
    }
    enabled = await events.wait_for("user.mfa_enabled", lambda e: e["data"]["user_id"] == user["id"])
    assert enabled["data"]["method"] == "totp"
    again = await client.post("/auth/mfa/totp/setup", headers=bearer(tokens))
    assert again.status_code == 409


async def test_confirm_without_a_setup_is_refused(client: httpx.AsyncClient) -> None:
    _, tokens = await signed_up(client)
    response = await client.post("/auth/mfa/totp/confirm", json={"code": "123456"}, headers=bearer(tokens))
    assert response.status_code == 409
    assert problem_type(response) == "totp-setup-not-started"


async def test_password_sign_in_then_a_code_gives_tokens_saying_mfa(
    client: httpx.AsyncClient, clock: MovableClock
) -> None:
    user, secret, _ = await with_totp(client, clock)
    response = await client.post("/auth/login", json={"email": user["email"], "password": PASSWORD})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["mfa_required"] is True and body["methods"] == ["totp", "recovery_code"]
    assert "access_token" not in body and "refresh_token" not in body
    assert "gatehouse_refresh" not in response.cookies
    done = await second_factor(client, body["mfa_token"], code=totp_code(secret, clock))
    assert done.status_code == 200, done.text
    assert done.cookies.get("gatehouse_refresh")
    assert claims(done.json()).amr == ["mfa", "otp", "pwd"]
    assert (await client.get("/auth/me", headers=bearer(done.json()))).status_code == 200


async def test_a_replayed_totp_code_is_refused(client: httpx.AsyncClient, clock: MovableClock) -> None:
    user, secret, _ = await with_totp(client, clock)
    code = totp_code(secret, clock)
    assert (
        await second_factor(client, await first_factor(client, user["email"]), code=code)
    ).status_code == 200
    replay = await second_factor(client, await first_factor(client, user["email"]), code=code)
    assert replay.status_code == 401
    assert problem_type(replay) == "invalid-second-factor"
    # a code from an earlier step than the last one accepted is refused too
    earlier = totp_code(secret, clock, steps_ahead=-1)
    late = await second_factor(client, await first_factor(client, user["email"]), code=earlier)
    assert late.status_code == 401
    clock.offset += STEP
    fresh = await second_factor(
        client, await first_factor(client, user["email"]), code=totp_code(secret, clock)
    )
    assert fresh.status_code == 200


async def test_wrong_codes_kill_the_mfa_token(client: httpx.AsyncClient, clock: MovableClock) -> None:
    user, secret, _ = await with_totp(client, clock)
    token = await first_factor(client, user["email"])
    right = totp_code(secret, clock)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(5):  # mfa_max_attempts
        response = await second_factor(client, token, code=wrong)
        assert response.status_code == 401
        assert problem_type(response) == "invalid-second-factor"
    dead = await second_factor(client, token, code=right)
    assert dead.status_code == 401
    assert problem_type(dead) == "invalid-mfa-token"


async def test_an_mfa_token_works_once(client: httpx.AsyncClient, clock: MovableClock) -> None:
    user, secret, _ = await with_totp(client, clock)
    token = await first_factor(client, user["email"])
    assert (await second_factor(client, token, code=totp_code(secret, clock))).status_code == 200
    clock.offset += STEP
    again = await second_factor(client, token, code=totp_code(secret, clock))
    assert again.status_code == 401
    assert problem_type(again) == "invalid-mfa-token"


async def test_an_expired_mfa_token_is_refused(
    client: httpx.AsyncClient, clock: MovableClock, db: Sessions
) -> None:
    user, secret, _ = await with_totp(client, clock)
    token = await first_factor(client, user["email"])
    async with db() as session:
        await session.execute(
            update(MfaChallenge)
            .where(MfaChallenge.user_id == user["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
    expired = await second_factor(client, token, code=totp_code(secret, clock))
    assert expired.status_code == 401
    assert problem_type(expired) == "invalid-mfa-token"


async def test_the_mfa_token_lives_five_minutes(
    client: httpx.AsyncClient, clock: MovableClock, db: Sessions
) -> None:
    user, _, _ = await with_totp(client, clock)
    before = utcnow()
    response = await client.post("/auth/login", json={"email": user["email"], "password": PASSWORD})
    assert response.json()["expires_in"] == 300
    async with db() as session:
        challenge = (
            await session.execute(select(MfaChallenge).where(MfaChallenge.user_id == user["id"]))
        ).scalar_one()
    assert timedelta(seconds=299) <= challenge.expires_at - before <= timedelta(seconds=301)
    assert response.json()["mfa_token"].encode() not in challenge.token_hash  # stored hashed


async def test_a_recovery_code_works_once_and_the_user_is_told_how_many_are_left(
    client: httpx.AsyncClient, clock: MovableClock, events: EventTap
) -> None:
    user, _, codes = await with_totp(client, clock)
    done = await second_factor(
        client, await first_factor(client, user["email"]), recovery_code=codes[0].upper()
    )
    assert done.status_code == 200, done.text
    used = await events.wait_for("user.recovery_code_used", lambda e: e["data"]["user_id"] == user["id"])
    assert used["data"]["codes_left"] == 9
    status = (await client.get("/auth/mfa", headers=bearer(done.json()))).json()
    assert status["recovery_codes_left"] == 9
    reused = await second_factor(client, await first_factor(client, user["email"]), recovery_code=codes[0])
    assert reused.status_code == 401
    assert problem_type(reused) == "invalid-second-factor"


async def test_another_users_recovery_code_is_refused(client: httpx.AsyncClient, clock: MovableClock) -> None:
    _, _, others = await with_totp(client, clock)
    user, _, _ = await with_totp(client, clock)
    response = await second_factor(client, await first_factor(client, user["email"]), recovery_code=others[0])
    assert response.status_code == 401


async def test_regenerated_recovery_codes_replace_the_old_ones(
    client: httpx.AsyncClient, clock: MovableClock
) -> None:
    user, tokens = await signed_up(client)
    _, old = await enable_totp(client, tokens, clock)
    clock.offset = 0  # the sign-in above is recent
    response = await client.post("/auth/mfa/recovery-codes", headers=bearer(tokens))
    assert response.status_code == 200, response.text
    new = response.json()["recovery_codes"]
    assert len(new) == 10 and not set(new) & set(old)
    stale = await second_factor(client, await first_factor(client, user["email"]), recovery_code=old[1])
    assert stale.status_code == 401
    fresh = await second_factor(client, await first_factor(client, user["email"]), recovery_code=new[1])
    assert fresh.status_code == 200


async def test_the_emailed_code_sign_in_asks_for_the_second_factor_too(
    client: httpx.AsyncClient, clock: MovableClock, events: EventTap
) -> None:
    user, secret, _ = await with_totp(client, clock)
    code = await login_code(client, events, user["email"])
    response = await client.post("/auth/login/code", json={"email": user["email"], "code": code})
    assert response.status_code == 200, response.text
    assert response.json()["mfa_required"] is True
    done = await second_factor(client, response.json()["mfa_token"], code=totp_code(secret, clock))
    assert done.status_code == 200
    assert claims(done.json()).amr == ["mfa", "otp"]


async def test_a_provider_sign_in_asks_for_the_second_factor_too(
    client: httpx.AsyncClient, clock: MovableClock, oauth_emulator: str
) -> None:
    key = await provider_user(oauth_emulator, "google", email=new_email(), given_name="Grace")
    first = await Browser(client, "google").sign_in(key)
    assert first.status_code == 200, first.text
    secret, _ = await enable_totp(client, first.json(), clock)
    response = await Browser(client, "google").sign_in(key)
    assert response.status_code == 200, response.text
    assert response.json()["mfa_required"] is True
    assert "gatehouse_refresh" not in response.cookies
    done = await second_factor(client, response.json()["mfa_token"], code=totp_code(secret, clock))
    assert done.status_code == 200
    assert claims(done.json()).amr == ["fed", "mfa", "otp"]


@pytest.fixture
async def strict_client(database_url: str, amqp_url: str, app_clock: MovableClock) -> Any:
    settings = make_settings(
        database_url, amqp_url, credential_account_limit="100/minute", failures_before_backoff=2
    )
    app = create_app(settings, run_relay=False, clock=app_clock)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://auth.test") as client,
    ):
        yield client


async def test_wrong_codes_are_throttled_per_account_across_tokens(
    strict_client: httpx.AsyncClient, clock: MovableClock
) -> None:
    user, secret, _ = await with_totp(strict_client, clock)
    right = totp_code(secret, clock)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(2):  # each on a fresh token: the per-token budget is not what stops them
        response = await second_factor(
            strict_client, await first_factor(strict_client, user["email"]), code=wrong
        )
        assert response.status_code == 401
    # past two failures the account waits, whichever token the next code comes with, right or not
    blocked = await second_factor(strict_client, await first_factor(strict_client, user["email"]), code=right)
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) >= 1


async def test_register_then_login_without_a_factor_is_unchanged(client: httpx.AsyncClient) -> None:
    user = await register(client)
    body = await login(client, user["email"])
    assert "mfa_required" not in body and body["token_type"] == "Bearer"


async def test_the_openapi_documents_both_sign_in_answers(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    for path in ("/auth/login", "/auth/login/code"):
        schema = paths[path]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
        refs = {option["$ref"].rsplit("/", 1)[-1] for option in schema["anyOf"]}
        assert refs == {"TokenResponse", "MfaRequiredResponse"}
    problems = paths["/auth/login/mfa"]["post"]["responses"]
    assert {"401", "429"} <= set(problems)
