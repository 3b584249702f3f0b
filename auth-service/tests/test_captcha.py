"""Bot checks: register, login and password reset ask for a CAPTCHA token (AUTH_CAPTCHA_MODE
`always`, or `adaptive` once an address or account reached the failure threshold), verified with
siteverify at emulators/captcha over real HTTP; a token works once; a slow, failing or unreachable
siteverify refuses the attempt (503, fails closed); the answers tell no one who has an account."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from prometheus_client import REGISTRY
from pydantic import ValidationError

from auth_service.main import create_app
from auth_service.settings import Settings
from conftest import PASSWORD, bearer, make_settings, new_email, new_username
from gatehouse_emulators.captcha import DEV_SECRET_KEY, DEV_SITE_KEY
from gatehouse_emulators.captcha import create_app as create_captcha_emulator
from gatehouse_platform.testing import free_port, serve_in_thread

ADDRESS = "203.0.113.7"
OTHER_ADDRESS = "198.51.100.23"


@pytest.fixture(scope="module")
def captcha_emulator() -> Iterator[str]:
    with serve_in_thread(create_captcha_emulator()) as base_url:
        yield base_url


def captcha_settings(emulator: str, mode: str, **overrides: Any) -> dict[str, Any]:
    return {
        "captcha_mode": mode,
        "captcha_site_key": DEV_SITE_KEY,
        "captcha_secret_key": DEV_SECRET_KEY,
        "captcha_siteverify_url": f"{emulator}/turnstile/v0/siteverify",
        "captcha_timeout_seconds": 1.0,
        "failures_before_backoff": 10,
        **overrides,
    }


@asynccontextmanager
async def auth_app(database_url: str, amqp_url: str, **overrides: Any) -> AsyncIterator[FastAPI]:
    app = create_app(make_settings(database_url, amqp_url, **overrides), run_relay=False)
    async with LifespanManager(app):
        yield app


def client_from(app: FastAPI, ip: str = ADDRESS) -> httpx.AsyncClient:
    """A client at `ip` (the ASGI scope's client address, which the per-address counts use)."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(ip, 4711)), base_url="http://auth.test"
    )


async def token(emulator: str, action: str = "", sitekey: str = DEV_SITE_KEY) -> str:
    """A token as a solved widget gets it."""
    async with httpx.AsyncClient(base_url=emulator) as http:
        response = await http.post("/_emulator/tokens", json={"sitekey": sitekey, "action": action})
        assert response.status_code == 201, response.text
        return str(response.json()["token"])


async def emulator_call(emulator: str, method: str, path: str, **body: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=emulator) as http:
        return await http.request(method, path, json=body or None)


def counted(action: str, outcome: str) -> float:
    return (
        REGISTRY.get_sample_value("auth_captcha_checks_total", {"action": action, "outcome": outcome}) or 0.0
    )


def assert_challenge(response: httpx.Response, slug: str, action: str) -> dict[str, Any]:
    assert response.status_code == 428, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["type"].endswith(f"/{slug}")
    assert body["provider"] == "turnstile"
    assert body["site_key"] == DEV_SITE_KEY
    assert body["action"] == action
    return body


def registration(**extra: Any) -> dict[str, Any]:
    return {"email": new_email(), "username": new_username(), "password": PASSWORD, **extra}


async def test_off_by_default_nothing_is_asked(database_url: str, amqp_url: str) -> None:
    async with auth_app(database_url, amqp_url) as app, client_from(app) as client:
        assert (await client.get("/auth/captcha")).json() == {
            "mode": "off",
            "provider": None,
            "site_key": None,
        }
        body = registration()
        assert (await client.post("/auth/register", json=body)).status_code == 202
        assert (
            await client.post("/auth/login", json={"email": body["email"], "password": "wrong!"})
        ).status_code == 401
        for _ in range(4):
            await client.post("/auth/login", json={"email": body["email"], "password": "wrong!"})
        signed_in = await client.post("/auth/login", json={"email": body["email"], "password": PASSWORD})
        assert signed_in.status_code == 200, signed_in.text


async def test_always_asks_on_register_login_and_reset(
    database_url: str, amqp_url: str, captcha_emulator: str
) -> None:
    required = counted("register", "required")
    async with (
        auth_app(database_url, amqp_url, **captcha_settings(captcha_emulator, "always")) as app,
        client_from(app) as client,
    ):
        assert (await client.get("/auth/captcha")).json() == {
            "mode": "always",
            "provider": "turnstile",
            "site_key": DEV_SITE_KEY,
        }
        body = registration()
        assert_challenge(await client.post("/auth/register", json=body), "captcha-required", "register")
        assert counted("register", "required") == required + 1
        await emulator_call(captcha_emulator, "DELETE", "/_emulator/requests")
        solved = await token(captcha_emulator, "register")
        accepted = await client.post("/auth/register", json={**body, "captcha_token": solved})
        assert accepted.status_code == 202, accepted.text
        # siteverify was asked as both providers document: form-encoded secret, response, remoteip
        (asked,) = (await emulator_call(captcha_emulator, "GET", "/_emulator/requests")).json()
        assert asked["content_type"] == "application/x-www-form-urlencoded"
        assert asked["form"] == {"secret": DEV_SECRET_KEY, "response": solved, "remoteip": ADDRESS}

        credentials = {"email": body["email"], "password": PASSWORD}
        assert_challenge(await client.post("/auth/login", json=credentials), "captcha-required", "login")
        login_token = await token(captcha_emulator, "login")
        signed_in = await client.post("/auth/login", json={**credentials, "captcha_token": login_token})
        assert signed_in.status_code == 200, signed_in.text

        reset = {"email": body["email"]}
        assert_challenge(await client.post("/auth/forget-password", json=reset), "captcha-required", "reset")
        reset_token = await token(captcha_emulator, "reset")
        sent = await client.post("/auth/forget-password", json={**reset, "captcha_token": reset_token})
        assert sent.status_code == 202, sent.text


