"""The admin console over plain HTTP in this process, auth-service's admin endpoints stood in for by
a fake that keeps a user's state and answers as auth does (404 user-not-found, 404
session-not-found, 409 last-admin, 403 for its own second-factor refusals): who may open it (an
admin whose sign-in proved a second factor), finding a user, their page, and every action through
its confirmation. The journeys run in Chromium against the real system in test_browser_admin.py."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from conftest import USER, csrf_of, problem
from gatehouse_web.pages.admin import token_amr

ADMIN = {**USER, "roles": ["admin"]}
TARGET_ID = "5d0c2a5e-1b7c-4c55-8f1e-2a9b3c4d5e6f"
SESSION_ID = "7e2f9a10-3c4b-4d5e-8f60-718293a4b5c6"
ADMIN_SESSION_ID = "8e2f9a10-3c4b-4d5e-8f60-718293a4b5c6"
FIREFOX_ON_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"


def access_token(amr: list[str]) -> str:
    """An access token as the web keeps it: a JWT (the API verifies it; the web reads `amr`)."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'EdDSA'})}.{part({'sub': USER['id'], 'amr': amr})}.c2ln"


class FakeAuth:
    """auth-service as the console sees it: the signed-in admin and one other user."""

    def __init__(
        self,
        *,
        roles: tuple[str, ...] = ("admin",),
        factor: bool = True,
        amr: tuple[str, ...] = ("mfa", "otp", "pwd"),
    ) -> None:
        self.me = {**USER, "roles": list(roles)}
        self.factor, self.amr = factor, list(amr)
        self.refuse_with: str | None = None  # auth's own 403 to every admin call
        self.target: dict[str, Any] = {
            "id": TARGET_ID,
            "email": "grace@example.com",
            "username": "grace",
            "email_verified": True,
            "is_active": True,
            "roles": [],
            "registration_method": "password",
            "created_at": "2026-01-02T03:04:05+00:00",
            "last_login_at": "2026-02-03T04:05:06+00:00",
            "profile": {"display_name": "Grace H."},
        }
        self.sessions = [
            {
                "id": SESSION_ID,
                "method": "password",
                "current": False,
                "user_agent": FIREFOX_ON_WINDOWS,
                "ip": "198.51.100.9",
                "created_at": "2026-02-03T04:05:06+00:00",
                "last_used_at": "2026-02-03T05:05:06+00:00",
                "expires_at": "2026-03-03T04:05:06+00:00",
            }
        ]
        self.mfa = {"totp": True, "recovery_codes_left": 8, "passkeys": 1, "methods": ["totp"]}
        self.calls: list[tuple[str, str, dict[str, Any], dict[str, str]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else {}
        method, path = request.method, request.url.path
        self.calls.append((method, path, body, dict(request.url.params)))
        if path == "/auth/login":
            token = access_token(self.amr)
            return httpx.Response(200, json={"access_token": token, "refresh_token": "r", "expires_in": 900})
        if path == "/auth/me":
            return httpx.Response(200, json=self.me)
        if path == "/auth/mfa":
            on = self.factor
            return httpx.Response(
                200, json={"totp": on, "recovery_codes_left": 10 if on else 0, "passkeys": 0}
            )
        if path == "/auth/sessions":  # the person's own devices page
            return httpx.Response(200, json={"items": []})
        if not path.startswith("/auth/admin/"):
            return problem(404, "not-found")
        if self.refuse_with:
            return problem(403, self.refuse_with)
        if path == "/auth/admin/users":
            query = request.url.params.get("q", "")
            found = [self.target] if query in self.target["email"] or query == TARGET_ID else []
            return httpx.Response(200, json={"items": found, "next_cursor": None})
        if path == "/auth/admin/audit-events":
            if request.url.params.get("cursor") == "bad":
                return problem(400, "invalid-cursor")
            trail = [
                {
                    "type": "sessions.revoked",
                    "occurred_at": "2026-02-04T04:05:06+00:00",
                    "actor_id": USER["id"],
                    "method": None,
                    "user_agent": None,
                    "ip": None,
                },
                {
                    "type": "sign_in.succeeded",
                    "occurred_at": "2026-02-03T04:05:06+00:00",
                    "actor_id": None,
                    "method": "password",
                    "user_agent": FIREFOX_ON_WINDOWS,
                    "ip": "198.51.100.9",
                },
            ]
            return httpx.Response(200, json={"items": trail, "next_cursor": "c2"})
        base = f"/auth/admin/users/{TARGET_ID}"
        if not path.startswith(base):
            return problem(404, "user-not-found")
        rest = path.removeprefix(base)
        if method == "DELETE" and rest == "":
            if self.target.get("erase_at"):
                return problem(409, "account-already-deleted")
            self.target.update(is_active=False, erase_at="2026-03-05T04:05:06+00:00")
            self.sessions = []
            return httpx.Response(202, json={"erase_at": self.target["erase_at"], "detail": "d"})
        if rest == "":
            return httpx.Response(200, json=self.target)
        if rest == "/sessions":
            return httpx.Response(200, json={"items": self.sessions, "next_cursor": None})
        if rest == "/identities":
            github = {"provider": "github", "email": "grace@github.example", "email_verified": True}
            return httpx.Response(
                200,
                json={"items": [{**github, "created_at": "2026-01-05T00:00:00+00:00"}], "has_password": True},
            )
        if rest == "/mfa":
            return httpx.Response(200, json=self.mfa)
        if method == "DELETE" and rest.startswith("/sessions/"):
            session_id = rest.rsplit("/", 1)[1]
            if session_id not in [s["id"] for s in self.sessions]:
                return problem(404, "session-not-found")
            self.sessions = [s for s in self.sessions if s["id"] != session_id]
            return httpx.Response(204)
        if rest == "/mfa/reset":
            self.mfa = {"totp": False, "recovery_codes_left": 0, "passkeys": 0, "methods": []}
            return httpx.Response(204)
        if rest == "/roles":
            if body["roles"] == [] and self.target["email"] == "last@example.com":
                return problem(409, "last-admin")
            self.target["roles"] = body["roles"]
            return httpx.Response(200, json=self.target)
        if rest in ("/deactivate", "/reactivate"):
            self.target["is_active"] = rest == "/reactivate"
            if rest == "/deactivate":
                self.sessions = []
            return httpx.Response(200, json=self.target)
        return problem(404, "not-found")

    def admin_calls(self, method: str) -> list[tuple[str, dict[str, Any]]]:
        return [
            (path, body) for m, path, body, _ in self.calls if m == method and path.startswith("/auth/admin")
        ]


async def signed_in(make_web: Callable[..., object], auth: FakeAuth, locale: str = "en") -> httpx.AsyncClient:
    web = await make_web(api=httpx.MockTransport(auth))  # type: ignore[misc]
    assert isinstance(web, httpx.AsyncClient)
    web.headers["Accept-Language"] = locale
    page = await web.get("/login")
    answer = await web.post(
        "/login", data={"csrf_token": csrf_of(page.text), "login": "ada", "password": "pw"}
    )
    assert answer.status_code == 303
    return web


async def confirm(web: httpx.AsyncClient, action: str, **extra: str) -> httpx.Response:
    """Press the action's button on the user's page, then "Yes, do it" on its confirmation."""
    page = await web.get(f"/admin/users/{TARGET_ID}")
    asked = await web.post(
        f"/admin/users/{TARGET_ID}/actions",
        data={"csrf_token": csrf_of(page.text), "action": action, **extra},
    )
    assert asked.status_code == 200, asked.text
    assert "Please confirm" in asked.text and 'name="confirmed" value="yes"' in asked.text
    return await web.post(
        f"/admin/users/{TARGET_ID}/actions",
        data={"csrf_token": csrf_of(asked.text), "action": action, "confirmed": "yes", **extra},
    )


def test_the_amr_is_read_from_the_token_and_anything_else_proves_nothing() -> None:
    assert token_amr(access_token(["mfa", "otp", "pwd"])) == ["mfa", "otp", "pwd"]
    for token in (
        "acc-1",
        "a.b.c",
        "a.bnVsbA.c",
        "",
        "a." + base64.urlsafe_b64encode(b'{"amr":"mfa"}').decode(),
    ):
        assert token_amr(token) == []


async def test_a_stranger_is_sent_to_sign_in(web: httpx.AsyncClient) -> None:
    for path in ("/admin", "/admin/users", f"/admin/users/{TARGET_ID}"):
        answer = await web.get(path)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/session/refresh?return_to=%2Fadmin")


async def test_someone_without_the_admin_role_gets_a_403_page(make_web: Callable[..., object]) -> None:
    auth = FakeAuth(roles=())
    web = await signed_in(make_web, auth)
    for path in ("/admin", "/admin/users", f"/admin/users/{TARGET_ID}"):
        answer = await web.get(path)
        assert answer.status_code == 403 and "Administrators only" in answer.text
    assert auth.admin_calls("GET") == []  # nothing asked of the admin API
    assert 'href="/admin"' not in (await web.get("/account/sessions")).text  # no link to it either


async def test_an_admin_without_a_second_factor_is_sent_to_set_one_up(
    make_web: Callable[..., object],
) -> None:
    web = await signed_in(make_web, FakeAuth(factor=False))
    answer = await web.get("/admin/users")
    assert answer.status_code == 403
    assert "Set up a second factor first" in answer.text and 'href="/account/security"' in answer.text


async def test_an_admin_whose_sign_in_did_not_use_the_second_factor_signs_in_again(
    make_web: Callable[..., object],
) -> None:
    web = await signed_in(make_web, FakeAuth(amr=("pwd",)))
    answer = await web.get("/admin/users")
    assert answer.status_code == 403
    assert "Sign in again with your second factor" in answer.text
    assert 'action="/logout"' in answer.text


@pytest.mark.parametrize(
    ("slug", "heading"),
    [
        ("mfa-sign-in-required", "Sign in again with your second factor"),
        ("mfa-enrollment-required", "Set up a second factor first"),
        ("forbidden", "Administrators only"),
    ],
)
async def test_auths_own_refusals_show_the_same_pages(
    make_web: Callable[..., object], slug: str, heading: str
) -> None:
    auth = FakeAuth()
    auth.refuse_with = slug
    web = await signed_in(make_web, auth)
    answer = await web.get("/admin/users")
    assert answer.status_code == 403 and heading in answer.text


async def test_an_admin_finds_a_user_by_email_or_id(make_web: Callable[..., object]) -> None:
    auth = FakeAuth()
    web = await signed_in(make_web, auth)
    home = await web.get("/admin")
    assert home.status_code == 303 and home.headers["location"] == "/admin/users"
    account = await web.get("/account/sessions")
    assert 'href="/admin"' in account.text  # admins find the console from their own pages
    found = await web.get("/admin/users", params={"q": " grace@ "})
    assert found.status_code == 200
    assert f'href="/admin/users/{TARGET_ID}"' in found.text and "grace@example.com" in found.text
    assert auth.calls[-1][3] == {"limit": "25", "q": "grace@"}
    by_id = await web.get("/admin/users", params={"q": TARGET_ID})
    assert "grace@example.com" in by_id.text
    nobody = await web.get("/admin/users", params={"q": "nobody"})
    assert "Nobody matches “nobody”." in nobody.text
    too_long = await web.get("/admin/users", params={"q": "x" * 400})
    assert too_long.status_code == 404  # refused before the API


async def test_a_users_page_shows_profile_sessions_factors_ways_in_and_trail(
    make_web: Callable[..., object],
) -> None:
    web = await signed_in(make_web, FakeAuth())
    page = await web.get(f"/admin/users/{TARGET_ID}")
    assert page.status_code == 200
    html = page.text
    for text in (
        "grace@example.com",
        "Grace H.",
        "Firefox on Windows",
        "198.51.100.9",
        "Recovery codes left",
        "grace@github.example",
        "GitHub",
        "Signed out",  # the trail, in the words of the security activity page
        f'href="/admin/users/{USER["id"]}"',  # by which admin
        f'href="/admin/users/{TARGET_ID}?cursor=c2#trail"',
        "Make administrator",
        "Deactivate",
        "Remove every second factor",
        "Sign out this session",
    ):
        assert text in html, text
    stale = await web.get(f"/admin/users/{TARGET_ID}", params={"cursor": "bad"})
    assert stale.status_code == 303 and stale.headers["location"] == f"/admin/users/{TARGET_ID}"
    unknown = await web.get("/admin/users/00000000-0000-0000-0000-000000000000")
    assert unknown.status_code == 404 and "Page not found" in unknown.text
    malformed = await web.get("/admin/users/not-an-id")
    assert malformed.status_code == 404


async def test_an_admin_signs_out_one_session_after_confirming(make_web: Callable[..., object]) -> None:
    auth = FakeAuth()
    web = await signed_in(make_web, auth)
    page = await web.get(f"/admin/users/{TARGET_ID}")
    asked = await web.post(
        f"/admin/users/{TARGET_ID}/actions",
        data={"csrf_token": csrf_of(page.text), "action": "revoke-session", "session_id": SESSION_ID},
    )
    assert "Sign out the session of grace@example.com on Firefox on Windows" in asked.text
    assert auth.admin_calls("DELETE") == []  # asked, not done
    done = await confirm(web, "revoke-session", session_id=SESSION_ID)
    assert (
        done.status_code == 303
        and done.headers["location"] == f"/admin/users/{TARGET_ID}?done=revoke-session"
    )
    assert auth.admin_calls("DELETE") == [(f"/auth/admin/users/{TARGET_ID}/sessions/{SESSION_ID}", {})]
    after = await web.get(done.headers["location"])
    assert "The session is signed out." in after.text and "No active sessions." in after.text
    gone = await web.post(
        f"/admin/users/{TARGET_ID}/actions",
        data={
            "csrf_token": csrf_of(after.text),
            "action": "revoke-session",
            "session_id": SESSION_ID,
            "confirmed": "yes",
        },
    )
    assert gone.status_code == 404 and "That session is no longer active." in gone.text
    assert len(auth.admin_calls("DELETE")) == 1


async def test_an_action_needs_the_csrf_token_and_a_known_action(make_web: Callable[..., object]) -> None:
    auth = FakeAuth()
    web = await signed_in(make_web, auth)
    refused = await web.post(
        f"/admin/users/{TARGET_ID}/actions", data={"action": "deactivate", "confirmed": "yes"}
    )
    assert refused.status_code == 403
    page = await web.get(f"/admin/users/{TARGET_ID}")
    unknown = await web.post(
        f"/admin/users/{TARGET_ID}/actions",
        data={"csrf_token": csrf_of(page.text), "action": "delete-everything", "confirmed": "yes"},
    )
    assert unknown.status_code == 404
    assert auth.admin_calls("POST") == [] and auth.admin_calls("PUT") == []


@pytest.mark.parametrize(
    ("action", "call", "notice"),
    [
        (
            "grant-admin",
            ("PUT", f"/auth/admin/users/{TARGET_ID}/roles", {"roles": ["admin"]}),
            "now an administrator",
        ),
        (
            "deactivate",
            ("POST", f"/auth/admin/users/{TARGET_ID}/deactivate", {}),
            "The account is deactivated.",
        ),
        (
            "reset-mfa",
            ("POST", f"/auth/admin/users/{TARGET_ID}/mfa/reset", {}),
            "The second factors are removed.",
        ),
    ],
)
async def test_each_action_calls_its_admin_api_once_confirmed(
    make_web: Callable[..., object], action: str, call: tuple[str, str, dict[str, Any]], notice: str
) -> None:
    auth = FakeAuth()
    web = await signed_in(make_web, auth)
    done = await confirm(web, action)
    assert done.status_code == 303
    method, path, body = call
    assert auth.admin_calls(method) == [(path, body)]
    assert notice in (await web.get(done.headers["location"])).text


async def test_reactivating_and_taking_the_role_away(make_web: Callable[..., object]) -> None:
    auth = FakeAuth()
    auth.target.update(is_active=False, roles=["admin"])
    web = await signed_in(make_web, auth)
    page = await web.get(f"/admin/users/{TARGET_ID}")
    assert "Reactivate" in page.text and "Take away administrator" in page.text
    assert (await confirm(web, "reactivate")).status_code == 303
    assert (await confirm(web, "revoke-admin")).status_code == 303
    assert auth.target["is_active"] is True and auth.target["roles"] == []
    auth.target.update(roles=["admin"], email="last@example.com")
    last = await confirm(web, "revoke-admin")
    assert last.status_code == 409 and "At least one active administrator must remain." in last.text


async def test_the_console_in_french(make_web: Callable[..., object]) -> None:
    web = await signed_in(make_web, FakeAuth(), locale="fr")
    page = await web.get(f"/admin/users/{TARGET_ID}")
    assert "Sessions" in page.text and "Piste d’audit" in page.text
    asked = await web.post(
        f"/admin/users/{TARGET_ID}/actions",
        data={"csrf_token": csrf_of(page.text), "action": "deactivate"},
    )
    assert "Veuillez confirmer" in asked.text and "Désactiver grace@example.com ?" in asked.text


async def test_an_admin_deletes_an_account_after_confirming(make_web: Callable[..., object]) -> None:
    auth = FakeAuth()
    web = await signed_in(make_web, auth)
    page = await web.get(f"/admin/users/{TARGET_ID}")
    asked = await web.post(
        f"/admin/users/{TARGET_ID}/actions", data={"csrf_token": csrf_of(page.text), "action": "delete"}
    )
    assert "Delete the account of grace@example.com?" in asked.text and "grace period" in asked.text
    assert auth.admin_calls("DELETE") == []
    done = await confirm(web, "delete")
    assert done.status_code == 303 and done.headers["location"].endswith("?done=delete")
    assert auth.admin_calls("DELETE") == [(f"/auth/admin/users/{TARGET_ID}", {})]
    after = await web.get(done.headers["location"])
    assert (
        "will be erased at the end of the grace period" in after.text and "erased Mar 5, 2026" in after.text
    )
    assert "Delete the account</button>" not in after.text
    again = await web.post(
        f"/admin/users/{TARGET_ID}/actions",
        data={"csrf_token": csrf_of(after.text), "action": "delete", "confirmed": "yes"},
    )
    assert again.status_code == 409 and "already being deleted" in again.text
