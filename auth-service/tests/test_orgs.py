"""Organizations: creation, roles and the last owner, invitations (wrong address, expired, revoked,
reused, throttled, member and seat limits, concurrent accepts), acting in an org and losing it at
once, verified-domain joins, the org's deletion and a deleted account's memberships."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import aio_pika
import httpx
import jwt
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from test_mfa import problem_type

from auth_service.accounts.deletion import erase
from auth_service.main import create_app
from auth_service.models import AuditEvent, AuthSession, Org, OrgInvitation, User
from auth_service.orgs.service import apply_seat_limit
from auth_service.settings import Settings
from conftest import EventTap, bearer, login, make_settings, oauth_settings, refresh, register
from gatehouse_contracts.envelope import new_event
from gatehouse_contracts.events import OrgSeatLimitChanged
from gatehouse_platform.db import utcnow
from gatehouse_platform.models import ProcessedEvent
from gatehouse_platform.outbox import event_message
from gatehouse_platform.testing import eventually, serve_in_thread

Sessions = async_sessionmaker[AsyncSession]
INVITATION_LIMIT = 4  # per org and per inviter, per hour: low enough to reach in a test
SITE_FILES: dict[str, str] = {}  # what the stand-in web server of claimed domains serves


@pytest.fixture(scope="module")
def domain_site() -> Iterator[str]:
    """The web servers of claimed domains, as one stand-in over real HTTP: /<domain>/<path>."""
    site = FastAPI()

    @site.get("/{domain}/.well-known/gatehouse-org-verification.txt")
    def verification_file(domain: str) -> PlainTextResponse:
        if domain not in SITE_FILES:
            return PlainTextResponse("not found", status_code=404)
        return PlainTextResponse(SITE_FILES[domain])

    with serve_in_thread(site) as base_url:
        yield base_url


@pytest.fixture(scope="module")
async def orgs_client(
    database_url: str, amqp_url: str, oauth_emulator: str, domain_site: str
) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        database_url,
        amqp_url,
        **oauth_settings(oauth_emulator),
        org_invitation_limit=f"{INVITATION_LIMIT}/hour",
        org_domain_verification_url=domain_site + "/{domain}/.well-known/gatehouse-org-verification.txt",
    )
    app = create_app(settings)
    no_cookies = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
    async with (
        LifespanManager(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://auth.test", cookies=no_cookies
        ) as client,
    ):
        yield client


@pytest.fixture
def api(orgs_client: httpx.AsyncClient) -> httpx.AsyncClient:
    return orgs_client


async def person(
    api: httpx.AsyncClient, db: Sessions, *, verified: bool = True, email: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    user = await register(api, email)
    if verified:
        async with db() as session:
            await session.execute(
                update(User).where(User.id == uuid.UUID(user["id"])).values(email_verified_at=utcnow())
            )
            await session.commit()
    return user, await login(api, user["email"])


def slug() -> str:
    return f"org-{uuid.uuid4().hex[:10]}"


async def new_org(api: httpx.AsyncClient, tokens: dict[str, Any]) -> dict[str, Any]:
    response = await api.post("/auth/orgs", json={"name": "Acme Ltd", "slug": slug()}, headers=bearer(tokens))
    assert response.status_code == 201, response.text
    return dict(response.json())


async def invite(
    api: httpx.AsyncClient, tokens: dict[str, Any], org_id: str, email: str, role: str = "member"
) -> httpx.Response:
    return await api.post(
        f"/auth/orgs/{org_id}/invitations", json={"email": email, "role": role}, headers=bearer(tokens)
    )


async def invitation_token(events: EventTap, invitation_id: str) -> str:
    sent = await events.wait_for("org.invitation_sent", lambda e: e["data"]["invitation_id"] == invitation_id)
    return str(sent["data"]["token"])


async def accept(api: httpx.AsyncClient, tokens: dict[str, Any], token: str) -> httpx.Response:
    return await api.post("/auth/invitations/accept", json={"token": token}, headers=bearer(tokens))


async def member_of(
    api: httpx.AsyncClient,
    db: Sessions,
    events: EventTap,
    owner: dict[str, Any],
    org_id: str,
    role: str = "member",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new verified person who joined the org by invitation, and their tokens."""
    user, tokens = await person(api, db)
    sent = await invite(api, owner, org_id, user["email"], role)
    assert sent.status_code == 201, sent.text
    accepted = await accept(api, tokens, await invitation_token(events, sent.json()["id"]))
    assert accepted.status_code == 200, accepted.text
    return user, tokens


