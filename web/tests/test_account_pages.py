"""The account page's email change, linked Google/GitHub accounts and deactivation, the devices
page's names, and the person's address passed on to the API, over plain HTTP in this process with
auth-service's endpoints stood in for by a small fake that keeps their state and answers as auth
does (reauthentication-required, last-sign-in-method, email-taken…). The whole journeys run in
Chromium against the real system in test_browser_account.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from conftest import SIGNED_IN, USER, csrf_of, problem, web_settings
from gatehouse_web.api import Api
from gatehouse_web.main import create_app

CHROME_ON_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36"
)
SAFARI_ON_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1"
)
STATE_COOKIE = "gatehouse_oauth_github=sealed-state; HttpOnly; Max-Age=600; Path=/auth/github; SameSite=lax"


class FakeAuth:
    """auth-service's account endpoints as far as these pages use them."""

    def __init__(
        self, *, recent: bool = True, has_password: bool = True, linked: tuple[str, ...] = ()
    ) -> None:
        self.recent, self.has_password = recent, has_password
        self.user: dict[str, Any] = dict(USER)
        self.linked = {
            p: {"provider": p, "email": f"ada@{p}.example", "email_verified": True} for p in linked
        }
        self.active = True
        self.billing_down = False
        self.calls: list[tuple[str, str, dict[str, Any], httpx.Headers]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else {}
        self.calls.append((request.method, request.url.path, body, request.headers))
        method, path = request.method, request.url.path
        if path == "/auth/login":
            return httpx.Response(200, json=SIGNED_IN)
        if not self.active:
            return problem(401, "unauthorized")
        if path == "/auth/me":
            return httpx.Response(200, json=self.user)
        if path == "/auth/mfa":
            return httpx.Response(200, json={"totp": False, "recovery_codes_left": 0, "methods": []})
        if path == "/auth/identities":
            return httpx.Response(
                200, json={"items": list(self.linked.values()), "has_password": self.has_password}
            )
        if path == "/auth/sessions":
            return httpx.Response(
                200, json={"items": [session(True, CHROME_ON_LINUX), session(False, SAFARI_ON_IPHONE)]}
            )
        if path == "/auth/me/export":
            return httpx.Response(200, json={"service": "auth-service", "user": self.user})
        if path == "/billing/me/export":
            if self.billing_down:
                return problem(503, "service-unavailable")
            return httpx.Response(200, json={"service": "billing-service", "subscriptions": []})
        if path in ("/auth/change-email", "/auth/deactivate") and not self.recent:
            return problem(401, "reauthentication-required")
        checks_password = path in ("/auth/change-email", "/auth/deactivate") and self.has_password
        if checks_password and body.get("password") != "right":
            return problem(401, "invalid-credentials")
        if path == "/auth/change-email":
            if body["new_email"] == "taken@example.com":
                return problem(409, "email-taken")
            self.user = {**self.user, "email": body["new_email"], "email_verified": False}
            return httpx.Response(200, json=self.user)
        if path == "/auth/deactivate":
            self.active = False
            return httpx.Response(200, json={"status": "deactivated"})
        if method == "POST" and path in ("/auth/github/link", "/auth/google/link"):
            provider = path.split("/")[2]
            target = request.url.params["redirect_to"]
            assert target == f"http://127.0.0.1:8000/session/oauth/{provider}/linked", target
            return httpx.Response(
                200,
                json={"authorization_url": f"https://{provider}.example/authorize?state=s1"},
                headers={"set-cookie": STATE_COOKIE},
            )
        if method == "DELETE" and path.startswith("/auth/identities/"):
            provider = path.rsplit("/", 1)[1]
            if provider not in self.linked:
                return problem(404, "identity-not-found")
            if not self.has_password and len(self.linked) == 1:
                return problem(409, "last-sign-in-method")
            del self.linked[provider]
            return httpx.Response(204)
        if path == "/auth/reauthenticate":
            self.recent = True
            return httpx.Response(
                200, json={"access_token": "acc-2", "refresh_token": "ref-2", "expires_in": 900}
            )
        return problem(404, "not-found")


def session(current: bool, agent: str) -> dict[str, Any]:
    return {
        "id": "6c1f6a3e-8f0e-4c1e-9a55-3f4f0c7b2a1" + ("0" if current else "1"),
        "current": current,
        "user_agent": agent,
        "ip": "198.51.100.7",
        "created_at": "2026-01-02T03:04:05+00:00",
        "last_used_at": "2026-01-02T03:04:05+00:00",
    }


async def signed_in(make_web: Callable[..., object], auth: FakeAuth) -> httpx.AsyncClient:
    web = await make_web(api=httpx.MockTransport(auth))  # type: ignore[misc]
    assert isinstance(web, httpx.AsyncClient)
    page = await web.get("/login")
    answer = await web.post(
        "/login", data={"csrf_token": csrf_of(page.text), "login": "ada", "password": "pw"}
    )
    assert answer.status_code == 303
    return web


async def post_form(web: httpx.AsyncClient, page: str, action: str, **data: str) -> httpx.Response:
    form = await web.get(page)
    return await web.post(action, data={"csrf_token": csrf_of(form.text), **data})


async def test_changing_the_email_says_a_link_went_to_the_new_address(
    make_web: Callable[..., object],
) -> None:
    auth = FakeAuth()
    web = await signed_in(make_web, auth)
    answer = await post_form(
        web, "/account", "/account/email", new_email="grace@example.com", password="right"
    )
    assert answer.status_code == 200
    assert "Your email address is now grace@example.com. We have sent a link to it" in answer.text
    assert "not confirmed yet" in answer.text
    assert ("POST", "/auth/change-email", {"new_email": "grace@example.com", "password": "right"}) in [
        c[:3] for c in auth.calls
    ]


async def test_an_email_change_is_refused_by_its_field(make_web: Callable[..., object]) -> None:
    web = await signed_in(make_web, FakeAuth())
    taken = await post_form(
        web, "/account", "/account/email", new_email="taken@example.com", password="right"
    )
    assert taken.status_code == 400
    assert 'id="f-new_email-error">Another account already uses this email address.' in taken.text
    assert 'value="taken@example.com"' in taken.text  # kept in the field
    wrong = await post_form(web, "/account", "/account/email", new_email="new@example.com", password="wrong")
    assert 'id="f-password-error">Your current password is not right.' in wrong.text
    blank = await post_form(web, "/account", "/account/email", new_email="not-an-address", password="right")
    assert blank.status_code == 400 and 'id="f-new_email-error"' in blank.text


async def test_an_email_change_long_after_signing_in_asks_to_confirm_first(
    make_web: Callable[..., object],
) -> None:
    auth = FakeAuth(recent=False)
    web = await signed_in(make_web, auth)
    answer = await post_form(
        web, "/account", "/account/email", new_email="grace@example.com", password="right"
    )
    assert "Confirm it&#39;s you" in answer.text and 'name="return_to" value="/account"' in answer.text
    confirmed = await web.post(
        "/account/reauthenticate",
        data={
            "csrf_token": csrf_of(answer.text),
            "proof": "password",
            "password": "right",
            "return_to": "/account",
        },
    )
    assert confirmed.status_code == 303 and confirmed.headers["location"] == "/account?confirmed"
    again = await post_form(
        web, "/account?confirmed", "/account/email", new_email="grace@example.com", password="right"
    )
    assert "We have sent a link to it" in again.text


async def test_linking_github_goes_to_its_consent_page_with_auths_state_cookie(
    make_web: Callable[..., object],
) -> None:
    web = await signed_in(make_web, FakeAuth())
    account = await web.get("/account")
    assert "Link GitHub" in account.text and "Link Google" in account.text
    answer = await web.get("/account/identities/github/link", headers={"Sec-Fetch-Site": "same-origin"})
    assert answer.status_code == 303
    assert answer.headers["location"] == "https://github.example/authorize?state=s1"
    assert STATE_COOKIE in answer.headers.get_list("set-cookie")  # the browser brings it to the callback


async def test_another_site_cannot_start_a_link(make_web: Callable[..., object]) -> None:
    auth = FakeAuth()
    web = await signed_in(make_web, auth)
    refused = await web.get("/account/identities/github/link", headers={"Sec-Fetch-Site": "cross-site"})
    assert refused.status_code == 403
    assert not [c for c in auth.calls if c[1] == "/auth/github/link"]


async def test_back_from_the_provider_the_account_page_says_what_happened(
    make_web: Callable[..., object],
) -> None:
    web = await signed_in(make_web, FakeAuth(linked=("github",)))
    back = await web.get("/session/oauth/github/linked?linked=github")
    assert back.status_code == 303 and back.headers["location"] == "/account?linked=github"
    page = await web.get(back.headers["location"])
    assert "GitHub is linked: you can sign in with it." in page.text and "Unlink GitHub" in page.text
    in_use = await web.get("/session/oauth/github/linked?error=identity-in-use")
    page = await web.get(in_use.headers["location"])
    assert "That GitHub account is already linked to another account here." in page.text
    odd = await web.get("/session/oauth/github/linked?error=%3Cscript%3E")
    assert odd.headers["location"] == "/account?link_failed=github%3Afailed"
    assert (await web.get("/session/oauth/myspace/linked?linked=myspace")).status_code == 404


async def test_unlinking_the_last_way_to_sign_in_is_refused_with_a_clear_message(
    make_web: Callable[..., object],
) -> None:
    web = await signed_in(make_web, FakeAuth(has_password=False, linked=("github",)))
    refused = await post_form(web, "/account", "/account/identities/github/unlink")
    assert refused.status_code == 400
    assert "GitHub is the only way you can sign in, so it stays linked." in refused.text
    # No password to change: the page offers to set one by email instead of asking for the current one.
    assert 'action="/account/password"' not in refused.text and 'href="/forgot-password"' in refused.text
    assert "Unlink GitHub" in refused.text


async def test_unlinking_one_of_two_ways_to_sign_in(make_web: Callable[..., object]) -> None:
    auth = FakeAuth(linked=("github", "google"))
    web = await signed_in(make_web, auth)
    answer = await post_form(web, "/account", "/account/identities/github/unlink")
    assert answer.status_code == 200 and "GitHub is unlinked: it no longer signs you in." in answer.text
    assert "Link GitHub" in answer.text and "Unlink Google" in answer.text
    assert list(auth.linked) == ["google"]


async def test_deactivating_confirms_then_signs_out_with_a_message(make_web: Callable[..., object]) -> None:
    auth = FakeAuth(recent=False)
    web = await signed_in(make_web, auth)
    page = await web.get("/account/deactivate")
    assert page.status_code == 200 and "Deactivate your account" in page.text
    confirm = await web.post(
        "/account/deactivate", data={"csrf_token": csrf_of(page.text), "password": "right"}
    )
    assert 'name="return_to" value="/account/deactivate"' in confirm.text  # confirm it's you first
    await web.post(
        "/account/reauthenticate",
        data={
            "csrf_token": csrf_of(confirm.text),
            "proof": "password",
            "password": "right",
            "return_to": "/account/deactivate",
        },
    )
    wrong = await post_form(web, "/account/deactivate", "/account/deactivate", password="wrong")
    assert wrong.status_code == 400 and "Your password is not right." in wrong.text and auth.active
    done = await post_form(web, "/account/deactivate", "/account/deactivate", password="right")
    assert done.status_code == 303 and done.headers["location"] == "/account/deactivated"
    assert not auth.active
    forgotten = [c for c in done.headers.get_list("set-cookie") if c.startswith("gh_session=")]
    assert forgotten and "Max-Age=0" in forgotten[0]
    message = await web.get("/account/deactivated")
    assert "Your account is deactivated" in message.text and "signed out on every device" in message.text
    assert (await web.get("/account")).headers["location"].startswith("/session/refresh")


async def test_the_devices_page_names_browsers_and_systems(make_web: Callable[..., object]) -> None:
    web = await signed_in(make_web, FakeAuth())
    page = await web.get("/account/sessions")
    assert "<strong>Chrome on Linux</strong>" in page.text
    assert "<strong>Mobile Safari on iOS</strong>" in page.text
    assert "Mozilla/5.0" not in page.text
    french = await web.get("/account/sessions", headers={"Accept-Language": "fr"})
    assert "<strong>Chrome sous Linux</strong>" in french.text


async def forwarded_for_seen(peer: str, forwarded_for: str, **settings: object) -> str:
    """What the API hears of the person, for a sign-in from `peer` claiming `forwarded_for`."""
    seen: list[str] = []

    def api(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("x-forwarded-for", ""))
        return httpx.Response(200, json={"access_token": "a", "refresh_token": "r", "expires_in": 900})

    app = create_app(web_settings(**settings))
    app.state.web.api = Api(app.state.web.settings, transport=httpx.MockTransport(api))
    async with (
        LifespanManager(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(peer, 5000)), base_url="http://w.test"
        ) as web,
    ):
        form = await web.get("/login")
        await web.post(
            "/login",
            data={"csrf_token": csrf_of(form.text), "login": "ada", "password": "pw"},
            headers={"X-Forwarded-For": forwarded_for},
        )
    return seen[-1]


