"""The API keys page over plain HTTP in this process, auth-service's API-key endpoints stood in for
by a small fake that keeps their state and answers as auth does (422 field errors, 409 too many,
404 for a key already revoked). The whole journey runs in Chromium against the real system in
test_browser_api_keys.py."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from conftest import SIGNED_IN, USER, csrf_of, problem

KEY = "gk_live_0a1b2c3d4e5f_" + "S" * 43


class FakeKeys:
    def __init__(self, *, full: bool = False) -> None:
        self.full = full
        self.keys: dict[str, dict[str, Any]] = {}
        self.created: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else {}
        method, path = request.method, request.url.path
        if path == "/auth/login":
            return httpx.Response(200, json=SIGNED_IN)
        if path == "/auth/me":
            return httpx.Response(200, json=USER)
        if path == "/auth/api-keys" and method == "GET":
            return httpx.Response(200, json={"items": list(self.keys.values()), "next_cursor": None})
        if path == "/auth/api-keys" and method == "POST":
            if self.full:
                return problem(409, "too-many-api-keys", detail="You have 25 working API keys already.")
            if body["name"] == "taken by the API":
                return problem(
                    422, "validation-error", errors={"name": "String should have at most 64 characters"}
                )
            self.created.append(body)
            key_id = str(uuid.uuid4())
            self.keys[key_id] = {
                "id": key_id,
                "name": body["name"],
                "prefix": KEY[:20],
                "scopes": body["scopes"],
                "org_id": None,
                "created_at": "2026-12-03T10:00:00+00:00",
                "expires_at": "2027-03-03T10:00:00+00:00" if body["expires_in_days"] else None,
                "last_used_at": None,
            }
            return httpx.Response(
                201, json={**self.keys[key_id], "key": KEY, "expires_at": self.keys[key_id]["expires_at"]}
            )
        if path.startswith("/auth/api-keys/") and method == "DELETE":
            if self.keys.pop(path.rsplit("/", 1)[1], None) is None:
                return problem(404, "api-key-not-found")
            return httpx.Response(204)
        return problem(404, "not-found")


async def signed_in(make_web: Callable[..., object], api: FakeKeys) -> httpx.AsyncClient:
    web = await make_web(api=httpx.MockTransport(api))  # type: ignore[misc]
    assert isinstance(web, httpx.AsyncClient)
    page = await web.get("/login")
    answer = await web.post(
        "/login", data={"csrf_token": csrf_of(page.text), "login": "ada", "password": "pw"}
    )
    assert answer.status_code == 303
    return web


async def create(web: httpx.AsyncClient, **fields: Any) -> httpx.Response:
    page = await web.get("/account/api-keys")
    return await web.post("/account/api-keys", data={"csrf_token": csrf_of(page.text), **fields})


async def test_a_created_key_is_shown_once_then_listed_without_its_secret(
    make_web: Callable[..., object],
) -> None:
    api = FakeKeys()
    web = await signed_in(make_web, api)
    empty = await web.get("/account/api-keys")
    assert "You have no API keys." in empty.text

    created = await create(
        web, name="CI deploys", scope=["profile:read", "billing:write"], expires_in_days="90"
    )
    assert created.status_code == 201
    assert f'value="{KEY}"' in created.text and "this is the only time we show it" in created.text
    assert api.created == [
        {"name": "CI deploys", "scopes": ["profile:read", "billing:write"], "expires_in_days": 90}
    ]

    listed = await web.get("/account/api-keys")
    assert KEY not in listed.text and f"{KEY[:20]}…" in listed.text
    assert "Read your profile; Subscribe, change plan, cancel and resume" in listed.text


async def test_a_key_that_never_expires(make_web: Callable[..., object]) -> None:
    api = FakeKeys()
    web = await signed_in(make_web, api)
    await create(web, name="forever", scope="billing:read", expires_in_days="")
    assert api.created[0]["expires_in_days"] is None


async def test_bad_forms_are_refused_by_their_fields(make_web: Callable[..., object]) -> None:
    api = FakeKeys()
    web = await signed_in(make_web, api)
    refused = await create(web, name="", scope="admin:everything", expires_in_days="7")
    assert refused.status_code == 400
    assert 'id="f-name-error">Give the key a name' in refused.text
    assert 'id="f-scope-error">Choose at least one thing the key may do.' in refused.text
    assert 'id="f-expires_in_days-error">Choose when the key stops working.' in refused.text
    too_long = await create(web, name="x" * 65, scope="billing:read", expires_in_days="30")
    assert 'id="f-name-error">Use at most 64 characters.' in too_long.text
    from_api = await create(web, name="taken by the API", scope="billing:read", expires_in_days="30")
    assert from_api.status_code == 400 and 'id="f-name-error">String should have at most 64' in from_api.text
    assert api.created == []


async def test_too_many_keys_is_said_plainly(make_web: Callable[..., object]) -> None:
    web = await signed_in(make_web, FakeKeys(full=True))
    refused = await create(web, name="one more", scope="billing:read", expires_in_days="30")
    assert refused.status_code == 400 and "You have 25 working API keys already." in refused.text


async def test_revoking_asks_first_then_says_it_is_done(make_web: Callable[..., object]) -> None:
    api = FakeKeys()
    web = await signed_in(make_web, api)
    await create(web, name="CI deploys", scope="billing:read", expires_in_days="30")
    (key_id,) = api.keys
    confirm = await web.get(f"/account/api-keys/{key_id}/revoke")
    assert confirm.status_code == 200 and "Revoke “CI deploys”?" in confirm.text
    assert api.keys  # nothing revoked by looking
    done = await web.post(f"/account/api-keys/{key_id}/revoke", data={"csrf_token": csrf_of(confirm.text)})
    assert done.status_code == 200 and "is revoked: it stops working within seconds." in done.text
    assert api.keys == {}
    again = await web.post(f"/account/api-keys/{key_id}/revoke", data={"csrf_token": csrf_of(confirm.text)})
    assert again.status_code == 400 and "That key was already revoked." in again.text
    gone = await web.get(f"/account/api-keys/{key_id}/revoke")
    assert gone.status_code == 404 and "That key was already revoked." in gone.text


async def test_a_revocation_without_the_csrf_token_is_refused(make_web: Callable[..., object]) -> None:
    api = FakeKeys()
    web = await signed_in(make_web, api)
    await create(web, name="CI deploys", scope="billing:read", expires_in_days="30")
    (key_id,) = api.keys
    refused = await web.post(f"/account/api-keys/{key_id}/revoke", data={})
    assert refused.status_code in (400, 403) and api.keys


async def test_the_page_in_french(make_web: Callable[..., object]) -> None:
    web = await signed_in(make_web, FakeKeys())
    page = await web.get("/account/api-keys", headers={"Accept-Language": "fr"})
    assert "Clés d’API" in page.text and "Lire votre profil" in page.text


ORG_ID = str(uuid.uuid4())


def acting_token(role: str) -> str:
    """An access token shaped as the API's, acting in ORG_ID with `role` (the page reads, never
    verifies, its own session's claims)."""
    claims = {"sub": USER["id"], "org_id": ORG_ID, "org_role": role}
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJSUzI1NiJ9.{payload}.sig"