async def test_a_token_works_once_and_only_for_its_action(
    database_url: str, amqp_url: str, captcha_emulator: str
) -> None:
    failed = counted("login", "failed")
    async with (
        auth_app(database_url, amqp_url, **captcha_settings(captcha_emulator, "always")) as app,
        client_from(app) as client,
    ):
        body = registration(captcha_token=await token(captcha_emulator, "register"))
        assert (await client.post("/auth/register", json=body)).status_code == 202
        credentials = {"email": body["email"], "password": PASSWORD}
        once = await token(captcha_emulator, "login")
        assert (
            await client.post("/auth/login", json={**credentials, "captcha_token": once})
        ).status_code == 200
        again = await client.post("/auth/login", json={**credentials, "captcha_token": once})
        assert assert_challenge(again, "captcha-failed", "login")["error_codes"] == ["timeout-or-duplicate"]
        made_up = await client.post("/auth/login", json={**credentials, "captcha_token": "not-a-token"})
        assert assert_challenge(made_up, "captcha-failed", "login")["error_codes"] == [
            "invalid-input-response"
        ]
        # a token solved on the registration form does not open the sign-in
        other_form = await token(captcha_emulator, "register")
        mismatch = await client.post("/auth/login", json={**credentials, "captcha_token": other_form})
        assert assert_challenge(mismatch, "captcha-failed", "login")["error_codes"] == ["action-mismatch"]
        assert counted("login", "failed") == failed + 3

        # each refused token is in the account's audit trail as a failed sign-in
        fresh = await token(captcha_emulator, "login")
        tokens = (await client.post("/auth/login", json={**credentials, "captcha_token": fresh})).json()
        trail = (await client.get("/auth/audit-events/me", headers=bearer(tokens))).json()["items"]
        captcha_failures = [e for e in trail if e["type"] == "sign_in.failed" and e["method"] == "captcha"]
        assert len(captcha_failures) == 3
        assert captcha_failures[0]["ip"] == ADDRESS


async def test_adaptive_asks_an_account_past_the_threshold_from_any_address(
    database_url: str, amqp_url: str, captcha_emulator: str
) -> None:
    settings = captcha_settings(captcha_emulator, "adaptive", captcha_failure_threshold=3)
    async with (
        auth_app(database_url, amqp_url, **settings) as app,
        client_from(app, "192.0.2.10") as attacker,
        client_from(app, OTHER_ADDRESS) as owner,
    ):
        body = registration()
        assert (await owner.post("/auth/register", json=body)).status_code == 202
        assert (await owner.get("/auth/captcha")).json()["mode"] == "adaptive"
        wrong = {"email": body["email"], "password": "not the password"}
        for _ in range(3):
            assert (await attacker.post("/auth/login", json=wrong)).status_code == 401
        # the account crossed the threshold: its owner, elsewhere, is asked too, before the password
        right = {"email": body["email"], "password": PASSWORD}
        assert_challenge(await owner.post("/auth/login", json=right), "captcha-required", "login")
        # another account from the owner's address is not
        other = registration()
        assert (await owner.post("/auth/register", json=other)).status_code == 202
        assert (
            await owner.post("/auth/login", json={"email": other["email"], "password": PASSWORD})
        ).status_code == 200
        # solved: signed in, and the account's count starts again
        solved = await token(captcha_emulator, "login")
        signed_in = await owner.post("/auth/login", json={**right, "captcha_token": solved})
        assert signed_in.status_code == 200, signed_in.text
        assert (await owner.post("/auth/login", json=right)).status_code == 200


async def test_adaptive_asks_an_address_past_the_threshold_on_every_form(
    database_url: str, amqp_url: str, captcha_emulator: str
) -> None:
    settings = captcha_settings(captcha_emulator, "adaptive", captcha_failure_threshold=3)
    async with auth_app(database_url, amqp_url, **settings) as app, client_from(app) as bot:
        for _ in range(3):  # three different accounts, none of which exists
            miss = await bot.post("/auth/login", json={"email": new_email(), "password": "guess guess"})
            assert miss.status_code == 401
        assert_challenge(
            await bot.post("/auth/register", json=registration()), "captcha-required", "register"
        )
        assert_challenge(
            await bot.post("/auth/forget-password", json={"email": new_email()}), "captcha-required", "reset"
        )
        assert_challenge(
            await bot.post("/auth/login", json={"email": new_email(), "password": "guess"}),
            "captcha-required",
            "login",
        )
        solved = await token(captcha_emulator, "register")
        made = await bot.post("/auth/register", json=registration(captcha_token=solved))
        assert made.status_code == 202, made.text