def claims(tokens: dict[str, Any]) -> dict[str, Any]:
    return dict(jwt.decode(tokens["access_token"], options={"verify_signature": False}))


async def switch(api: httpx.AsyncClient, tokens: dict[str, Any], org_id: str) -> dict[str, Any]:
    response = await api.post(f"/auth/orgs/{org_id}/switch", headers=bearer(tokens))
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_creating_an_org_makes_me_its_owner_and_announces_it(
    api: httpx.AsyncClient, db: Sessions, events: EventTap
) -> None:
    user, tokens = await person(api, db)
    org = await new_org(api, tokens)
    assert org["role"] == "owner" and org["name"] == "Acme Ltd" and org["seat_limit"] is None
    mine = (await api.get("/auth/orgs", headers=bearer(tokens))).json()["items"]
    assert [(o["id"], o["role"]) for o in mine] == [(org["id"], "owner")]
    created = await events.wait_for("org.created", lambda e: e["data"]["org_id"] == org["id"])
    assert created["data"]["owner_id"] == user["id"]
    assert created["data"]["member_count"] == 1 and created["data"]["membership_version"] == 1
    async with db() as session:
        types = (
            await session.execute(select(AuditEvent.type).where(AuditEvent.user_id == uuid.UUID(user["id"])))
        ).scalars()
        assert "org.created" in set(types)


@pytest.mark.parametrize("bad", ["ab", "-acme", "acme-", "Acme", "acme_ltd", "a" * 41, "acme ltd"])
async def test_a_slug_of_the_wrong_shape_is_refused(api: httpx.AsyncClient, db: Sessions, bad: str) -> None:
    _, tokens = await person(api, db)
    response = await api.post("/auth/orgs", json={"name": "Acme", "slug": bad}, headers=bearer(tokens))
    assert response.status_code == 422, response.text
    assert "slug" in response.json()["errors"]


async def test_a_taken_slug_is_refused(api: httpx.AsyncClient, db: Sessions) -> None:
    _, tokens = await person(api, db)
    taken = slug()
    assert (
        await api.post("/auth/orgs", json={"name": "A", "slug": taken}, headers=bearer(tokens))
    ).status_code == 201
    again = await api.post("/auth/orgs", json={"name": "B", "slug": taken}, headers=bearer(tokens))
    assert again.status_code == 409 and problem_type(again) == "org-slug-taken"


async def test_an_org_i_am_not_in_is_not_found_like_one_that_does_not_exist(
    api: httpx.AsyncClient, db: Sessions
) -> None:
    _, owner = await person(api, db)
    _, stranger = await person(api, db)
    org = await new_org(api, owner)
    for path in ("", "/members", "/invitations", "/domains"):
        theirs = await api.get(f"/auth/orgs/{org['id']}{path}", headers=bearer(stranger))
        nowhere = await api.get(f"/auth/orgs/{uuid.uuid4()}{path}", headers=bearer(stranger))
        assert theirs.status_code == nowhere.status_code == 404, (path, theirs.text)
        assert problem_type(theirs) == problem_type(nowhere) == "org-not-found"
    assert (await api.post(f"/auth/orgs/{org['id']}/switch", headers=bearer(stranger))).status_code == 404
    patched = await api.patch(f"/auth/orgs/{org['id']}", json={"name": "Mine"}, headers=bearer(stranger))
    assert patched.status_code == 404
    assert (await api.delete(f"/auth/orgs/{org['id']}", headers=bearer(stranger))).status_code == 404


