"""What protects every page, checked over plain HTTP in this process: security headers, CSRF on
every form, `return_to` only to allowlisted origins, the session cookies' flags."""

from __future__ import annotations

import json
from collections.abc import Callable
from http.cookies import SimpleCookie

import httpx
import pytest
from starlette.responses import Response

from conftest import APP_ORIGIN, PAGES, csrf_of
from gatehouse_web.security import safe_return_to
from gatehouse_web.session import Sessions

FORMS = [
    "/register",
    "/login",
    "/login/code/send",
    "/login/code",
    "/login/mfa",
    "/login/mfa/provider",
    "/forgot-password",
    "/reset-password",
    "/verify-email",
    "/billing/subscribe",
    "/billing/change",
    "/billing/cancellation",
    "/billing/resume",
    "/billing/manage",
    "/logout",
    "/account/resend-verification",
    "/account/profile",
    "/account/password",
    "/account/sessions/6c1f6a3e-8f0e-4c1e-9a55-3f4f0c7b2a10/revoke",
    "/account/sessions/revoke-all",
    "/account/security/totp/setup",
    "/account/security/totp/confirm",
    "/account/security/totp/off",
    "/account/security/recovery-codes",
    "/account/security/recovery-codes.txt",
    "/account/reauthenticate",
    "/account/email",
    "/account/identities/github/unlink",
    "/account/deactivate",
    "/account/delete",
    "/login/cancel-deletion",
]


async def test_every_page_and_error_carries_a_strict_csp_and_the_security_headers(
    web: httpx.AsyncClient,
) -> None:
    for path in [*PAGES, "/no-such-page", "/static/app.css", "/theme.css", "/healthz"]:
        response = await web.get(path)
        assert response.status_code in (200, 404), path
        csp = response.headers["content-security-policy"]
        assert "script-src 'self';" in csp and "'unsafe-inline'" not in csp, path
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp, path
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["referrer-policy"] == "no-referrer", path  # links carry tokens
        assert response.headers["x-frame-options"] == "DENY", path
        assert "strict-transport-security" not in response.headers, path  # only in production
        if not path.startswith(("/static", "/theme")):
            assert response.headers["cache-control"] == "no-store", path


async def test_pages_have_no_inline_script_or_style(web: httpx.AsyncClient) -> None:
    for path in [*PAGES, "/no-such-page"]:
        html = (await web.get(path)).text
        assert "<script>" not in html and "<script " not in html.replace('<script src="/static/', ""), path
        assert "style=" not in html and "<style" not in html, path


async def test_production_adds_hsts(make_web: Callable[..., object]) -> None:
    web = await make_web(  # type: ignore[misc]
        environment="production", secret_key="s" * 40, public_url="https://id.example.test"
    )
    response = await web.get("/login")
    assert response.headers["strict-transport-security"].startswith("max-age=31536000")


@pytest.mark.parametrize("path", FORMS)
async def test_every_form_is_refused_without_a_valid_csrf_token(web: httpx.AsyncClient, path: str) -> None:
    await web.get("/login")  # the browser has its CSRF cookie
    missing = await web.post(path, data={"email": "a@example.com", "password": "x" * 20, "token": "t" * 20})
    forged = await web.post(path, data={"csrf_token": "0" * 64, "email": "a@example.com"})
    for response in (missing, forged):
        assert response.status_code == 403, (path, response.status_code)
        assert "text/html" in response.headers["content-type"]
        assert "This form has expired" in response.text


async def test_a_csrf_token_is_bound_to_its_browser(make_web: Callable[..., object]) -> None:
    """Another browser's valid token (a signed double submit) does not pass with my cookie."""
    mine, theirs = await make_web(), await make_web()  # type: ignore[misc]
    await mine.get("/login")
    their_token = csrf_of((await theirs.get("/login")).text)
    response = await mine.post("/forgot-password", data={"csrf_token": their_token, "email": "a@example.com"})
    assert response.status_code == 403


OPEN_REDIRECTS = [
    "https://evil.example",
    "http://evil.example/account",
    "//evil.example",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/%2F%2Fevil.example",
    "/%252F%252Fevil.example",
    "%2F%2Fevil.example",
    "/%5Cevil.example",
    "https:evil.example",
    "javascript:alert(1)",
    "data:text/html,hi",
    f"{APP_ORIGIN}@evil.example/",
    f"{APP_ORIGIN}.evil.example/",
    "http://app.example.test/",  # the allowlisted host, but not its scheme
    " /account",
    "/account\r\nLocation: https://evil.example",
    "/\tevil",
]


