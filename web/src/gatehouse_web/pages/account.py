"""The signed-in person's own pages: who they are, their profile, their password, their sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_date, format_datetime
from fastapi import APIRouter, Request, status
from fastapi.responses import RedirectResponse, Response

from gatehouse_web.api import ApiError
from gatehouse_web.devices import device_name
from gatehouse_web.settings import LOCALES
from gatehouse_web.stepup import confirm_page, confirmed_notice, needs_reauthentication
from gatehouse_web.web import Form, SignedIn, Viewer, WebDep, client_of, explain, field

router = APIRouter(include_in_schema=False)

PROFILE_FIELDS = ("display_name", "first_name", "last_name", "avatar_url", "locale", "timezone")


def _zone(viewer: Viewer) -> ZoneInfo | None:
    """The profile's time zone, if it names one this machine knows."""
    name = (viewer.user.get("profile") or {}).get("timezone")
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _when(value: Any, locale: str, zone: ZoneInfo | None = None) -> str:
    return format_datetime(datetime.fromisoformat(str(value)), format="medium", tzinfo=zone, locale=locale)


def _account(
    request: Request, web: WebDep, viewer: Viewer, status_code: int = 200, **context: Any
) -> Response:
    locale = getattr(request.state, "locale", "en")
    profile = viewer.user.get("profile") or {}
    values = {name: profile.get(name) or "" for name in PROFILE_FIELDS}
    return web.renderer.page(
        request,
        "account.html",
        status_code,
        user=viewer.user,
        member_since=format_date(
            datetime.fromisoformat(str(viewer.user["created_at"])), format="long", locale=locale
        ),
        locales=LOCALES,
        **{"values": values, **context},
    )


@router.get("/account")
async def account(request: Request, web: WebDep, viewer: SignedIn) -> Response:
    return _account(request, web, viewer, notice=confirmed_notice(request, web))


@router.post("/account/resend-verification")
async def resend_verification(request: Request, web: WebDep, form: Form, viewer: SignedIn) -> Response:
    _ = web.renderer.gettext_for(request)
    try:
        await web.api.call("POST", "/auth/request/verify", token=viewer.token, caller=client_of(request))
    except ApiError as exc:
        if exc.slug == "already-verified":
            return _account(request, web, viewer, notice=_("Your email address is already confirmed."))
        _errors, alert = explain(exc, _)
        return _account(request, web, viewer, status.HTTP_400_BAD_REQUEST, alert=alert)
    return _account(
        request,
        web,
        viewer,
        notice=_("We have sent the email again to %(email)s.", email=viewer.user["email"]),
    )


@router.post("/account/profile")
async def update_profile(request: Request, web: WebDep, form: Form, viewer: SignedIn) -> Response:
    _ = web.renderer.gettext_for(request)
    values = {name: field(form, name, 1000) for name in PROFILE_FIELDS}
    if values["locale"] not in ("", *LOCALES):
        values["locale"] = ""
    body = {name: value or None for name, value in values.items()}  # an empty field clears it
    try:
        user = await web.api.call(
            "PATCH", "/auth/me", json=body, token=viewer.token, caller=client_of(request)
        )
    except ApiError as exc:
        errors, alert = explain(exc, _, {name: name for name in PROFILE_FIELDS})
        return _account(
            request, web, viewer, status.HTTP_400_BAD_REQUEST, errors=errors, alert=alert, values=values
        )
    updated = Viewer(viewer.token, user)
    request.state.locale = web.renderer.locale_for(request, (user.get("profile") or {}).get("locale"))
    _ = web.renderer.gettext_for(request)  # the page answers in the language just chosen
    return _account(request, web, updated, notice=_("Your profile is saved."))


@router.post("/account/password")
async def change_password(request: Request, web: WebDep, form: Form, viewer: SignedIn) -> Response:
    _ = web.renderer.gettext_for(request)
    old, new, confirm = (
        field(form, name, 4096) for name in ("old_password", "new_password", "confirm_password")
    )
    errors: dict[str, str] = {}
    alert = None
    if not old:
        errors["old_password"] = _("Enter your current password.")
    if not new:
        errors["new_password"] = _("Choose a new password.")
    elif new != confirm:
        errors["confirm_password"] = _("The two passwords are not the same.")
    if not errors:
        try:
            await web.api.call(
                "POST",
                "/auth/change-password",
                json={"old_password": old, "new_password": new},
                token=viewer.token,
                caller=client_of(request),
            )
        except ApiError as exc:
            if needs_reauthentication(exc):  # signed in too long ago: confirm, then change it again
                return await confirm_page(request, web, viewer, "/account")
            if exc.slug == "invalid-credentials":
                errors = {"old_password": _("Your current password is not right.")}
            else:
                fields = {
                    "old_password": "old_password",
                    "new_password": "new_password",
                    "password": "new_password",
                }
                errors, alert = explain(exc, _, fields)
        else:
            return _account(
                request,
                web,
                viewer,
                notice=_("Your password is changed. Your other devices were signed out."),
            )
    return _account(request, web, viewer, status.HTTP_400_BAD_REQUEST, errors=errors, alert=alert)


async def _sessions_page(
    request: Request, web: WebDep, viewer: Viewer, status_code: int = 200, **context: Any
) -> Response:
    listed = await web.api.call("GET", "/auth/sessions", token=viewer.token, caller=client_of(request))
    locale = getattr(request.state, "locale", "en")
    recent_first = sorted(listed["items"], key=lambda s: str(s["last_used_at"]), reverse=True)
    sessions = sorted(recent_first, key=lambda s: not s["current"])  # this device on top
    zone = _zone(viewer)
    _ = web.renderer.gettext_for(request)
    for item in sessions:
        item["device"] = device_name(item.get("user_agent"), _)
        item["created"] = _when(item["created_at"], locale, zone)
        item["last_used"] = _when(item["last_used_at"], locale, zone)
    return web.renderer.page(
        request, "sessions.html", status_code, user=viewer.user, sessions=sessions, **context
    )


@router.get("/account/sessions")
async def sessions(request: Request, web: WebDep, viewer: SignedIn) -> Response:
    return await _sessions_page(request, web, viewer)


@router.post("/account/sessions/{session_id}/revoke")
async def revoke_session(
    session_id: str, request: Request, web: WebDep, form: Form, viewer: SignedIn
) -> Response:
    _ = web.renderer.gettext_for(request)
    try:
        await web.api.call(
            "DELETE", f"/auth/sessions/{session_id}", token=viewer.token, caller=client_of(request)
        )
    except ApiError as exc:
        if exc.status not in (404, 422):
            raise
        return await _sessions_page(
            request, web, viewer, status.HTTP_400_BAD_REQUEST, alert=_("That session had already ended.")
        )
    return await _sessions_page(request, web, viewer, notice=_("That device is signed out."))


@router.post("/account/sessions/revoke-all")
async def sign_out_everywhere(request: Request, web: WebDep, form: Form, viewer: SignedIn) -> Response:
    await web.api.call("POST", "/auth/logout-all", token=viewer.token, caller=client_of(request))
    response = RedirectResponse("/login?signed_out", status.HTTP_303_SEE_OTHER)
    web.sessions.sign_out(response)
    return response
