"""Bot checks on the sign-in, registration and forgotten-password pages, in this process (the API
faked): the widget shows from the start in `always` mode and after a 428 `captcha-required` in
`adaptive` mode, its token reaches the API as `captcha_token`, each refusal has its message, and the
CSP allows the widget's origin. The browser journey against the real system is test_browser_captcha.py."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from conftest import PROBLEMS, SIGNED_IN, csrf_of

SCRIPT = "http://127.0.0.1:8092/turnstile/v0/api.js"
WIDGET = {"provider": "turnstile", "site_key": "site-key-1"}
FORMS = [
    ("/login", "login", {"login": "ada@example.com", "password": "pw"}),
    ("/register", "register", {"email": "ada@example.com", "username": "ada", "password": "long enough pw"}),
    ("/forgot-password", "reset", {"email": "ada@example.com"}),
]


class FakeApi:
    """Answers /auth/captcha with `mode`; a form's call with a challenge until a token comes."""

    def __init__(self, mode: str, refusal: tuple[int, str] = (428, "captcha-required")) -> None:
        self.mode = mode
        self.refusal = refusal
        self.bodies: list[dict[str, object]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/auth/captcha":
            on = self.mode != "off"
            return httpx.Response(
                200, json={"mode": self.mode, **(WIDGET if on else {"provider": None, "site_key": None})}
            )
        body = json.loads(request.content)
        self.bodies.append(body)
        if not body.get("captcha_token"):
            status, slug = self.refusal
            return httpx.Response(
                status,
                json={"type": PROBLEMS + slug, "title": slug, "status": status, "action": "x", **WIDGET},
            )
        if request.url.path == "/auth/login":
            return httpx.Response(200, json=SIGNED_IN)
        return httpx.Response(202, json={"status": "accepted"})


def widget_in(html: str, action: str) -> bool:
    return (
        f'<div class="cf-turnstile" data-sitekey="site-key-1" data-action="{action}"></div>' in html
        and f'<script src="{SCRIPT}" async defer></script>' in html
    )


@pytest.mark.parametrize(("path", "action", "fields"), FORMS)
async def test_adaptive_shows_the_widget_once_asked_and_passes_its_token_on(
    make_web: Callable[..., object], path: str, action: str, fields: dict[str, str]
) -> None:
    api = FakeApi("adaptive")
    web = await make_web(api=httpx.MockTransport(api), captcha_script_url=SCRIPT)  # type: ignore[misc]
    page = await web.get(path)
    assert not widget_in(page.text, action)
    asked = await web.post(path, data={"csrf_token": csrf_of(page.text), **fields})
    assert asked.status_code == 400
    assert "Please confirm you are not a robot with the check below, then send the form again." in asked.text
    assert widget_in(asked.text, action)
    assert "captcha_token" not in api.bodies[-1]
    done = await web.post(
        path, data={"csrf_token": csrf_of(asked.text), **fields, "cf-turnstile-response": "tok-123"}
    )
    assert done.status_code in (200, 303), done.text
    assert api.bodies[-1]["captcha_token"] == "tok-123"


@pytest.mark.parametrize(("path", "action", "fields"), FORMS)
async def test_always_shows_the_widget_from_the_start(
    make_web: Callable[..., object], path: str, action: str, fields: dict[str, str]
) -> None:
    web = await make_web(api=httpx.MockTransport(FakeApi("always")), captcha_script_url=SCRIPT)  # type: ignore[misc]
    page = await web.get(path)
    assert widget_in(page.text, action)
    csp = page.headers["content-security-policy"]
    assert "script-src 'self' http://127.0.0.1:8092;" in csp
    assert "frame-src http://127.0.0.1:8092;" in csp
    assert "connect-src 'self' http://127.0.0.1:8092;" in csp


@pytest.mark.parametrize(
    ("refusal", "message"),
    [
        ((428, "captcha-failed"), "The check that you are not a robot did not pass. Please do it again"),
        ((503, "captcha-unavailable"), "We cannot check that you are not a robot right now."),
    ],
)
async def test_a_refused_or_unavailable_check_says_so(
    make_web: Callable[..., object], refusal: tuple[int, str], message: str
) -> None:
    api = FakeApi("always", refusal)
    web = await make_web(api=httpx.MockTransport(api), captcha_script_url=SCRIPT)  # type: ignore[misc]
    page = await web.get("/login")
    answer = await web.post(
        "/login", data={"csrf_token": csrf_of(page.text), "login": "ada", "password": "pw"}
    )
    assert answer.status_code == 400
    assert message in answer.text
    assert widget_in(answer.text, "login")


async def test_pages_speak_french_about_the_check(make_web: Callable[..., object]) -> None:
    web = await make_web(api=httpx.MockTransport(FakeApi("adaptive")), captcha_script_url=SCRIPT)  # type: ignore[misc]
    headers = {"Accept-Language": "fr"}
    page = await web.get("/login", headers=headers)
    asked = await web.post(
        "/login", data={"csrf_token": csrf_of(page.text), "login": "ada", "password": "pw"}, headers=headers
    )
    assert "robot" in asked.text and "Please confirm" not in asked.text


async def test_without_a_script_url_the_csp_is_unchanged(make_web: Callable[..., object]) -> None:
    web = await make_web(api=httpx.MockTransport(FakeApi("always")))  # type: ignore[misc]
    page = await web.get("/login")
    assert "frame-src" not in page.headers["content-security-policy"]
    assert "cf-turnstile" not in page.text


def test_a_sign_in_stopped_at_the_bot_check_reads_so_in_the_security_activity() -> None:
    from gatehouse_web.pages.security import _how  # the words of the audit trail's `method`

    assert _how("captcha", lambda text, **_: text) == "Bot check not passed"
