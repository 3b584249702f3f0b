"""The person's API keys: create one (name, scopes, expiry) and see its key once, list them (never
the secret: the prefix, scopes, last use, expiry), revoke one after a confirmation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.responses import Response

from gatehouse_web.api import ApiError
from gatehouse_web.i18n import moment, profile_zone
from gatehouse_web.web import Form, SignedIn, Viewer, WebDep, client_of, explain, field

router = APIRouter(include_in_schema=False)

PAGE = "/account/api-keys"
EXPIRY_DAYS = ("30", "90", "365", "")  # the form's choices; "" = never


def scope_labels(_: Callable[..., str]) -> dict[str, str]:
    """What each scope lets a key do, in the person's words (gatehouse_contracts.tokens.API_KEY_SCOPES)."""
    return {
        "profile:read": _("Read your profile"),
        "orgs:read": _("Read your organizations, their members and invitations"),
        "billing:read": _("Read your subscription, payments and invoices"),
        "billing:write": _("Subscribe, change plan, cancel and resume"),
    }


def expiry_choices(_: Callable[..., str]) -> list[tuple[str, str]]:
    return [
        ("30", _("In 30 days")),
        ("90", _("In 90 days")),
        ("365", _("In a year")),
        ("", _("Never")),
    ]


async def _keys(request: Request, web: WebDep, viewer: Viewer) -> list[dict[str, Any]]:
    listed = await web.api.call("GET", "/auth/api-keys", token=viewer.token, caller=client_of(request))
    locale = getattr(request.state, "locale", "en")
    zone = profile_zone(viewer.user)
    keys: list[dict[str, Any]] = listed["items"]
    for key in keys:
        key["created"] = moment(key["created_at"], locale, zone)
        key["last_used"] = moment(key["last_used_at"], locale, zone) if key["last_used_at"] else None
        key["expires"] = moment(key["expires_at"], locale, zone) if key["expires_at"] else None
    return keys


async def _page(
    request: Request, web: WebDep, viewer: Viewer, status_code: int = 200, **context: Any
) -> Response:
    _ = web.renderer.gettext_for(request)
    context.setdefault("values", {"expires_in_days": "90", "scopes": []})
    return web.renderer.page(
        request,
        "api_keys.html",
        status_code,
        user=viewer.user,
        keys=await _keys(request, web, viewer),
        scopes=scope_labels(_),
        expiries=expiry_choices(_),
        errors=context.pop("errors", {}),
        **context,
    )


@router.get(PAGE)
async def api_keys(request: Request, web: WebDep, viewer: SignedIn) -> Response:
    return await _page(request, web, viewer)


@router.post(PAGE)
async def create_api_key(request: Request, web: WebDep, form: Form, viewer: SignedIn) -> Response:
    """The key is in this answer only: the page shows it once, with a copy button."""
    _ = web.renderer.gettext_for(request)
    name = field(form, "name", 200)
    chosen = [s for s in form.getlist("scope") if isinstance(s, str) and s in scope_labels(_)]
    expiry = field(form, "expires_in_days", 10)
    values = {"name": name, "scopes": chosen, "expires_in_days": expiry}
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = _("Give the key a name, so you can tell it apart later.")
    elif len(name) > 64:
        errors["name"] = _("Use at most 64 characters.")
    if not chosen:
        errors["scope"] = _("Choose at least one thing the key may do.")
    if expiry not in EXPIRY_DAYS:
        errors["expires_in_days"] = _("Choose when the key stops working.")
    alert = None
    if not errors:
        body = {"name": name, "scopes": chosen, "expires_in_days": int(expiry) if expiry else None}
        try:
            created = await web.api.call(
                "POST", "/auth/api-keys", json=body, token=viewer.token, caller=client_of(request)
            )
        except ApiError as exc:
            if exc.status not in (409, 422, 429):
                raise
            fields = {"name": "name", "scopes": "scope", "expires_in_days": "expires_in_days"}
            errors, alert = explain(exc, _, fields)
        else:
            return await _page(request, web, viewer, status.HTTP_201_CREATED, created=created)
    return await _page(
        request, web, viewer, status.HTTP_400_BAD_REQUEST, values=values, errors=errors, alert=alert
    )


async def _own_key(request: Request, web: WebDep, viewer: Viewer, key_id: str) -> dict[str, Any] | None:
    return next((k for k in await _keys(request, web, viewer) if k["id"] == key_id), None)


@router.get(PAGE + "/{key_id}/revoke")
async def confirm_revoke(key_id: str, request: Request, web: WebDep, viewer: SignedIn) -> Response:
    _ = web.renderer.gettext_for(request)
    key = await _own_key(request, web, viewer, key_id)
    if key is None:
        return await _page(
            request, web, viewer, status.HTTP_404_NOT_FOUND, alert=_("That key was already revoked.")
        )
    return web.renderer.page(
        request, "api_key_revoke.html", user=viewer.user, key=key, scopes=scope_labels(_)
    )


@router.post(PAGE + "/{key_id}/revoke")
async def revoke(key_id: str, request: Request, web: WebDep, form: Form, viewer: SignedIn) -> Response:
    _ = web.renderer.gettext_for(request)
    key = await _own_key(request, web, viewer, key_id)
    try:
        await web.api.call(
            "DELETE", f"/auth/api-keys/{key_id}", token=viewer.token, caller=client_of(request)
        )
    except ApiError as exc:
        if exc.status not in (404, 422):
            raise
        return await _page(
            request, web, viewer, status.HTTP_400_BAD_REQUEST, alert=_("That key was already revoked.")
        )
    name = key["name"] if key else ""
    return await _page(
        request,
        web,
        viewer,
        notice=_("The key “%(name)s” is revoked: it stops working within seconds.", name=name),
    )