async def test_adaptive_answers_a_known_and_an_unknown_account_alike(
    database_url: str, amqp_url: str, captcha_emulator: str
) -> None:
    settings = captcha_settings(captcha_emulator, "adaptive", captcha_failure_threshold=2)
    async with auth_app(database_url, amqp_url, **settings) as app:
        async with client_from(app, "192.0.2.50") as setup:
            known = registration()
            assert (await setup.post("/auth/register", json=known)).status_code == 202
        answers = []
        for address, email in (("192.0.2.51", known["email"]), ("192.0.2.52", new_email())):
            async with client_from(app, address) as client:
                wrong = {"email": email, "password": "not the password"}
                before = [(await client.post("/auth/login", json=wrong)) for _ in range(2)]
                assert [r.status_code for r in before] == [401, 401]
                asked = await client.post("/auth/login", json=wrong)
                answers.append((asked.status_code, {**asked.json(), "request_id": None}))
        assert answers[0] == answers[1]
        assert answers[0][0] == 428


@pytest.mark.parametrize(
    ("fault", "reason"), [({"delay_seconds": 3}, "timed out"), ({"status": 500}, "answered 500")]
)
async def test_a_slow_or_failing_siteverify_refuses_the_attempt(
    database_url: str,
    amqp_url: str,
    captcha_emulator: str,
    caplog: pytest.LogCaptureFixture,
    fault: dict[str, Any],
    reason: str,
) -> None:
    unavailable = counted("login", "unavailable")
    async with (
        auth_app(database_url, amqp_url, **captcha_settings(captcha_emulator, "always")) as app,
        client_from(app) as client,
    ):
        logging.getLogger().addHandler(caplog.handler)  # create_app's logging set-up replaced it
        assert (
            await emulator_call(captcha_emulator, "POST", "/_emulator/faults", **fault)
        ).status_code == 201
        solved = await token(captcha_emulator, "login")
        with caplog.at_level(logging.WARNING, logger="auth_service.captcha"):
            refused = await client.post(
                "/auth/login", json={"email": new_email(), "password": PASSWORD, "captcha_token": solved}
            )
    assert refused.status_code == 503, refused.text
    assert refused.json()["type"].endswith("/captcha-unavailable")
    assert refused.headers["retry-after"] == "30"
    assert f"bot check unavailable, attempt refused: {reason}" in caplog.text
    assert solved not in caplog.text
    assert counted("login", "unavailable") == unavailable + 1


async def test_an_unreachable_siteverify_refuses_the_attempt(
    database_url: str, amqp_url: str, captcha_emulator: str
) -> None:
    down = f"http://127.0.0.1:{free_port()}/siteverify"  # nothing listens there
    settings = captcha_settings(captcha_emulator, "always", captcha_siteverify_url=down)
    async with auth_app(database_url, amqp_url, **settings) as app, client_from(app) as client:
        refused = await client.post(
            "/auth/forget-password", json={"email": new_email(), "captcha_token": "t"}
        )
    assert refused.status_code == 503
    assert refused.json()["type"].endswith("/captcha-unavailable")


async def test_hcaptcha_is_asked_at_its_own_siteverify(
    database_url: str, amqp_url: str, captcha_emulator: str
) -> None:
    settings = captcha_settings(
        captcha_emulator,
        "always",
        captcha_provider="hcaptcha",
        captcha_siteverify_url=f"{captcha_emulator}/siteverify",
    )
    async with auth_app(database_url, amqp_url, **settings) as app, client_from(app) as client:
        asked = await client.post("/auth/forget-password", json={"email": new_email()})
        assert asked.status_code == 428 and asked.json()["provider"] == "hcaptcha"
        once = await token(captcha_emulator)
        assert (
            await client.post("/auth/forget-password", json={"email": new_email(), "captcha_token": once})
        ).status_code == 202
        reused = await client.post(
            "/auth/forget-password", json={"email": new_email(), "captcha_token": once}
        )
        assert reused.json()["error_codes"] == ["already-seen-response"]


def test_settings_refuse_a_check_without_keys_or_after_the_back_off() -> None:
    with pytest.raises(ValidationError, match="AUTH_CAPTCHA_SITE_KEY"):
        Settings(captcha_mode="always")
    with pytest.raises(ValidationError, match="AUTH_CAPTCHA_FAILURE_THRESHOLD"):
        Settings(
            captcha_mode="adaptive",
            captcha_site_key="k",
            captcha_secret_key="s",
            captcha_failure_threshold=5,
            failures_before_backoff=5,
        )
    assert Settings(captcha_provider="hcaptcha").captcha_verify_url == "https://api.hcaptcha.com/siteverify"
