"""Organizations: the switcher (my orgs, acting in one or as myself), creating one, an org's page
(settings, members and roles, transfer of ownership, leaving, invitations, deleting it), joining by
a verified email domain, and the page an emailed invitation link opens (signed out: sign in or
create the account first, then accept)."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from gatehouse_web.api import ApiError
from gatehouse_web.session import CSRF_COOKIE
from gatehouse_web.web import Form, SignedIn, Viewer, WebDep, client_of, explain, field

router = APIRouter(include_in_schema=False)

ORGS = "/orgs"
ACCEPT = "/invitations/accept"
ROLES = ("member", "admin", "owner")


def _claims(viewer: Viewer) -> dict[str, Any]:
    """The claims of the browser session's own access token (it came from the API over our own
    channel and lives sealed in our cookie, so it is read, not verified, here)."""
    try:
        payload = viewer.token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def acting_org(viewer: Viewer) -> str | None:
    """The org the browser's session acts in: the `org_id` claim of its access token."""
    org_id = _claims(viewer).get("org_id")
    return str(org_id) if org_id else None


def acting_role(viewer: Viewer) -> str | None:
    """The session's role in the org it acts in (`org_role`), if it acts in one."""
    role = _claims(viewer).get("org_role")
    return str(role) if role and acting_org(viewer) else None


def _role_names(request: Request, web: WebDep) -> dict[str, str]:
    _ = web.renderer.gettext_for(request)
    return {"owner": _("Owner"), "admin": _("Admin"), "member": _("Member")}


async def _orgs_page(
    request: Request, web: WebDep, viewer: Viewer, status_code: int = 200, **context: Any
) -> Response:
    caller = client_of(request)
    mine = await web.api.call("GET", "/auth/orgs", token=viewer.token, caller=caller)
    joinable = await web.api.call("GET", "/auth/me/joinable-orgs", token=viewer.token, caller=caller)
    return web.renderer.page(
        request,
        "orgs.html",
        status_code,
        user=viewer.user,
        orgs=mine["items"],
        joinable=joinable["items"],
        acting=acting_org(viewer),
        role_names=_role_names(request, web),
        **{"errors": {}, "values": {}, **context},
    )


@router.get(ORGS)
async def orgs_page(request: Request, web: WebDep, viewer: SignedIn) -> Response:
    _ = web.renderer.gettext_for(request)
    notice = None
    if "personal" in request.query_params:
        notice = _("You are acting as yourself again.")
    elif "deleted" in request.query_params:
        notice = _("The organization is deleted.")
    elif "left" in request.query_params:
        notice = _("You left the organization.")
    return await _orgs_page(request, web, viewer, notice=notice)


@router.post(ORGS)
async def create_org(request: Request, web: WebDep, form: Form, viewer: SignedIn) -> Response:
    _ = web.renderer.gettext_for(request)
    values = {"name": field(form, "name", 200), "slug": field(form, "slug", 100)}
    try:
        org = await web.api.call(
            "POST", "/auth/orgs", json=values, token=viewer.token, caller=client_of(request)
        )
    except ApiError as exc:
        if exc.slug == "org-slug-taken":
            errors, alert = {"slug": _("This short name is taken; choose another.")}, None
        else:
            errors, alert = explain(exc, _, {"name": "name", "slug": "slug"})
            if "slug" in errors and exc.status == 422:
                errors["slug"] = _("Use 3 to 40 lowercase letters, digits and hyphens, not at either end.")
        return await _orgs_page(
            request, web, viewer, status.HTTP_400_BAD_REQUEST, errors=errors, alert=alert, values=values
        )
    return RedirectResponse(f"{ORGS}/{org['id']}?created", status.HTTP_303_SEE_OTHER)


def _signed_in_with(request: Request, web: WebDep, tokens: dict[str, Any], to: str) -> Response:
    """New tokens from a switch: this browser's session cookies, its open forms still valid."""
    response = RedirectResponse(to, status.HTTP_303_SEE_OTHER)
    web.sessions.sign_in(response, tokens, keep_csrf=request.cookies.get(CSRF_COOKIE))
    return response


@router.post(f"{ORGS}/personal/switch")
async def switch_to_personal(request: Request, web: WebDep, form: Form, viewer: SignedIn) -> Response:
    tokens = await web.api.call(
        "POST", "/auth/orgs/personal/switch", token=viewer.token, caller=client_of(request)
    )
    return _signed_in_with(request, web, tokens, f"{ORGS}?personal")