class FakeOrgKeys(FakeKeys):
    """FakeKeys, and the org the session acts in: `?org_id=` lists its keys, `org_id` makes one."""

    def __init__(self, role: str) -> None:
        super().__init__()
        self.role = role

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path, org_id = request.url.path, request.url.params.get("org_id")
        if path == "/auth/login":
            return httpx.Response(200, json={**SIGNED_IN, "access_token": acting_token(self.role)})
        if path == f"/auth/orgs/{ORG_ID}":
            return httpx.Response(200, json={"id": ORG_ID, "name": "Acme Ltd", "role": self.role})
        if path == "/auth/api-keys" and request.method == "GET":
            keys = [k for k in self.keys.values() if k["org_id"] == org_id]
            return httpx.Response(200, json={"items": keys, "next_cursor": None})
        answer = super().__call__(request)
        if path == "/auth/api-keys" and answer.status_code == 201:
            body = json.loads(request.content)
            self.keys[answer.json()["id"]]["org_id"] = body.get("org_id")
        return answer


async def test_an_org_admin_makes_lists_and_revokes_the_orgs_keys(make_web: Callable[..., object]) -> None:
    api = FakeOrgKeys("admin")
    web = await signed_in(make_web, api)
    page = await web.get("/account/api-keys")
    assert "The keys of Acme Ltd" in page.text and "The organization has no API keys." in page.text
    created = await web.post(
        "/account/api-keys",
        data={
            "csrf_token": csrf_of(page.text),
            "for": "org",
            "org_name": "Monthly report",
            "org_scope": ["billing:read", "profile:read"],  # not an org scope: dropped
            "org_expires_in_days": "30",
        },
    )
    assert created.status_code == 201, created.text
    assert api.created[-1] == {
        "name": "Monthly report",
        "scopes": ["billing:read"],
        "expires_in_days": 30,
        "org_id": ORG_ID,
    }
    (key_id,) = api.keys
    listed = await web.get("/account/api-keys")
    assert "Read the organization’s subscription, entitlements and payments" in listed.text
    assert "You have no API keys." in listed.text  # not among my personal keys
    refused = await web.post(
        "/account/api-keys",
        data={"csrf_token": csrf_of(listed.text), "for": "org", "org_name": "", "org_expires_in_days": "30"},
    )
    assert refused.status_code == 400 and 'id="f-org_name-error">Give the key a name' in refused.text
    assert 'id="f-org_scope-error">Choose at least one thing' in refused.text
    confirm = await web.get(f"/account/api-keys/{key_id}/revoke")
    assert confirm.status_code == 200 and "Revoke “Monthly report”?" in confirm.text
    done = await web.post(f"/account/api-keys/{key_id}/revoke", data={"csrf_token": csrf_of(confirm.text)})
    assert done.status_code == 200 and api.keys == {}


async def test_a_plain_member_acting_in_the_org_sees_no_org_keys(make_web: Callable[..., object]) -> None:
    api = FakeOrgKeys("member")
    web = await signed_in(make_web, api)
    page = await web.get("/account/api-keys")
    assert "The keys of Acme Ltd" not in page.text
    refused = await web.post(
        "/account/api-keys",
        data={
            "csrf_token": csrf_of(page.text),
            "for": "org",
            "org_name": "sneaky",
            "org_scope": "billing:read",
            "org_expires_in_days": "30",
        },
    )
    assert refused.status_code == 400 and "Only an owner or admin acting in the organization" in refused.text
    assert api.created == []
