"""The organization pages over plain HTTP in this process, auth-service's org endpoints stood in for
by a small fake that answers as auth does (org-slug-taken, last-owner, invitation-email-mismatch…).
The whole journey runs in Chromium against the real system in test_browser_orgs.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx

from conftest import SIGNED_IN, USER, csrf_of, problem

ORG_ID = "5b1c9e2a-7d4f-4e8a-9c3b-1f2e3d4c5b6a"
ORG = {
    "id": ORG_ID,
    "name": "Acme Ltd",
    "slug": "acme-ltd",
    "role": "owner",
    "created_at": "2026-12-01T10:00:00+00:00",
    "member_limit": 50,
    "seat_limit": None,
    "allow_domain_join": False,
}
MEMBER = {
    "user_id": USER["id"],
    "email": USER["email"],
    "username": "ada",
    "role": "owner",
    "joined_at": "2026-12-01T10:00:00+00:00",
    "via": "created",
}


class FakeOrgs:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else {}
        method, path = request.method, request.url.path
        self.calls.append((method, path, body))
        if path == "/auth/login":
            return httpx.Response(200, json=SIGNED_IN)
        if path == "/auth/me":
            return httpx.Response(200, json=USER)
        if path == "/auth/orgs" and method == "GET":
            return httpx.Response(200, json={"items": [ORG]})
        if path == "/auth/me/joinable-orgs":
            return httpx.Response(200, json={"items": []})
        if path == "/auth/orgs" and method == "POST":
            if body["slug"] == "taken":
                return problem(409, "org-slug-taken")
            if body["slug"] != body["slug"].lower():
                return problem(422, "validation-failed", errors={"slug": "String should match pattern"})
            return httpx.Response(201, json={**ORG, "name": body["name"], "slug": body["slug"]})
        if path == f"/auth/orgs/{ORG_ID}":
            return httpx.Response(200, json=ORG)
        if path == f"/auth/orgs/{ORG_ID}/members":
            return httpx.Response(200, json={"items": [MEMBER]})
        if path == f"/auth/orgs/{ORG_ID}/invitations" and method == "GET":
            return httpx.Response(200, json={"items": []})
        if path == f"/auth/orgs/{ORG_ID}/invitations":
            return problem(409, "seat-limit-reached", seat_limit=2, seats_held=2)
        if path == f"/auth/orgs/{ORG_ID}/leave":
            return problem(409, "last-owner")
        if path == "/auth/invitations/accept":
            return problem(403, "invitation-email-mismatch")
        return problem(404, "not-found")


async def signed_in(make_web: Callable[..., object], auth: FakeOrgs) -> httpx.AsyncClient:
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


async def test_the_emailed_link_signed_out_asks_to_sign_in_first_and_comes_back(
    make_web: Callable[..., object],
) -> None:
    web = await make_web(api=httpx.MockTransport(FakeOrgs()))  # type: ignore[misc]
    assert isinstance(web, httpx.AsyncClient)
    page = await web.get("/invitations/accept?token=tok-123")
    assert page.status_code == 200
    back = quote("/invitations/accept?token=tok-123", safe="")
    assert f'href="/login?return_to={back}"' in page.text
    assert 'action="/invitations/accept"' not in page.text  # nothing to accept until signed in


async def test_accepting_with_another_address_says_which_one_to_use(make_web: Callable[..., object]) -> None:
    web = await signed_in(make_web, FakeOrgs())
    answer = await post_form(web, "/invitations/accept?token=tok-123", "/invitations/accept", token="tok-123")
    assert answer.status_code == 400
    assert "sent to another address than ada@example.com" in answer.text
    assert 'role="alert"' in answer.text


async def test_a_taken_or_malformed_short_name_is_shown_by_its_field(make_web: Callable[..., object]) -> None:
    web = await signed_in(make_web, FakeOrgs())
    taken = await post_form(web, "/orgs", "/orgs", name="Acme", slug="taken")
    assert taken.status_code == 400 and "This short name is taken; choose another." in taken.text
    assert 'id="f-slug-error"' in taken.text
    malformed = await post_form(web, "/orgs", "/orgs", name="Acme", slug="Acme Ltd")
    assert malformed.status_code == 400 and "lowercase letters, digits and hyphens" in malformed.text
    assert 'value="Acme Ltd"' in malformed.text  # what was typed is kept


async def test_the_last_owner_leaving_and_a_full_org_are_explained(make_web: Callable[..., object]) -> None:
    auth = FakeOrgs()
    web = await signed_in(make_web, auth)
    org_page = f"/orgs/{ORG_ID}"
    left = await post_form(web, org_page, f"{org_page}/leave")
    assert left.status_code == 400 and "You are the last owner" in left.text
    full = await post_form(web, org_page, f"{org_page}/invitations", email="bob@example.com", role="member")
    assert full.status_code == 400 and "Every seat of the organization" in full.text
    assert (
        "POST",
        f"/auth/orgs/{ORG_ID}/invitations",
        {"email": "bob@example.com", "role": "member"},
    ) in auth.calls


async def test_an_org_id_that_is_no_uuid_is_not_found(make_web: Callable[..., object]) -> None:
    web = await signed_in(make_web, FakeOrgs())
    assert (await web.get("/orgs/not-an-id")).status_code == 404