def _org_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise StarletteHTTPException(status.HTTP_404_NOT_FOUND) from None


@router.post(ORGS + "/{org_id}/switch")
async def switch_org(org_id: str, request: Request, web: WebDep, form: Form, viewer: SignedIn) -> Response:
    org_id = _org_id(org_id)
    try:
        tokens = await web.api.call(
            "POST", f"/auth/orgs/{org_id}/switch", token=viewer.token, caller=client_of(request)
        )
    except ApiError as exc:
        if exc.status == 404:
            raise StarletteHTTPException(status.HTTP_404_NOT_FOUND) from exc
        raise
    return _signed_in_with(request, web, tokens, f"{ORGS}/{org_id}?switched")


async def _org_page(
    request: Request, web: WebDep, viewer: Viewer, org_id: str, status_code: int = 200, **context: Any
) -> Response:
    caller = client_of(request)
    try:
        org = await web.api.call("GET", f"/auth/orgs/{org_id}", token=viewer.token, caller=caller)
    except ApiError as exc:
        if exc.status == 404:
            raise StarletteHTTPException(status.HTTP_404_NOT_FOUND) from exc
        raise
    members = await web.api.call("GET", f"/auth/orgs/{org_id}/members", token=viewer.token, caller=caller)
    manager = org["role"] in ("owner", "admin")
    invitations = (
        (await web.api.call("GET", f"/auth/orgs/{org_id}/invitations", token=viewer.token, caller=caller))[
            "items"
        ]
        if manager
        else []
    )
    names = _role_names(request, web)
    assignable = [r for r in ROLES if org["role"] == "owner" or r != "owner"]
    return web.renderer.page(
        request,
        "org.html",
        status_code,
        user=viewer.user,
        org=org,
        members=members["items"],
        invitations=invitations,
        manager=manager,
        acting=acting_org(viewer) == org_id,
        role_names=names,
        role_options=[(r, names[r]) for r in assignable],
        **{"errors": {}, "values": {"role": "member"}, **context},
    )


def _notice_of(request: Request, web: WebDep) -> str | None:
    _ = web.renderer.gettext_for(request)
    notices = {
        "created": _("Your organization is ready. Invite people to it below."),
        "switched": _("You are now acting in this organization."),
        "joined": _("Welcome: you are now a member of this organization."),
        "invited": _("The invitation is on its way."),
        "revoked": _("The invitation is withdrawn: its link no longer works."),
        "saved": _("Saved."),
        "role": _("The role is changed."),
        "removed": _("The member is removed: they can no longer act in the organization."),
        "transferred": _("Ownership is transferred: you are now an admin."),
    }
    return next((text for key, text in notices.items() if key in request.query_params), None)


@router.get(ORGS + "/{org_id}")
async def org_page(org_id: str, request: Request, web: WebDep, viewer: SignedIn) -> Response:
    return await _org_page(request, web, viewer, _org_id(org_id), notice=_notice_of(request, web))


