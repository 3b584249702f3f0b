"""The person's API keys: create one (name, scopes, expiry) and see its key once, list them (never
the secret: the prefix, scopes, last use, expiry), revoke one after a confirmation. An owner or
admin whose session acts in an org (the token's `org_id` and `org_role`) also manages the org's
keys here: they belong to the org, read it as a member would and hold only its read scopes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.responses import Response

from gatehouse_web.api import ApiError
from gatehouse_web.i18n import moment, profile_zone
from gatehouse_web.pages.orgs import acting_org, acting_role
from gatehouse_web.web import Form, SignedIn, Viewer, WebDep, client_of, explain, field

router = APIRouter(include_in_schema=False)

PAGE = "/account/api-keys"
EXPIRY_DAYS = ("30", "90", "365", "")  # the form's choices; "" = never
MANAGERS = ("owner", "admin")


def scope_labels(_: Callable[..., str]) -> dict[str, str]:
    """What each scope lets a key do, in the person's words (gatehouse_contracts.tokens.API_KEY_SCOPES)."""
    return {
        "profile:read": _("Read your profile"),
        "orgs:read": _("Read your organizations and their members"),
        "billing:read": _("Read your subscription, payments and invoices"),
        "billing:write": _("Subscribe, change plan, cancel and resume"),
    }


def org_scope_labels(_: Callable[..., str]) -> dict[str, str]:
    """The scopes an org's key may hold (auth-service refuses the others), in the org's words."""
    return {
        "orgs:read": _("Read the organization and its members"),
        "billing:read": _("Read the organization’s subscription, entitlements and payments"),
    }


def expiry_choices(_: Callable[..., str]) -> list[tuple[str, str]]:
    return [
        ("30", _("In 30 days")),
        ("90", _("In 90 days")),
        ("365", _("In a year")),
        ("", _("Never")),
    ]


async def _org(request: Request, web: WebDep, viewer: Viewer) -> dict[str, Any] | None:
    """The org whose keys the session may manage: the one it acts in, as an owner or admin."""
    org_id = acting_org(viewer)
    if org_id is None or acting_role(viewer) not in MANAGERS:
        return None
    try:
        org: dict[str, Any] = await web.api.call(
            "GET", f"/auth/orgs/{org_id}", token=viewer.token, caller=client_of(request)
        )
    except ApiError as exc:
        if exc.status not in (401, 403, 404):
            raise
        return None
    return org if org.get("role") in MANAGERS else None


async def _keys(
    request: Request, web: WebDep, viewer: Viewer, org_id: str | None = None
) -> list[dict[str, Any]]:
    path = f"/auth/api-keys?org_id={org_id}" if org_id else "/auth/api-keys"
    listed = await web.api.call("GET", path, token=viewer.token, caller=client_of(request))
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
    context.setdefault("org_values", {"org_expires_in_days": "90", "scopes": []})
    org = await _org(request, web, viewer)
    errors: dict[str, str] = context.pop("errors", {})
    return web.renderer.page(
        request,
        "api_keys.html",
        status_code,
        user=viewer.user,
        keys=await _keys(request, web, viewer),
        org=org,
        org_keys=await _keys(request, web, viewer, org["id"]) if org else [],
        org_scopes=org_scope_labels(_),
        scopes=scope_labels(_),
        expiries=expiry_choices(_),
        errors={k: v for k, v in errors.items() if not k.startswith("org_")},
        org_errors={k: v for k, v in errors.items() if k.startswith("org_")},
        **context,
    )


@router.get(PAGE)
async def api_keys(request: Request, web: WebDep, viewer: SignedIn) -> Response:
    return await _page(request, web, viewer)


@router.post(PAGE)
async def create_api_key(request: Request, web: WebDep, form: Form, viewer: SignedIn) -> Response:
    """The key is in this answer only: the page shows it once, with a copy button. The org's form
    (its fields prefixed `org_`) makes a key of the org the session acts in."""
    _ = web.renderer.gettext_for(request)
    for_org = field(form, "for", 10) == "org"
    pre = "org_" if for_org else ""
    labels = org_scope_labels(_) if for_org else scope_labels(_)
    name = field(form, pre + "name", 200)
    chosen = [s for s in form.getlist(pre + "scope") if isinstance(s, str) and s in labels]
    expiry = field(form, pre + "expires_in_days", 10)
    values = {pre + "name": name, "scopes": chosen, pre + "expires_in_days": expiry}
    errors: dict[str, str] = {}
    if not name:
        errors[pre + "name"] = _("Give the key a name, so you can tell it apart later.")
    elif len(name) > 64:
        errors[pre + "name"] = _("Use at most 64 characters.")
    if not chosen:
        errors[pre + "scope"] = _("Choose at least one thing the key may do.")
    if expiry not in EXPIRY_DAYS:
        errors[pre + "expires_in_days"] = _("Choose when the key stops working.")
    alert = None
    org = await _org(request, web, viewer) if for_org else None
    if for_org and org is None:
        alert = _("Only an owner or admin acting in the organization manages its keys.")
    elif not errors:
        body: dict[str, Any] = {
            "name": name,
            "scopes": chosen,
            "expires_in_days": int(expiry) if expiry else None,
        }
        if org is not None:
            body["org_id"] = org["id"]
        try:
            created = await web.api.call(
                "POST", "/auth/api-keys", json=body, token=viewer.token, caller=client_of(request)
            )
        except ApiError as exc:
            if exc.status not in (403, 404, 409, 422, 429):
                raise
            fields = {
                "name": pre + "name",
                "scopes": pre + "scope",
                "expires_in_days": pre + "expires_in_days",
            }
            errors, alert = explain(exc, _, fields)
        else:
            return await _page(request, web, viewer, status.HTTP_201_CREATED, created=created)
    kept = {"org_values": values} if for_org else {"values": values}
    return await _page(request, web, viewer, status.HTTP_400_BAD_REQUEST, errors=errors, alert=alert, **kept)


async def _own_key(request: Request, web: WebDep, viewer: Viewer, key_id: str) -> dict[str, Any] | None:
    """My key with that id, or one of the org's I manage now."""
    keys = await _keys(request, web, viewer)
    org = await _org(request, web, viewer)
    if org is not None:
        keys += await _keys(request, web, viewer, org["id"])
    return next((k for k in keys if k["id"] == key_id), None)


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
