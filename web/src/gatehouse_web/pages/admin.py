"""The admin console (/admin), for people with the `admin` role whose sign-in proved a second
factor: find a user (part of the email or username, or the id), and on their page their profile,
sessions (sign one out), linked accounts, second factors (reset), roles (grant or take away admin),
deactivate or reactivate, and their audit trail.

Every action is a form that first shows what it will do ("Sign out this session of …?") and acts
only when that confirmation is sent (`confirmed`), with the CSRF token like every form. auth-service
does the action and audits it with the admin's id as its actor."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, status
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from gatehouse_web.api import ApiError
from gatehouse_web.devices import device_name
from gatehouse_web.i18n import moment, profile_zone
from gatehouse_web.pages.security import activity_entries
from gatehouse_web.web import Form, SignedIn, Viewer, Web, WebDep, client_of, field

router = APIRouter(include_in_schema=False)

HOME = "/admin"
USERS = "/admin/users"
PAGE_SIZE = 25
MULTI_FACTOR_AMR = "mfa"  # RFC 8176: the session's sign-in used more than one factor
# auth-service's refusals of an admin call whose caller lacks the second factor (admins_need_mfa)
NO_FACTOR, FACTOR_NOT_PROVEN = "mfa-enrollment-required", "mfa-sign-in-required"
ACTIONS = ("revoke-session", "reset-mfa", "grant-admin", "revoke-admin", "deactivate", "reactivate")


class AdminRefused(Exception):
    """Not an admin, or an admin whose second factor is missing (`NO_FACTOR`) or was not proven by
    this sign-in (`FACTOR_NOT_PROVEN`): a page saying which, never the console."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


def token_amr(token: str) -> list[str]:
    """The `amr` claim of our own access token (kept sealed in the session cookie, from auth-service
    directly): what this sign-in proved. Read, not verified: the API verifies every call."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return []
    amr = claims.get("amr") if isinstance(claims, dict) else None
    return [str(value) for value in amr] if isinstance(amr, list) else []


async def admin(request: Request, web: WebDep, viewer: SignedIn) -> Viewer:
    """The signed-in admin, with a second factor that this session's sign-in proved."""
    if "admin" not in (viewer.user.get("roles") or []):
        raise AdminRefused
    mfa = await web.api.call("GET", "/auth/mfa", token=viewer.token, caller=client_of(request))
    if not (mfa.get("totp") or mfa.get("passkeys")):
        raise AdminRefused(NO_FACTOR)
    if MULTI_FACTOR_AMR not in token_amr(viewer.token):
        raise AdminRefused(FACTOR_NOT_PROVEN)
    return viewer


Admin = Annotated[Viewer, Depends(admin)]


def install(app: FastAPI, web: Web) -> None:
    """The console's pages, and what a refused visitor sees instead."""

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, AdminRefused)
        _ = web.renderer.gettext_for(request)
        if exc.reason == NO_FACTOR:
            return web.renderer.page(
                request,
                "message.html",
                status.HTTP_403_FORBIDDEN,
                heading=_("Set up a second factor first"),
                paragraphs=[
                    _(
                        "The admin console needs a second factor: an authenticator app or a passkey. "
                        "Set one up, sign out, then sign in with it."
                    )
                ],
                action_url="/account/security",
                action_label=_("Go to security"),
            )
        if exc.reason == FACTOR_NOT_PROVEN:
            return web.renderer.page(
                request,
                "admin_sign_in_again.html",
                status.HTTP_403_FORBIDDEN,
                heading=_("Sign in again with your second factor"),
            )
        return web.renderer.page(
            request,
            "errors/error.html",
            status.HTTP_403_FORBIDDEN,
            heading=_("Administrators only"),
            message=_("This page is for administrators. Your account cannot open it."),
        )

    app.add_exception_handler(AdminRefused, refused)
    app.include_router(router)


async def _call(request: Request, web: Web, viewer: Viewer, method: str, path: str, **kwargs: Any) -> Any:
    """An admin API call; auth's own second-factor refusals become the console's pages."""
    try:
        return await web.api.call(method, path, token=viewer.token, caller=client_of(request), **kwargs)
    except ApiError as exc:
        if exc.status == status.HTTP_403_FORBIDDEN:
            raise AdminRefused(exc.slug if exc.slug in (NO_FACTOR, FACTOR_NOT_PROVEN) else "") from exc
        raise


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
        page = await _call(request, web, viewer, "GET", "/auth/admin/users", params=params)
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
        user = await _call(request, web, viewer, "GET", base)
    except ApiError as exc:
        if exc.status == status.HTTP_404_NOT_FOUND:
            raise _not_found() from exc
        raise
    sessions = await _call(request, web, viewer, "GET", f"{base}/sessions")
    identities = await _call(request, web, viewer, "GET", f"{base}/identities")
    mfa = await _call(request, web, viewer, "GET", f"{base}/mfa")
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
        trail = await _call(request, web, viewer, "GET", "/auth/admin/audit-events", params=params)
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
    }
    method, path, body = calls[action]
    await _call(request, web, viewer, method, path, json=body)


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
        return web.renderer.page(
            request,
            "admin_confirm.html",
            user=viewer.user,
            subject=subject.user,
            action=action,
            session_id=session_id,
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
        else:
            raise
        return await _user_page(request, web, viewer, user_id, status_code=exc.status, alert=alert)
    return RedirectResponse(f"{USERS}/{user_id}?done={action}", status.HTTP_303_SEE_OTHER)