async def test_an_invitation_is_accepted_once_by_the_invited_verified_address(
    api: httpx.AsyncClient, db: Sessions, events: EventTap
) -> None:
    _, owner = await person(api, db)
    org = await new_org(api, owner)
    invitee, invitee_tokens = await person(api, db, verified=False)
    _, other = await person(api, db)
    sent = await invite(api, owner, org["id"], invitee["email"])
    assert sent.status_code == 201, sent.text
    token = await invitation_token(events, sent.json()["id"])
    async with db() as session:
        stored = await session.get(OrgInvitation, uuid.UUID(sent.json()["id"]))
        assert stored is not None and token.encode() not in stored.token_hash  # only its digest
        assert abs((stored.expires_at - stored.created_at) - timedelta(days=7)) < timedelta(seconds=1)
    listed = (await api.get(f"/auth/orgs/{org['id']}/invitations", headers=bearer(owner))).json()["items"]
    assert [i["email"] for i in listed] == [invitee["email"]]

    wrong = await accept(api, other, token)
    assert wrong.status_code == 403 and problem_type(wrong) == "invitation-email-mismatch"
    unverified = await accept(api, invitee_tokens, token)
    assert unverified.status_code == 403 and problem_type(unverified) == "email-not-verified"
    async with db() as session:
        await session.execute(
            update(User).where(User.id == uuid.UUID(invitee["id"])).values(email_verified_at=utcnow())
        )
        await session.commit()
    accepted = await accept(api, invitee_tokens, token)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["role"] == "member" and accepted.json()["id"] == org["id"]
    added = await events.wait_for("org.member_added", lambda e: e["data"]["user_id"] == invitee["id"])
    assert added["data"]["member_count"] == 2 and added["data"]["membership_version"] == 2
    assert added["data"]["via"] == "invitation"
    reused = await accept(api, invitee_tokens, token)
    assert reused.status_code == 400 and problem_type(reused) == "invitation-invalid"
    assert "already used" in reused.json()["detail"]
    members = (await api.get(f"/auth/orgs/{org['id']}/members", headers=bearer(invitee_tokens))).json()[
        "items"
    ]
    assert sorted(m["role"] for m in members) == ["member", "owner"]