async def _act(
    request: Request,
    web: WebDep,
    viewer: Viewer,
    org_id: str,
    method: str,
    path: str,
    done: str,
    body: dict[str, Any] | None = None,
    fields: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    """One call on the org; back to its page saying what was done, or what went wrong."""
    _ = web.renderer.gettext_for(request)
    try:
        await web.api.call(method, path, json=body, token=viewer.token, caller=client_of(request))
    except ApiError as exc:
        if exc.status == 404 and exc.slug == "org-not-found":
            raise StarletteHTTPException(status.HTTP_404_NOT_FOUND) from exc
        errors, alert = explain(exc, _, fields)
        if exc.slug == "last-owner":
            alert = _("An organization keeps at least one owner: make someone else an owner first.")
        elif exc.slug == "seat-limit-reached":
            alert = _("Every seat of the organization's plan is taken (members and pending invitations).")
        elif exc.slug == "member-limit-reached":
            alert = _("The organization has reached its member limit (members and pending invitations).")
        elif exc.slug == "already-member":
            errors, alert = {"email": _("This person is already a member.")}, None
        elif exc.slug == "org-role-required":
            alert = _("Your role in this organization does not allow this.")
        return await _org_page(
            request,
            web,
            viewer,
            org_id,
            status.HTTP_400_BAD_REQUEST,
            errors=errors,
            alert=alert,
            values=values or {"role": "member"},
        )
    return RedirectResponse(f"{ORGS}/{org_id}?{done}", status.HTTP_303_SEE_OTHER)


@router.post(ORGS + "/{org_id}/settings")
async def save_settings(org_id: str, request: Request, web: WebDep, form: Form, viewer: SignedIn) -> Response:
    org_id = _org_id(org_id)
    body: dict[str, Any] = {
        "name": field(form, "name", 200),
        "allow_domain_join": field(form, "allow_domain_join") == "on",
    }
    limit = field(form, "member_limit", 10)
    if limit:
        body["member_limit"] = int(limit) if limit.isdigit() else limit
    return await _act(
        request,
        web,
        viewer,
        org_id,
        "PATCH",
        f"/auth/orgs/{org_id}",
        "saved",
        body,
        {"name": "name", "member_limit": "member_limit"},
    )


@router.post(ORGS + "/{org_id}/invitations")
async def send_invitation(
    org_id: str, request: Request, web: WebDep, form: Form, viewer: SignedIn
) -> Response:
    org_id = _org_id(org_id)
    values = {"email": field(form, "email", 320), "role": field(form, "role", 10) or "member"}
    return await _act(
        request,
        web,
        viewer,
        org_id,
        "POST",
        f"/auth/orgs/{org_id}/invitations",
        "invited",
        values,
        {"email": "email", "role": "role"},
        values,
    )


@router.post(ORGS + "/{org_id}/invitations/{invitation_id}/revoke")
async def revoke_invitation(
    org_id: str, invitation_id: str, request: Request, web: WebDep, form: Form, viewer: SignedIn
) -> Response:
    org_id, invitation_id = _org_id(org_id), _org_id(invitation_id)
    return await _act(
        request, web, viewer, org_id, "DELETE", f"/auth/orgs/{org_id}/invitations/{invitation_id}", "revoked"
    )


@router.post(ORGS + "/{org_id}/members/{user_id}/role")
async def change_role(
    org_id: str, user_id: str, request: Request, web: WebDep, form: Form, viewer: SignedIn
) -> Response:
    org_id, user_id = _org_id(org_id), _org_id(user_id)
    return await _act(
        request,
        web,
        viewer,
        org_id,
        "PATCH",
        f"/auth/orgs/{org_id}/members/{user_id}",
        "role",
        {"role": field(form, "role", 10)},
    )


@router.post(ORGS + "/{org_id}/members/{user_id}/remove")
async def remove_member(
    org_id: str, user_id: str, request: Request, web: WebDep, form: Form, viewer: SignedIn
) -> Response:
    org_id, user_id = _org_id(org_id), _org_id(user_id)
    return await _act(
        request, web, viewer, org_id, "DELETE", f"/auth/orgs/{org_id}/members/{user_id}", "removed"
    )


@router.post(ORGS + "/{org_id}/transfer")
async def transfer(org_id: str, request: Request, web: WebDep, form: Form, viewer: SignedIn) -> Response:
    org_id = _org_id(org_id)
    return await _act(
        request,
        web,
        viewer,
        org_id,
        "POST",
        f"/auth/orgs/{org_id}/transfer",
        "transferred",
        {"user_id": field(form, "user_id", 40)},
    )


async def _leaving(
    request: Request, web: WebDep, viewer: Viewer, org_id: str, method: str, path: str, to: str
) -> Response:
    """Leave or delete the org. A session acting in it would die with it: act as oneself first."""
    _ = web.renderer.gettext_for(request)
    caller = client_of(request)
    tokens = None
    token = viewer.token
    if acting_org(viewer) == org_id:
        tokens = await web.api.call("POST", "/auth/orgs/personal/switch", token=token, caller=caller)
        token = str(tokens["access_token"])
    try:
        await web.api.call(method, path, token=token, caller=caller)
    except ApiError as exc:
        _errors, alert = explain(exc, _)
        if exc.slug == "last-owner":
            alert = _(
                "You are the last owner: transfer ownership to someone first, or delete the organization."
            )
        page = await _org_page(
            request, web, Viewer(token, viewer.user), org_id, status.HTTP_400_BAD_REQUEST, alert=alert
        )
        if tokens is not None:
            web.sessions.sign_in(page, tokens, keep_csrf=request.cookies.get(CSRF_COOKIE))
        return page
    if tokens is not None:
        return _signed_in_with(request, web, tokens, to)
    return RedirectResponse(to, status.HTTP_303_SEE_OTHER)


@router.post(ORGS + "/{org_id}/leave")
async def leave(org_id: str, request: Request, web: WebDep, form: Form, viewer: SignedIn) -> Response:
    org_id = _org_id(org_id)
    return await _leaving(request, web, viewer, org_id, "POST", f"/auth/orgs/{org_id}/leave", f"{ORGS}?left")


@router.post(ORGS + "/{org_id}/delete")
async def delete_org(org_id: str, request: Request, web: WebDep, form: Form, viewer: SignedIn) -> Response:
    org_id = _org_id(org_id)
    _ = web.renderer.gettext_for(request)
    org = await web.api.call("GET", f"/auth/orgs/{org_id}", token=viewer.token, caller=client_of(request))
    if field(form, "confirm_slug", 100) != org["slug"]:
        errors = {
            "confirm_slug": _("Type the organization's short name, %(slug)s, to confirm.", slug=org["slug"])
        }
        return await _org_page(request, web, viewer, org_id, status.HTTP_400_BAD_REQUEST, errors=errors)
    return await _leaving(request, web, viewer, org_id, "DELETE", f"/auth/orgs/{org_id}", f"{ORGS}?deleted")


@router.post(ORGS + "/{org_id}/join")
async def join(org_id: str, request: Request, web: WebDep, form: Form, viewer: SignedIn) -> Response:
    org_id = _org_id(org_id)
    _ = web.renderer.gettext_for(request)
    try:
        await web.api.call("POST", f"/auth/orgs/{org_id}/join", token=viewer.token, caller=client_of(request))
    except ApiError as exc:
        _errors, alert = explain(exc, _)
        if exc.slug == "seat-limit-reached":
            alert = _("Every seat of the organization's plan is taken (members and pending invitations).")
        return await _orgs_page(request, web, viewer, status.HTTP_400_BAD_REQUEST, alert=alert)
    return RedirectResponse(f"{ORGS}/{org_id}?joined", status.HTTP_303_SEE_OTHER)


# The emailed link


def _accept_page(
    request: Request, web: WebDep, token: str, status_code: int = 200, **context: Any
) -> Response:
    signed_in = web.sessions.access_token(request) is not None
    here = f"{ACCEPT}?token={quote(token, safe='')}"
    return web.renderer.page(
        request,
        "invitation_accept.html",
        status_code,
        token=token,
        signed_in=signed_in,
        sign_in_url=f"/login?return_to={quote(here, safe='')}",
        **context,
    )


@router.get(ACCEPT)
async def accept_page(
    request: Request, web: WebDep, token: Annotated[str, Query(max_length=200)] = ""
) -> Response:
    """A button accepts (a mail scanner's GET spends nothing); signed out, sign in first and come
    back here."""
    return _accept_page(request, web, token)


@router.post(ACCEPT)
async def accept(request: Request, web: WebDep, form: Form, viewer: SignedIn) -> Response:
    _ = web.renderer.gettext_for(request)
    token = field(form, "token", 200)
    try:
        org = await web.api.call(
            "POST",
            "/auth/invitations/accept",
            json={"token": token},
            token=viewer.token,
            caller=client_of(request),
        )
    except ApiError as exc:
        messages = {
            "invitation-email-mismatch": _(
                "This invitation was sent to another address than %(email)s. "
                "Sign in with the invited address.",
                email=viewer.user["email"],
            ),
            "email-not-verified": _(
                "Confirm your email address first (see the email we sent you), then accept."
            ),
            "already-member": _("You are already a member of this organization."),
            "seat-limit-reached": _("The organization has no seat left: ask its owners."),
            "member-limit-reached": _("The organization has reached its member limit: ask its owners."),
        }
        alert = messages.get(exc.slug) or _(
            "This invitation link no longer works (used, withdrawn or expired): ask for a new one."
        )
        return _accept_page(request, web, token, status.HTTP_400_BAD_REQUEST, alert=alert)
    return RedirectResponse(f"{ORGS}/{org['id']}?joined", status.HTTP_303_SEE_OTHER)