async def test_the_person_behind_the_trusted_gateway_is_named_to_the_api() -> None:
    seen = await forwarded_for_seen("10.1.2.3", "203.0.113.50, 198.51.100.7", trusted_proxies=["10.0.0.0/8"])
    assert (
        seen == "198.51.100.7"
    )  # the right-most address the gateway vouches for; the rest was the browser's


async def test_a_forwarded_for_from_an_untrusted_peer_is_ignored() -> None:
    assert await forwarded_for_seen("198.51.100.9", "203.0.113.50") == "198.51.100.9"


async def test_download_my_data_bundles_both_exports_in_one_file(make_web: Callable[..., object]) -> None:
    auth = FakeAuth()
    web = await signed_in(make_web, auth)
    account = await web.get("/account")
    assert "Download my data" in account.text
    answer = await post_form(web, "/account", "/account/export")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["content-disposition"].startswith('attachment; filename="gatehouse-my-data-')
    assert answer.headers["cache-control"] == "no-store"
    bundle = answer.json()
    assert bundle["format"] == "gatehouse-data-export/1"
    assert bundle["account"] == {"service": "auth-service", "user": USER}
    assert bundle["billing"] == {"service": "billing-service", "subscriptions": []}
    exports = [c for c in auth.calls if c[1].endswith("/me/export")]
    assert [(c[0], c[1]) for c in exports] == [("GET", "/auth/me/export"), ("GET", "/billing/me/export")]
    assert all(c[3]["authorization"] == f"Bearer {SIGNED_IN['access_token']}" for c in exports)


async def test_download_my_data_says_so_when_a_service_cannot_answer(
    make_web: Callable[..., object],
) -> None:
    auth = FakeAuth()
    auth.billing_down = True
    web = await signed_in(make_web, auth)
    answer = await post_form(web, "/account", "/account/export")
    assert answer.status_code == 503
    assert answer.headers["content-type"].startswith("text/html")
    assert "We could not gather your data just now." in answer.text
    assert (await web.post("/account/export", data={})).status_code in (400, 403)  # no CSRF token
