"""The console's users: find one (part of the email or username, or the id), and on their page
their profile, sessions (sign one out), linked accounts, second factors (reset), roles (grant or take
away admin), deactivate or reactivate, and their audit trail. Every action is a form that first
shows what it will do and acts only when that confirmation is sent (`confirmed`); auth-service does
it and audits it with the admin's id as its actor."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from gatehouse_web.api import ApiError
from gatehouse_web.devices import device_name
from gatehouse_web.i18n import moment, profile_zone
from gatehouse_web.pages.admin import HOME, USERS, Admin, admin_call, confirm_action
from gatehouse_web.pages.security import activity_entries
from gatehouse_web.web import Form, Viewer, Web, WebDep, field

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 25
ACTIONS = (
    "revoke-session",
    "reset-mfa",
    "grant-admin",
    "revoke-admin",
    "deactivate",
    "reactivate",
    "delete",
)


def _not_found() -> StarletteHTTPException:
    return StarletteHTTPException(status.HTTP_404_NOT_FOUND)


@router.get(HOME)
async def home(viewer: Admin) -> Response:
    return RedirectResponse(USERS, status.HTTP_303_SEE_OTHER)


@router.get(USERS)
async def users(
    request: Request,
    web: WebDep,
    viewer: Admin,
    q: Annotated[str, Query(max_length=320)] = "",
    cursor: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    query = q.strip()
    params = {
        "limit": str(PAGE_SIZE),
        **({"q": query} if query else {}),
        **({"cursor": cursor} if cursor else {}),
    }
    try:
        page = await admin_call(request, web, viewer, "GET", "/auth/admin/users", params=params)
    except ApiError as exc:
        if exc.status in (status.HTTP_400_BAD_REQUEST, 422):  # a cursor we never gave, a query it refuses
            return RedirectResponse(USERS, status.HTTP_303_SEE_OTHER)
        raise
    locale = getattr(request.state, "locale", "en")
    zone = profile_zone(viewer.user)
    found = [{**user, "since": moment(user["created_at"], locale, zone)} for user in page["items"]]
    return web.renderer.page(
        request,
        "admin_users.html",
        user=viewer.user,
        query=query,
        users=found,
        next_cursor=page["next_cursor"],
    )


@dataclass
class Subject:
    """The user an admin page is about, and what the page shows of them."""

    user: dict[str, Any]
    sessions: list[dict[str, Any]]
    identities: dict[str, Any]
    mfa: dict[str, Any]


async def _subject(request: Request, web: Web, viewer: Viewer, user_id: uuid.UUID) -> Subject:
    base = f"/auth/admin/users/{user_id}"
    try:
        user = await admin_call(request, web, viewer, "GET", base)
    except ApiError as exc:
        if exc.status == status.HTTP_404_NOT_FOUND:
            raise _not_found() from exc
        raise
    sessions, identities, mfa = await asyncio.gather(
        *(
            admin_call(request, web, viewer, "GET", f"{base}/{part}")
            for part in ("sessions", "identities", "mfa")
        )
    )
    _ = web.renderer.gettext_for(request)
    locale = getattr(request.state, "locale", "en")
    zone = profile_zone(viewer.user)
    for item in sessions["items"]:
        item["device"] = device_name(item.get("user_agent"), _)
        item["created"] = moment(item["created_at"], locale, zone)
        item["last_used"] = moment(item["last_used_at"], locale, zone)
    for identity in identities["items"]:
        identity["linked"] = moment(identity["created_at"], locale, zone)
    user["since"] = moment(user["created_at"], locale, zone)
    user["erasing"] = moment(user["erase_at"], locale, zone) if user.get("erase_at") else None
    user["last_sign_in"] = moment(user["last_login_at"], locale, zone) if user.get("last_login_at") else None
    return Subject(user, sessions["items"], identities, mfa)


async def _user_page(
    request: Request,
    web: Web,
    viewer: Viewer,
    user_id: uuid.UUID,
    cursor: str = "",
    status_code: int = status.HTTP_200_OK,
    **context: Any,
) -> Response:
    subject = await _subject(request, web, viewer, user_id)
    params = {"user_id": str(user_id), "limit": str(PAGE_SIZE), **({"cursor": cursor} if cursor else {})}
    try:
        trail = await admin_call(request, web, viewer, "GET", "/auth/admin/audit-events", params=params)
    except ApiError as exc:
        if exc.status == status.HTTP_400_BAD_REQUEST:  # a cursor we never gave: from the newest
            return RedirectResponse(f"{USERS}/{user_id}", status.HTTP_303_SEE_OTHER)
        raise
    return web.renderer.page(
        request,
        "admin_user.html",
        status_code,
        user=viewer.user,
        subject=subject.user,
        sessions=subject.sessions,
        identities=subject.identities,
        mfa=subject.mfa,
        events=activity_entries(request, web, viewer, trail["items"]),
        next_cursor=trail["next_cursor"],
        **context,
    )


def _done_notice(request: Request, web: Web, done: str) -> str | None:
    _ = web.renderer.gettext_for(request)
    notices = {
        "revoke-session": _("The session is signed out."),
        "reset-mfa": _("The second factors are removed. The person was told by email."),
        "grant-admin": _("The account is now an administrator."),
        "revoke-admin": _("The account is no longer an administrator. Its sessions were signed out."),
        "deactivate": _("The account is deactivated. Its sessions were signed out."),
        "reactivate": _("The account is reactivated."),
        "delete": _(
            "The account is disabled and will be erased at the end of the grace period. Reactivate it "
            "to keep it."
        ),
    }
    return notices.get(done)


@router.get(USERS + "/{user_id}")
async def user_page(
    user_id: uuid.UUID,
    request: Request,
    web: WebDep,
    viewer: Admin,
    cursor: Annotated[str, Query(max_length=200)] = "",
    done: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    return await _user_page(request, web, viewer, user_id, cursor, notice=_done_notice(request, web, done))


def _question(
    request: Request, web: Web, action: str, subject: Subject, session: dict[str, Any] | None
) -> str:
    """What the confirmation asks, naming the account (and the session)."""
    _ = web.renderer.gettext_for(request)
    email = subject.user["email"]
    if action == "revoke-session" and session is not None:
        return _(
            "Sign out the session of %(email)s on %(device)s, last active %(when)s?",
            email=email,
            device=session["device"] or _("Unknown device"),
            when=session["last_used"],
        )
    questions = {
        "reset-mfa": _(
            "Remove every second factor of %(email)s (authenticator app, passkeys, recovery codes)? "
            "They will sign in with their password alone until they set one up again.",
            email=email,
        ),
        "grant-admin": _("Make %(email)s an administrator?", email=email),
        "revoke-admin": _(
            "Take the administrator role from %(email)s? Their sessions will be signed out.", email=email
        ),
        "deactivate": _(
            "Deactivate %(email)s? They will be signed out everywhere and cannot sign in.", email=email
        ),
        "reactivate": _("Reactivate %(email)s? They can sign in again.", email=email),
        "delete": _(
            "Delete the account of %(email)s? It is disabled now and erased with its data at the end of "
            "the grace period; they cannot cancel it themselves.",
            email=email,
        ),
    }
    return questions[action]


async def _act(
    request: Request, web: Web, viewer: Viewer, action: str, user: dict[str, Any], session_id: str
) -> None:
    base = f"/auth/admin/users/{user['id']}"
    roles = [role for role in user.get("roles") or [] if role != "admin"]
    calls: dict[str, tuple[str, str, dict[str, Any] | None]] = {
        "revoke-session": ("DELETE", f"{base}/sessions/{session_id}", None),
        "reset-mfa": ("POST", f"{base}/mfa/reset", None),
        "grant-admin": ("PUT", f"{base}/roles", {"roles": [*roles, "admin"]}),
        "revoke-admin": ("PUT", f"{base}/roles", {"roles": roles}),
        "deactivate": ("POST", f"{base}/deactivate", None),
        "reactivate": ("POST", f"{base}/reactivate", None),
        "delete": ("DELETE", base, None),
    }
    method, path, body = calls[action]
    await admin_call(request, web, viewer, method, path, json=body)


@router.post(USERS + "/{user_id}/actions")
async def user_action(
    user_id: uuid.UUID, request: Request, web: WebDep, form: Form, viewer: Admin
) -> Response:
    """The first post shows the confirmation; the confirmation's post (`confirmed`) acts."""
    _ = web.renderer.gettext_for(request)
    action = field(form, "action", 40)
    if action not in ACTIONS:
        raise _not_found()
    subject = await _subject(request, web, viewer, user_id)
    session_id = field(form, "session_id", 40)
    session = next((s for s in subject.sessions if s["id"] == session_id), None)
    if action == "revoke-session" and session is None:
        return await _user_page(
            request,
            web,
            viewer,
            user_id,
            status_code=status.HTTP_404_NOT_FOUND,
            alert=_("That session is no longer active."),
        )
    if field(form, "confirmed", 10) != "yes":
        return confirm_action(
            request,
            web,
            viewer,
            action_url=f"{USERS}/{user_id}/actions",
            back_url=f"{USERS}/{user_id}",
            hidden={"action": action, **({"session_id": session_id} if session_id else {})},
            question=_question(request, web, action, subject, session),
            danger=action not in ("grant-admin", "reactivate"),
        )
    try:
        await _act(request, web, viewer, action, subject.user, session_id)
    except ApiError as exc:
        if exc.status == status.HTTP_404_NOT_FOUND:
            alert = _("That session is no longer active.")
        elif exc.slug == "last-admin":
            alert = _("At least one active administrator must remain.")
        elif exc.slug == "account-already-deleted":
            alert = _("This account is already being deleted.")
        else:
            raise
        return await _user_page(request, web, viewer, user_id, status_code=exc.status, alert=alert)
    return RedirectResponse(f"{USERS}/{user_id}?done={action}", status.HTTP_303_SEE_OTHER)
