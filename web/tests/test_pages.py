"""The pages in this process: what a person sees for each kind of API answer (field errors,
throttling, an API that is down), friendly error pages, and the translations."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from babel.messages.pofile import read_po

from conftest import csrf_of
from gatehouse_web.i18n import LOCALE_DIR, choose_locale

WEB = Path(__file__).resolve().parents[1]


def api_answering(
    status: int, body: dict[str, object], headers: dict[str, str] | None = None
) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(status, json=body, headers=headers))


async def test_a_422_shows_each_message_next_to_its_field(make_web: Callable[..., object]) -> None:
    problem = {
        "type": "about:blank",
        "title": "Validation failed",
        "status": 422,
        "errors": {
            "password": "Password must be at least 12 characters.",
            "username": "String should match pattern",
        },
    }
    web = await make_web(api=api_answering(422, problem))  # type: ignore[misc]
    page = await web.get("/register")
    response = await web.post(
        "/register",
        data={
            "csrf_token": csrf_of(page.text),
            "email": "ada@example.com",
            "username": "a!",
            "password": "short",
        },
    )
    assert response.status_code == 400
    html = response.text
    field = html.split('<label for="f-password">')[1].split("</div>")[0]
    assert '<p class="error" id="f-password-error">Password must be at least 12 characters.</p>' in field
    assert 'aria-invalid="true"' in field and "f-password-error" in field
    assert 'id="f-username-error"' in html.split('<label for="f-username">')[1].split("</div>")[0]
    assert 'value="ada@example.com"' in html  # what was typed stays, except the password
    assert 'role="alert"' in html and 'href="#f-password"' in html  # the summary links to the field


async def test_sign_up_names_a_missing_field_and_the_api_s_field_errors_at_once(
    make_web: Callable[..., object],
) -> None:
    """A field left empty is no reason to keep the others' problems back: the API is asked anyway
    and its answer shows beside the page's own "enter your email"."""
    sent: list[dict[str, object]] = []

    def api(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        errors = {"email": "value is not a valid email address", "password": "Use at least 8 characters."}
        return httpx.Response(
            422, json={"type": "about:blank", "title": "Validation failed", "status": 422, "errors": errors}
        )

    web = await make_web(api=httpx.MockTransport(api))  # type: ignore[misc]
    page = await web.get("/register")
    response = await web.post(
        "/register",
        data={"csrf_token": csrf_of(page.text), "email": "", "username": "ada", "password": "short"},
    )
    assert response.status_code == 400
    assert sent == [{"email": "", "username": "ada", "password": "short"}]
    html = response.text
    email = html.split('<label for="f-email">')[1].split("</div>")[0]
    assert "Enter your email address." in email
    password = html.split('<label for="f-password">')[1].split("</div>")[0]
    assert "Use at least 8 characters." in password


async def test_sign_up_shows_one_page_whether_or_not_the_address_has_an_account(
    make_web: Callable[..., object],
) -> None:
    """The API answers 202 either way; the page says only that an email is on its way."""
    accepted = {"status": "verification_sent", "detail": "Check your inbox."}
    web = await make_web(api=api_answering(202, accepted))  # type: ignore[misc]
    page = await web.get("/register")
    response = await web.post(
        "/register",
        data={
            "csrf_token": csrf_of(page.text),
            "email": "ada@example.com",
            "username": "ada",
            "password": "purple tuesday lighthouse",
        },
    )
    assert response.status_code == 200
    assert "Check your email" in response.text
    assert "We have sent an email to ada@example.com." in response.text
    assert "already has an account, a way to sign in" in response.text


async def test_throttling_says_when_to_try_again(make_web: Callable[..., object]) -> None:
    problem = {
        "type": "https://gatehouse.dev/problems/too-many-requests",
        "title": "Too many requests",
        "status": 429,
    }
    web = await make_web(api=api_answering(429, problem, {"Retry-After": "42"}))  # type: ignore[misc]
    page = await web.get("/login")
    response = await web.post(
        "/login", data={"csrf_token": csrf_of(page.text), "login": "ada", "password": "pw"}
    )
    assert response.status_code == 400
    assert "Please wait 42 seconds, then try again." in response.text


async def test_wrong_credentials_say_so_without_telling_which(make_web: Callable[..., object]) -> None:
    problem = {
        "type": "https://gatehouse.dev/problems/invalid-credentials",
        "title": "Invalid credentials",
        "status": 401,
    }
    web = await make_web(api=api_answering(401, problem))  # type: ignore[misc]
    page = await web.get("/login")
    response = await web.post(
        "/login", data={"csrf_token": csrf_of(page.text), "login": "ada", "password": "pw"}
    )
    assert "That email, username or password is not right." in response.text
    assert 'value="ada"' in response.text
    assert "gh_session" not in response.headers.get("set-cookie", "")


async def test_an_unreachable_api_is_a_friendly_503_never_a_stack_trace(web: httpx.AsyncClient) -> None:
    page = await web.get("/forgot-password")
    response = await web.post(
        "/forgot-password", data={"csrf_token": csrf_of(page.text), "email": "a@example.com"}
    )
    assert response.status_code == 503
    assert "text/html" in response.headers["content-type"]
    assert "We cannot reach our service right now" in response.text
    assert "Traceback" not in response.text and "httpx" not in response.text


async def test_unknown_pages_are_a_friendly_404(web: httpx.AsyncClient) -> None:
    for path in ("/nowhere", "/account/../../etc/passwd", "/login?return_to=" + "x" * 5000):
        response = await web.get(path)
        assert response.status_code == 404, path
        assert "Page not found" in response.text and "<html" in response.text


async def test_the_account_page_sends_a_stranger_through_the_quiet_refresh_to_sign_in(
    web: httpx.AsyncClient,
) -> None:
    response = await web.get("/account")
    assert response.status_code == 303
    assert response.headers["location"] == "/session/refresh?return_to=%2Faccount"
    refresh = await web.get(response.headers["location"])
    assert refresh.status_code == 303 and refresh.headers["location"] == "/login?return_to=%2Faccount"


async def test_the_verification_link_spends_nothing_until_the_button_is_pressed(
    make_web: Callable[..., object],
) -> None:
    seen: list[httpx.Request] = []

    def api(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"status": "verified"})

    web = await make_web(api=httpx.MockTransport(api))  # type: ignore[misc]
    page = await web.get("/verify-email", params={"token": "tok-abcdefghij"})
    assert page.status_code == 200 and seen == []  # a mail scanner's GET changes nothing
    assert 'name="token" value="tok-abcdefghij"' in page.text
    confirmed = await web.post(
        "/verify-email", data={"csrf_token": csrf_of(page.text), "token": "tok-abcdefghij"}
    )
    assert "Your email address is confirmed" in confirmed.text
    assert [(r.method, r.url.path) for r in seen] == [("POST", "/auth/verify")]