async def test_a_revoked_or_expired_invitation_is_refused(
    api: httpx.AsyncClient, db: Sessions, events: EventTap
) -> None:
    _, owner = await person(api, db)
    org = await new_org(api, owner)
    invitee, tokens = await person(api, db)
    revoked = await invite(api, owner, org["id"], invitee["email"])
    revoked_token = await invitation_token(events, revoked.json()["id"])
    gone = await api.delete(
        f"/auth/orgs/{org['id']}/invitations/{revoked.json()['id']}", headers=bearer(owner)
    )
    assert gone.status_code == 204
    again = await api.delete(
        f"/auth/orgs/{org['id']}/invitations/{revoked.json()['id']}", headers=bearer(owner)
    )
    assert again.status_code == 404 and problem_type(again) == "invitation-not-found"
    refused = await accept(api, tokens, revoked_token)
    assert refused.status_code == 400 and "withdrawn" in refused.json()["detail"]

    expiring = await invite(api, owner, org["id"], invitee["email"])
    expiring_token = await invitation_token(events, expiring.json()["id"])
    async with db() as session:
        await session.execute(
            update(OrgInvitation)
            .where(OrgInvitation.id == uuid.UUID(expiring.json()["id"]))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
    expired = await accept(api, tokens, expiring_token)
    assert expired.status_code == 400 and "expired" in expired.json()["detail"]
    unknown = await accept(api, tokens, "x" * 43)
    assert unknown.status_code == 400 and problem_type(unknown) == "invitation-invalid"
    malformed = await accept(api, tokens, "not a token!")
    assert malformed.status_code == 422


async def test_the_last_owner_can_be_neither_demoted_nor_removed_nor_leave(
    api: httpx.AsyncClient, db: Sessions, events: EventTap
) -> None:
    owner_user, owner = await person(api, db)
    org = await new_org(api, owner)
    admin_user, admin = await member_of(api, db, events, owner, org["id"], role="admin")
    base = f"/auth/orgs/{org['id']}"
    demoted = await api.patch(
        f"{base}/members/{owner_user['id']}", json={"role": "admin"}, headers=bearer(owner)
    )
    assert demoted.status_code == 409 and problem_type(demoted) == "last-owner"
    left = await api.post(f"{base}/leave", headers=bearer(owner))
    assert left.status_code == 409 and problem_type(left) == "last-owner"
    removed_self = await api.delete(f"{base}/members/{owner_user['id']}", headers=bearer(owner))
    assert removed_self.status_code == 409
    by_admin = await api.delete(f"{base}/members/{owner_user['id']}", headers=bearer(admin))
    assert by_admin.status_code == 403 and problem_type(by_admin) == "org-role-required"
    promote = await api.patch(
        f"{base}/members/{admin_user['id']}", json={"role": "owner"}, headers=bearer(admin)
    )
    assert promote.status_code == 403
    bad_role = await api.patch(
        f"{base}/members/{admin_user['id']}", json={"role": "boss"}, headers=bearer(owner)
    )
    assert bad_role.status_code == 422

    # Ownership is transferred: the admin becomes an owner, the owner an admin, who may then leave.
    moved = await api.post(f"{base}/transfer", json={"user_id": admin_user["id"]}, headers=bearer(owner))
    assert moved.status_code == 204, moved.text
    roles = {
        m["user_id"]: m["role"]
        for m in (await api.get(f"{base}/members", headers=bearer(admin))).json()["items"]
    }
    assert roles == {admin_user["id"]: "owner", owner_user["id"]: "admin"}
    assert (await api.post(f"{base}/leave", headers=bearer(owner))).status_code == 204
    changed = await events.wait_for(
        "org.member_role_changed",
        lambda e: e["data"]["user_id"] == admin_user["id"] and e["data"]["new_role"] == "owner",
    )
    assert changed["data"]["changed_by"] == owner_user["id"]


async def test_a_member_cannot_manage_the_org(api: httpx.AsyncClient, db: Sessions, events: EventTap) -> None:
    _, owner = await person(api, db)
    org = await new_org(api, owner)
    _, member = await member_of(api, db, events, owner, org["id"])
    base = f"/auth/orgs/{org['id']}"
    assert (await api.get(base, headers=bearer(member))).json()["role"] == "member"
    for response in (
        await invite(api, member, org["id"], "someone@example.com"),
        await api.get(f"{base}/invitations", headers=bearer(member)),
        await api.patch(base, json={"name": "Mine now"}, headers=bearer(member)),
        await api.delete(base, headers=bearer(member)),
    ):
        assert response.status_code == 403 and problem_type(response) == "org-role-required", response.text


async def test_acting_in_an_org_carries_it_in_tokens_through_refresh_and_back_to_personal(
    api: httpx.AsyncClient, db: Sessions
) -> None:
    _, tokens = await person(api, db)
    org = await new_org(api, tokens)
    acting = await switch(api, tokens, org["id"])
    assert claims(acting)["org_id"] == org["id"] and claims(acting)["org_role"] == "owner"
    # the personal session was exchanged: its tokens no longer work
    assert (await api.get("/auth/me", headers=bearer(tokens))).status_code == 401
    refreshed = await refresh(api, acting["refresh_token"])
    assert refreshed.status_code == 200
    assert claims(refreshed.json())["org_id"] == org["id"]
    personal = await api.post("/auth/orgs/personal/switch", headers=bearer(refreshed.json()))
    assert personal.status_code == 200
    assert "org_id" not in claims(personal.json())
    assert (await api.get("/auth/me", headers=bearer(personal.json()))).status_code == 200


async def test_removal_from_an_org_refuses_the_tokens_acting_in_it_at_once(
    api: httpx.AsyncClient, db: Sessions, events: EventTap
) -> None:
    _, owner = await person(api, db)
    org = await new_org(api, owner)
    member_user, member = await member_of(api, db, events, owner, org["id"])
    acting = await switch(api, member, org["id"])
    personal_elsewhere = await login(api, member_user["email"])
    assert (await api.get("/auth/me", headers=bearer(acting))).status_code == 200
    removed = await api.delete(f"/auth/orgs/{org['id']}/members/{member_user['id']}", headers=bearer(owner))
    assert removed.status_code == 204
    assert (await api.get("/auth/me", headers=bearer(acting))).status_code == 401
    assert (await refresh(api, acting["refresh_token"])).status_code == 401
    # only the sessions acting in the org: their personal session elsewhere goes on
    assert (await api.get("/auth/me", headers=bearer(personal_elsewhere))).status_code == 200
    sid = claims(acting)["sid"]
    revoked = await events.wait_for("session.revoked", lambda e: sid in e["data"]["session_ids"])
    assert revoked["data"]["reason"] == "org_access_ended"
    listed = (await api.get("/auth/internal/revocations")).json()
    assert sid in {s["session_id"] for s in listed["sessions"]}
    gone = await events.wait_for("org.member_removed", lambda e: e["data"]["user_id"] == member_user["id"])
    assert gone["data"]["reason"] == "removed" and gone["data"]["member_count"] == 1
    assert (await api.get(f"/auth/orgs/{org['id']}", headers=bearer(personal_elsewhere))).status_code == 404
    assert (
        await api.post(f"/auth/orgs/{org['id']}/switch", headers=bearer(personal_elsewhere))
    ).status_code == 404


async def test_leaving_an_org_refuses_my_tokens_acting_in_it(
    api: httpx.AsyncClient, db: Sessions, events: EventTap
) -> None:
    _, owner = await person(api, db)
    org = await new_org(api, owner)
    member_user, member = await member_of(api, db, events, owner, org["id"])
    acting = await switch(api, member, org["id"])
    elsewhere = await login(api, member_user["email"])
    assert (await api.post(f"/auth/orgs/{org['id']}/leave", headers=bearer(elsewhere))).status_code == 204
    assert (await api.get("/auth/me", headers=bearer(acting))).status_code == 401
    left = await events.wait_for("org.member_removed", lambda e: e["data"]["user_id"] == member_user["id"])
    assert left["data"]["reason"] == "left" and left["data"]["removed_by"] is None


async def test_a_demoted_admin_loses_the_tokens_claiming_the_old_role(
    api: httpx.AsyncClient, db: Sessions, events: EventTap
) -> None:
    _, owner = await person(api, db)
    org = await new_org(api, owner)
    admin_user, admin = await member_of(api, db, events, owner, org["id"], role="admin")
    acting = await switch(api, admin, org["id"])
    assert claims(acting)["org_role"] == "admin"
    demoted = await api.patch(
        f"/auth/orgs/{org['id']}/members/{admin_user['id']}", json={"role": "member"}, headers=bearer(owner)
    )
    assert demoted.status_code == 200 and demoted.json()["role"] == "member"
    assert (await api.get("/auth/me", headers=bearer(acting))).status_code == 401


async def test_invitations_are_throttled(api: httpx.AsyncClient, db: Sessions) -> None:
    _, owner = await person(api, db)
    org = await new_org(api, owner)
    for _ in range(INVITATION_LIMIT):
        assert (
            await invite(api, owner, org["id"], f"p{uuid.uuid4().hex[:8]}@example.com")
        ).status_code == 201
    throttled = await invite(api, owner, org["id"], "one-more@example.com")
    assert throttled.status_code == 429 and "retry-after" in throttled.headers


async def test_the_member_limit_counts_members_and_pending_invitations(
    api: httpx.AsyncClient, db: Sessions
) -> None:
    _, owner = await person(api, db)
    org = await new_org(api, owner)
    limited = await api.patch(f"/auth/orgs/{org['id']}", json={"member_limit": 2}, headers=bearer(owner))
    assert limited.status_code == 200 and limited.json()["member_limit"] == 2
    assert (await invite(api, owner, org["id"], "first@example.com")).status_code == 201
    full = await invite(api, owner, org["id"], "second@example.com")
    assert full.status_code == 409 and problem_type(full) == "member-limit-reached"
    # inviting the same address again replaces its invitation: no second seat
    assert (await invite(api, owner, org["id"], "first@example.com")).status_code == 201
    for bad in ({"member_limit": 0}, {"member_limit": None}, {"member_limit": 10**6}):
        response = await api.patch(f"/auth/orgs/{org['id']}", json=bad, headers=bearer(owner))
        assert response.status_code == 422 and "member_limit" in response.json()["errors"], bad


async def set_seat_limit(db: Sessions, org_id: str, seats: int | None, version: int) -> bool:
    async with db() as session:
        applied = await apply_seat_limit(session, uuid.UUID(org_id), seats, version)
        await session.commit()
    return applied


async def test_the_seat_limit_refuses_invitations_past_it_and_keeps_the_highest_version(
    api: httpx.AsyncClient, db: Sessions
) -> None:
    _, owner = await person(api, db)
    org = await new_org(api, owner)
    assert await set_seat_limit(db, org["id"], 2, 5)
    assert not await set_seat_limit(db, org["id"], 10, 4)  # older: ignored
    assert (await api.get(f"/auth/orgs/{org['id']}", headers=bearer(owner))).json()["seat_limit"] == 2
    assert (await invite(api, owner, org["id"], "first@example.com")).status_code == 201
    full = await invite(api, owner, org["id"], "second@example.com")
    assert full.status_code == 409 and problem_type(full) == "seat-limit-reached"
    assert full.json()["seat_limit"] == 2 and full.json()["seats_held"] == 2
    assert await set_seat_limit(db, org["id"], None, 6)  # the plan sets no limit any more
    assert (await invite(api, owner, org["id"], "second@example.com")).status_code == 201


async def test_concurrent_accepts_never_exceed_a_lowered_seat_limit(
    api: httpx.AsyncClient, db: Sessions, events: EventTap
) -> None:
    _, owner = await person(api, db)
    org = await new_org(api, owner)
    people = [await person(api, db) for _ in range(3)]
    tokens = []
    for user, _ in people:
        sent = await invite(api, owner, org["id"], user["email"])
        tokens.append(await invitation_token(events, sent.json()["id"]))
    assert await set_seat_limit(db, org["id"], 2, 1)  # one seat left for three pending invitations
    answers = await asyncio.gather(
        *(accept(api, signed_in, token) for (_, signed_in), token in zip(people, tokens, strict=True))
    )
    assert sorted(a.status_code for a in answers) == [200, 409, 409], [a.text for a in answers]
    assert {problem_type(a) for a in answers if a.status_code == 409} == {"seat-limit-reached"}
    members = (await api.get(f"/auth/orgs/{org['id']}/members", headers=bearer(owner))).json()["items"]
    assert len(members) == 2


async def test_only_an_owner_deletes_the_org_and_its_members_tokens_in_it_die(
    api: httpx.AsyncClient, db: Sessions, events: EventTap
) -> None:
    owner_user, owner = await person(api, db)
    org = await new_org(api, owner)
    _, admin = await member_of(api, db, events, owner, org["id"], role="admin")
    acting = await switch(api, admin, org["id"])
    refused = await api.delete(f"/auth/orgs/{org['id']}", headers=bearer(acting))
    assert refused.status_code == 403 and problem_type(refused) == "org-role-required"
    assert (await api.delete(f"/auth/orgs/{org['id']}", headers=bearer(owner))).status_code == 204
    assert (await api.get("/auth/me", headers=bearer(acting))).status_code == 401
    deleted = await events.wait_for("org.deleted", lambda e: e["data"]["org_id"] == org["id"])
    assert deleted["data"]["deleted_by"] == owner_user["id"]
    assert (await api.get(f"/auth/orgs/{org['id']}", headers=bearer(owner))).status_code == 404


async def test_a_deleted_account_leaves_its_orgs_and_its_ownership_passes_on(
    api: httpx.AsyncClient, db: Sessions, events: EventTap
) -> None:
    owner_user, owner = await person(api, db)
    shared = await new_org(api, owner)
    alone = await new_org(api, owner)
    _, member = await member_of(api, db, events, owner, shared["id"])
    admin_user, _ = await member_of(api, db, events, owner, shared["id"], role="admin")
    assert (await api.delete("/auth/me", headers=bearer(owner))).status_code == 202
    members = (await api.get(f"/auth/orgs/{shared['id']}/members", headers=bearer(member))).json()["items"]
    assert {m["user_id"]: m["role"] for m in members}[admin_user["id"]] == "owner"
    assert owner_user["id"] not in {m["user_id"] for m in members}
    left = await events.wait_for(
        "org.member_removed",
        lambda e: e["data"]["user_id"] == owner_user["id"] and e["data"]["org_id"] == shared["id"],
    )
    assert left["data"]["reason"] == "account_deleted"
    await events.wait_for("org.deleted", lambda e: e["data"]["org_id"] == alone["id"])
    async with db() as session:
        assert await session.get(Org, uuid.UUID(alone["id"])) is None


async def test_a_verified_domain_lets_its_people_join_when_the_org_allows_it(
    api: httpx.AsyncClient, db: Sessions, events: EventTap
) -> None:
    _, owner = await person(api, db)
    org = await new_org(api, owner)
    domain = f"d{uuid.uuid4().hex[:10]}.example"
    base = f"/auth/orgs/{org['id']}"
    claimed = await api.post(f"{base}/domains", json={"domain": domain}, headers=bearer(owner))
    assert claimed.status_code == 201, claimed.text
    assert (
        await api.post(f"{base}/domains", json={"domain": "Not A Domain"}, headers=bearer(owner))
    ).status_code == 422
    verify = f"{base}/domains/{claimed.json()['id']}/verify"
    missing = await api.post(verify, headers=bearer(owner))
    assert missing.status_code == 409 and problem_type(missing) == "org-domain-verification-failed"
    SITE_FILES[domain] = "something else\n" + claimed.json()["verification_token"] + "\n"
    verified = await api.post(verify, headers=bearer(owner))
    assert verified.status_code == 200 and verified.json()["verified"] is True

    colleague, colleague_tokens = await person(api, db, email=f"ann-{uuid.uuid4().hex[:6]}@{domain}")
    outsider, outsider_tokens = await person(api, db)
    # not allowed yet: looks like an org that does not exist
    early = await api.post(f"{base}/join", headers=bearer(colleague_tokens))
    assert early.status_code == 404
    assert (await api.get("/auth/me/joinable-orgs", headers=bearer(colleague_tokens))).json()["items"] == []
    assert (await api.patch(base, json={"allow_domain_join": True}, headers=bearer(owner))).status_code == 200
    joinable = (await api.get("/auth/me/joinable-orgs", headers=bearer(colleague_tokens))).json()["items"]
    assert [o["id"] for o in joinable] == [org["id"]]
    assert (await api.post(f"{base}/join", headers=bearer(outsider_tokens))).status_code == 404
    joined = await api.post(f"{base}/join", headers=bearer(colleague_tokens))
    assert joined.status_code == 201 and joined.json()["role"] == "member"
    added = await events.wait_for("org.member_added", lambda e: e["data"]["user_id"] == colleague["id"])
    assert added["data"]["via"] == "domain"
    again = await api.post(f"{base}/join", headers=bearer(colleague_tokens))
    assert again.status_code == 409 and problem_type(again) == "already-member"

    # a domain join takes a seat like an invitation: refused past the seat limit
    assert await set_seat_limit(db, org["id"], 2, 1)
    _, late_tokens = await person(api, db, email=f"bob-{uuid.uuid4().hex[:6]}@{domain}")
    full = await api.post(f"{base}/join", headers=bearer(late_tokens))
    assert full.status_code == 409 and problem_type(full) == "seat-limit-reached"
    assert outsider["id"]


async def test_a_domain_verified_by_one_org_cannot_be_claimed_by_another(
    api: httpx.AsyncClient, db: Sessions
) -> None:
    _, owner = await person(api, db)
    first, second = await new_org(api, owner), await new_org(api, owner)
    domain = f"d{uuid.uuid4().hex[:10]}.example"
    claimed = await api.post(
        f"/auth/orgs/{first['id']}/domains", json={"domain": domain}, headers=bearer(owner)
    )
    SITE_FILES[domain] = claimed.json()["verification_token"]
    assert (
        await api.post(
            f"/auth/orgs/{first['id']}/domains/{claimed.json()['id']}/verify", headers=bearer(owner)
        )
    ).status_code == 200
    taken = await api.post(
        f"/auth/orgs/{second['id']}/domains", json={"domain": domain}, headers=bearer(owner)
    )
    assert taken.status_code == 409 and problem_type(taken) == "org-domain-taken"


async def test_switch_sessions_are_stored_with_their_org(api: httpx.AsyncClient, db: Sessions) -> None:
    _, tokens = await person(api, db)
    org = await new_org(api, tokens)
    acting = await switch(api, tokens, org["id"])
    async with db() as session:
        stored = await session.get(AuthSession, uuid.UUID(claims(acting)["sid"]))
        assert stored is not None and str(stored.org_id) == org["id"] and stored.org_role == "owner"


async def test_billings_seat_limit_event_is_applied_and_an_older_one_ignored(
    api: httpx.AsyncClient, db: Sessions, amqp_url: str, settings: Settings
) -> None:
    _, owner = await person(api, db)
    org = await new_org(api, owner)
    connection = await aio_pika.connect_robust(amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(
            settings.events_exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )

        async def publish(seats: int | None, version: int) -> uuid.UUID:
            data = OrgSeatLimitChanged(
                org_id=uuid.UUID(org["id"]),
                plan_code="team",
                max_seats=seats,
                limit_version=version,
                changed_at=utcnow(),
            )
            event = new_event(data, source="/billing-service", subject=org["id"])
            await exchange.publish(event_message(event), routing_key=event.type)
            return uuid.UUID(str(event.id))

        async def seat_limit() -> Any:
            return (await api.get(f"/auth/orgs/{org['id']}", headers=bearer(owner))).json()["seat_limit"]

        async def applied() -> bool:
            return bool(await seat_limit() == 3)

        await publish(3, 7)
        await eventually(applied, "the seat limit applied")
        older = await publish(10, 6)

        async def handled() -> bool:
            async with db() as session:
                stmt = select(ProcessedEvent).where(ProcessedEvent.event_id == older)
                return (await session.execute(stmt)).first() is not None

        await eventually(handled, "the older event handled")
        assert await seat_limit() == 3
    finally:
        await connection.close()


async def test_an_erased_account_leaves_no_invitation_naming_its_address(
    api: httpx.AsyncClient, db: Sessions
) -> None:
    _, owner = await person(api, db)
    org = await new_org(api, owner)
    invitee, tokens = await person(api, db)
    assert (await invite(api, owner, org["id"], invitee["email"].upper())).status_code == 201
    assert (await api.delete("/auth/me", headers=bearer(tokens))).status_code == 202
    async with db() as session:
        user = await session.get(User, uuid.UUID(invitee["id"]))
        assert user is not None
        await erase(session, user, now=utcnow())
        await session.commit()
        left = await session.execute(
            select(OrgInvitation).where(OrgInvitation.org_id == uuid.UUID(org["id"]))
        )
        assert left.scalars().all() == []


async def test_my_data_export_lists_my_organizations(api: httpx.AsyncClient, db: Sessions) -> None:
    _, tokens = await person(api, db)
    org = await new_org(api, tokens)
    acting = await switch(api, tokens, org["id"])
    export = (await api.get("/auth/me/export", headers=bearer(acting))).json()
    assert [(o["org_id"], o["role"], o["via"]) for o in export["organizations"]] == [
        (org["id"], "owner", "created")
    ]
    assert org["id"] in {s["org_id"] for s in export["sessions"]}