@pytest.mark.parametrize("target", OPEN_REDIRECTS)
def test_return_to_refuses_every_open_redirect(target: str) -> None:
    assert safe_return_to(target, [APP_ORIGIN, "http://web.test"]) == "/account"


@pytest.mark.parametrize(
    "target", ["/account", "/billing?plan=pro", f"{APP_ORIGIN}/dashboard?x=1", APP_ORIGIN]
)
def test_return_to_keeps_local_paths_and_the_allowlisted_app(target: str) -> None:
    assert safe_return_to(target, [APP_ORIGIN]) == target


@pytest.mark.parametrize("target", OPEN_REDIRECTS[:8])
async def test_a_sign_in_never_redirects_off_the_allowlist(
    make_web: Callable[..., object], target: str
) -> None:
    tokens = {"access_token": "a.b.c", "expires_in": 900, "refresh_token": "r" * 43, "token_type": "Bearer"}
    api = httpx.MockTransport(lambda request: httpx.Response(200, json=tokens))
    web = await make_web(api=api)  # type: ignore[misc]
    page = await web.get("/login", params={"return_to": target})
    assert 'name="return_to" value="/account"' in page.text
    signed_in = await web.post(
        "/login",
        data={
            "csrf_token": csrf_of(page.text),
            "login": "ada@example.com",
            "password": "pw",
            "return_to": target,
        },
    )
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/account"


async def test_a_sign_in_returns_to_the_allowlisted_app(make_web: Callable[..., object]) -> None:
    tokens = {"access_token": "a.b.c", "expires_in": 900, "refresh_token": "r" * 43, "token_type": "Bearer"}
    web = await make_web(api=httpx.MockTransport(lambda request: httpx.Response(200, json=tokens)))  # type: ignore[misc]
    page = await web.get("/login", params={"return_to": f"{APP_ORIGIN}/projects"})
    response = await web.post(
        "/login",
        data={
            "csrf_token": csrf_of(page.text),
            "login": "ada",
            "password": "pw",
            "return_to": f"{APP_ORIGIN}/projects",
        },
    )
    assert response.headers["location"] == f"{APP_ORIGIN}/projects"
    assert APP_ORIGIN in response.headers["content-security-policy"].split("form-action")[1].split(";")[0]


def _cookies(response: Response) -> dict[str, dict[str, str | bool]]:
    found: dict[str, dict[str, str | bool]] = {}
    for name, value in response.raw_headers:
        if name == b"set-cookie":
            cookie = SimpleCookie(value.decode())
            for key, morsel in cookie.items():
                found[key] = {
                    **{k: morsel[k] for k in ("path", "samesite", "max-age")},
                    "httponly": bool(morsel["httponly"]),
                    "secure": bool(morsel["secure"]),
                }
    return found


@pytest.mark.parametrize(("environment", "secure"), [("production", True), ("development", False)])
def test_session_cookies_are_httponly_lax_path_scoped_and_secure_outside_local_dev(
    environment: str, secure: bool
) -> None:
    from conftest import web_settings

    settings = web_settings(
        environment=environment, secret_key="k" * 40, public_url="https://id.example.test"
    )
    response = Response()
    Sessions(settings).sign_in(
        response, {"access_token": "a.b.c", "expires_in": 900, "refresh_token": "r" * 43}
    )
    cookies = _cookies(response)
    assert set(cookies) == {"gh_session", "gh_refresh", "gh_csrf"}
    for cookie in cookies.values():
        assert cookie["httponly"] is True and str(cookie["samesite"]).lower() == "lax"
        assert cookie["secure"] is secure
    assert cookies["gh_refresh"]["path"] == "/session"  # only the refresh and sign-out routes see it
    assert cookies["gh_session"]["path"] == "/"
    assert int(str(cookies["gh_session"]["max-age"])) <= 900


def test_the_access_token_is_sealed_in_its_cookie() -> None:
    from conftest import web_settings

    response = Response()
    Sessions(web_settings()).sign_in(
        response, {"access_token": "eyJ.secret.sig", "expires_in": 900, "refresh_token": "r" * 43}
    )
    sealed = _cookies(response)
    assert all("eyJ" not in value.decode() for name, value in response.raw_headers if b"gh_session" in value)
    assert sealed["gh_session"]["httponly"] is True
    assert json.dumps(sealed).count("secret") == 0
