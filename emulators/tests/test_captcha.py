"""The CAPTCHA emulator over real HTTP: Turnstile's and hCaptcha's siteverify answers (form and
JSON bodies), single-use tokens, the documented test keys, the widget script, recorded requests and
faults."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from gatehouse_emulators.captcha import (
    ALWAYS_BLOCKS_SITE_KEY,
    ALWAYS_FAILS_SECRET,
    ALWAYS_PASSES_SECRET,
    DEV_SECRET_KEY,
    DEV_SITE_KEY,
    DUPLICATE_SECRET,
    create_app,
)
from gatehouse_platform.testing import serve_in_thread

TURNSTILE = "/turnstile/v0/siteverify"
HCAPTCHA = "/siteverify"


@pytest.fixture
def captcha() -> Iterator[httpx.Client]:
    with serve_in_thread(create_app()) as base, httpx.Client(base_url=base, timeout=10) as http:
        yield http


def issue(http: httpx.Client, **fields: str) -> str:
    response = http.post("/_emulator/tokens", json=fields)
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


def test_a_token_verifies_once_then_is_a_duplicate(captcha: httpx.Client) -> None:
    token = issue(captcha, sitekey=DEV_SITE_KEY, hostname="localhost", action="login")
    form = {"secret": DEV_SECRET_KEY, "response": token, "remoteip": "203.0.113.9"}
    first = captcha.post(TURNSTILE, data=form).json()
    assert first["success"] is True
    assert first["hostname"] == "localhost"
    assert first["action"] == "login"
    assert first["error-codes"] == []
    assert first["challenge_ts"].endswith("Z")
    assert captcha.post(TURNSTILE, data=form).json() == {
        "success": False,
        "error-codes": ["timeout-or-duplicate"],
        "messages": [],
    }


def test_hcaptcha_answers_in_its_own_words(captcha: httpx.Client) -> None:
    token = issue(captcha, sitekey=DEV_SITE_KEY)
    form = {"secret": DEV_SECRET_KEY, "response": token}
    first = captcha.post(HCAPTCHA, data=form).json()
    assert first["success"] is True and first["credit"] is False and "action" not in first
    assert captcha.post(HCAPTCHA, data=form).json()["error-codes"] == ["already-seen-response"]


def test_turnstile_takes_json_too(captcha: httpx.Client) -> None:
    token = issue(captcha)
    answer = captcha.post(TURNSTILE, json={"secret": DEV_SECRET_KEY, "response": token}).json()
    assert answer["success"] is True


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"response": "x"}, "missing-input-secret"),
        ({"secret": DEV_SECRET_KEY}, "missing-input-response"),
        ({"secret": "not-a-secret", "response": "x"}, "invalid-input-secret"),
        ({"secret": DEV_SECRET_KEY, "response": "never-issued"}, "invalid-input-response"),
        ({"secret": ALWAYS_FAILS_SECRET, "response": "anything"}, "invalid-input-response"),
        ({"secret": DUPLICATE_SECRET, "response": "anything"}, "timeout-or-duplicate"),
    ],
)
def test_refusals_name_the_reason(captcha: httpx.Client, form: dict[str, str], code: str) -> None:
    answer = captcha.post(TURNSTILE, data=form)
    assert answer.status_code == 200
    assert answer.json()["success"] is False
    assert answer.json()["error-codes"] == [code]


# Any response passes with the always-passes test secret; Cloudflare's widget hands out this one
# under its test site keys (developers.cloudflare.com/turnstile/troubleshooting/testing).
TURNSTILE_TEST_TOKEN = "XXXX.DUMMY.TOKEN.XXXX"


def test_the_test_secret_always_passes_and_keys_do_not_mix(captcha: httpx.Client) -> None:
    for _ in range(2):
        assert captcha.post(
            TURNSTILE, data={"secret": ALWAYS_PASSES_SECRET, "response": TURNSTILE_TEST_TOKEN}
        ).json()["success"]
    assert (
        captcha.post("/_emulator/keys", json={"sitekey": "other-site", "secret": "other-secret"}).status_code
        == 201
    )
    token = issue(captcha, sitekey="other-site")
    assert captcha.post(TURNSTILE, data={"secret": DEV_SECRET_KEY, "response": token}).json()[
        "error-codes"
    ] == ["invalid-input-response"]


def test_the_widget_script_and_its_tokens(captcha: httpx.Client) -> None:
    script = captcha.get("/turnstile/v0/api.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "cf-turnstile-response" in script.text
    assert captcha.get("/1/api.js").status_code == 200
    widget = captcha.post(
        "/widget/token", data={"sitekey": DEV_SITE_KEY, "hostname": "localhost", "action": "login"}
    )
    assert widget.status_code == 200
    assert widget.headers["access-control-allow-origin"] == "*"
    token = widget.json()["token"]
    assert captcha.post(TURNSTILE, data={"secret": DEV_SECRET_KEY, "response": token}).json()["success"]
    blocked = captcha.post("/widget/token", data={"sitekey": ALWAYS_BLOCKS_SITE_KEY})
    assert blocked.status_code == 403


def test_requests_are_recorded_and_faults_apply_once(captcha: httpx.Client) -> None:
    assert captcha.post("/_emulator/faults", json={"status": 500}).status_code == 201
    assert captcha.post(TURNSTILE, data={"secret": ALWAYS_PASSES_SECRET, "response": "x"}).status_code == 500
    assert captcha.post(TURNSTILE, data={"secret": ALWAYS_PASSES_SECRET, "response": "x"}).status_code == 200
    assert captcha.post("/_emulator/faults", json={"delay_seconds": 0.5}).status_code == 201
    started = time.monotonic()
    assert captcha.post(TURNSTILE, data={"secret": ALWAYS_PASSES_SECRET, "response": "x"}).status_code == 200
    assert time.monotonic() - started >= 0.5
    recorded = captcha.get("/_emulator/requests").json()
    assert len(recorded) == 3
    assert recorded[0]["form"] == {"secret": ALWAYS_PASSES_SECRET, "response": "x"}
    assert recorded[0]["content_type"] == "application/x-www-form-urlencoded"
    assert captcha.post("/_emulator/reset").status_code == 204
    assert captcha.get("/_emulator/requests").json() == []