async def test_pages_speak_french_when_the_browser_asks(web: httpx.AsyncClient) -> None:
    response = await web.get("/login", headers={"Accept-Language": "fr-CA,fr;q=0.9,en;q=0.5"})
    assert '<html lang="fr">' in response.text and response.headers["content-language"] == "fr"
    assert "Se connecter" in response.text and "Mot de passe oublié ?" in response.text
    english = await web.get("/login", headers={"Accept-Language": "de-DE,de;q=0.9"})
    assert '<html lang="en">' in english.text and "Forgot your password?" in english.text


@pytest.mark.parametrize(
    ("profile", "header", "expected"),
    [
        ("fr", "en-US", "fr"),
        ("fr-FR", None, "fr"),
        (None, "fr;q=0.4, en;q=0.8", "en"),
        ("de", "fr", "fr"),
        (None, "*", "en"),
        (None, "xx-!!, fr", "fr"),
        ("en", "fr", "en"),
    ],
)
def test_the_locale_is_the_profiles_else_the_browsers(
    profile: str | None, header: str | None, expected: str
) -> None:
    assert choose_locale(profile, header, "en") == expected


def test_every_message_is_translated_to_french_and_the_template_is_current(tmp_path: Path) -> None:
    """The committed messages.pot is what the sources say (re-extract after changing a string),
    and fr has a translation for every message, with the same %(placeholders)s."""
    fresh = tmp_path / "messages.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "_",
            "--no-location",
            "--sort-output",
            "--omit-header",
            "-o",
            str(fresh),
            "src/gatehouse_web",
        ],
        cwd=WEB,
        check=True,
        capture_output=True,
    )
    with fresh.open("rb") as source:
        wanted = {m.id for m in read_po(source) if m.id}
    with (LOCALE_DIR / "messages.pot").open("rb") as source:
        committed = {m.id for m in read_po(source) if m.id}
    assert wanted == committed, (
        f"re-extract messages.pot: new {wanted - committed}, gone {committed - wanted}"
    )
    with (LOCALE_DIR / "fr" / "LC_MESSAGES" / "messages.po").open("rb") as source:
        french = {m.id: m.string for m in read_po(source, locale="fr") if m.id}
    assert set(french) == wanted
    for message, translation in french.items():
        assert translation, f"no French for {message!r}"
        assert sorted(re.findall(r"%\(\w+\)s", str(message))) == sorted(
            re.findall(r"%\(\w+\)s", str(translation))
        )
