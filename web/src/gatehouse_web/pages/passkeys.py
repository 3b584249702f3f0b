"""Passkeys in the web front: the calls behind `static/passkeys.js` and what the security page,
the sign-in page, the second step and "confirm it's you" do with a passkey.

A ceremony is two requests. The page's script first asks this site for the options (a form post
with its CSRF token: `/account/security/passkeys/options` to create one, `/login/passkey/options`
to use one; both are auth's options passed through unchanged), hands them to the browser
(`navigator.credentials`), then puts the browser's answer (`credential.toJSON()`, base64url
fields) into the form's hidden `credential` field and sends the form as any other. So the second
request is an ordinary form post: errors come back on the page, and signing in sets the session
cookies exactly as the password does. Without JavaScript the passkey forms stay hidden and the
page says that passkeys need it."""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse, Response

from gatehouse_web.api import ApiError
from gatehouse_web.i18n import moment, profile_zone
from gatehouse_web.web import Form, SignedIn, Viewer, Web, WebDep, client_of, explain, field

router = APIRouter(include_in_schema=False)

NAME_LIMIT = 64  # as auth-service's PATCH /auth/passkeys/{id}
CREDENTIAL_LIMIT = 16_000  # a credential's JSON is a few hundred bytes; the form part may be 64 KiB


def credential_of(form_value: str) -> dict[str, Any] | None:
    """The browser's answer as posted by passkeys.js, or None when it is missing or not an object
    (the form was sent without the script, or tampered with)."""
    if not form_value or len(form_value) >= CREDENTIAL_LIMIT:
        return None
    try:
        credential = json.loads(form_value)
    except ValueError:
        return None
    return credential if isinstance(credential, dict) else None


def passkey_id(value: str) -> str | None:
    """A passkey's id from a form or path, if it is one (so nothing else reaches the API's path)."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


async def listed(request: Request, web: Web, viewer: Viewer) -> list[dict[str, Any]]:
    """The person's passkeys, with their dates written in the profile's language and time zone."""
    answer = await web.api.call("GET", "/auth/passkeys", token=viewer.token, caller=client_of(request))
    locale, zone = getattr(request.state, "locale", "en"), profile_zone(viewer.user)
    return [
        {
            **item,
            "created": moment(item["created_at"], locale, zone),
            "last_used": moment(item["last_used_at"], locale, zone) if item.get("last_used_at") else None,
        }
        for item in answer["items"]
    ]


async def options(request: Request, web: Web, path: str, token: str | None = None) -> Response:
    """Auth's options for the script, or a problem it can explain in the page's language."""
    _ = web.renderer.gettext_for(request)
    try:
        answer = await web.api.call("POST", path, token=token, caller=client_of(request))
    except ApiError as exc:
        if exc.status >= 500:
            raise
        _errors, message = explain(exc, _)
        return JSONResponse({"message": message}, exc.status if exc.status in (401, 429) else 400)
    return JSONResponse(answer, headers={"Cache-Control": "no-store"})


async def add(
    request: Request, web: Web, viewer: Viewer, name: str, credential: str
) -> tuple[dict[str, str], str | None]:
    """Store the passkey the browser made: field errors and an alert, both empty when it is in."""
    _ = web.renderer.gettext_for(request)
    if not name:
        return {"passkey_name": _("Name your passkey, so you can tell it from others later.")}, None
    answer = credential_of(credential)
    if answer is None:
        return {}, _("Passkeys need JavaScript. Turn it on for this site, then add the passkey again.")
    try:
        await web.api.call(
            "POST",
            "/auth/passkeys/register/verify",
            json={"credential": answer, "name": name},
            token=viewer.token,
            caller=client_of(request),
        )
    except ApiError as exc:
        if exc.slug == "passkey-rejected":
            return {}, _("This passkey could not be added. Please try again.")
        return explain(exc, _, {"name": "passkey_name"})
    return {}, None


async def rename(
    request: Request, web: Web, viewer: Viewer, passkey: str, name: str
) -> tuple[dict[str, str], str | None]:
    _ = web.renderer.gettext_for(request)
    error_field = f"name-{passkey}"
    if not name:
        return {error_field: _("Enter a name for the passkey.")}, None
    try:
        await web.api.call(
            "PATCH",
            f"/auth/passkeys/{passkey}",
            json={"name": name},
            token=viewer.token,
            caller=client_of(request),
        )
    except ApiError as exc:
        if exc.slug == "passkey-not-found":
            return {}, _("That passkey is no longer on your account.")
        return explain(exc, _, {"name": error_field})
    return {}, None


async def remove(request: Request, web: Web, viewer: Viewer, passkey: str) -> str | None:
    """Remove a passkey: None when done, else why not. A 401 reauthentication-required is raised
    for the caller to ask "confirm it's you"."""
    _ = web.renderer.gettext_for(request)
    try:
        await web.api.call(
            "DELETE", f"/auth/passkeys/{passkey}", token=viewer.token, caller=client_of(request)
        )
    except ApiError as exc:
        if exc.slug == "passkey-not-found":
            return _("That passkey is no longer on your account.")
        raise
    return None


def rejected_message(request: Request, web: Web, exc: ApiError) -> tuple[dict[str, str], str | None]:
    """A passkey assertion the API refused, said for a person (sign-in, second step, step-up)."""
    _ = web.renderer.gettext_for(request)
    if exc.status == 401:
        return {}, _("That passkey did not work here. Try again, or choose another way.")
    return explain(exc, _)


# --- the routes of the script's first request, and of a sign-in with a passkey ------------------


@router.post("/account/security/passkeys/options")
async def creation_options(request: Request, web: WebDep, form: Form, viewer: SignedIn) -> Response:
    return await options(request, web, "/auth/passkeys/register/options", viewer.token)


@router.post("/login/passkey/options")
async def request_options(request: Request, web: WebDep, form: Form) -> Response:
    """For a sign-in, the second step and "confirm it's you": discoverable credentials, no name."""
    return await options(request, web, "/auth/passkeys/login/options")


@router.post("/login/passkey")
async def sign_in_with_passkey(request: Request, web: WebDep, form: Form) -> Response:
    """A passkey with user verification is a whole sign-in: no password and no second step."""
    return_to = web.return_to(field(form, "return_to", 2048))
    credential = credential_of(field(form, "credential", CREDENTIAL_LIMIT))
    _ = web.renderer.gettext_for(request)
    if credential is None:
        errors: dict[str, str] = {}
        alert: str | None = _("Passkeys need JavaScript. Turn it on for this site, or sign in another way.")
    else:
        try:
            tokens = await web.api.call(
                "POST",
                "/auth/passkeys/login/verify",
                json={"credential": credential},
                caller=client_of(request),
            )
        except ApiError as exc:
            if exc.slug == "account-deactivated":
                errors, alert = {}, _("This account is deactivated.")
            else:
                errors, alert = rejected_message(request, web, exc)
        else:
            return web.signed_in(tokens, return_to)
    return web.renderer.page(
        request, "login.html", status.HTTP_400_BAD_REQUEST, errors=errors, alert=alert, return_to=return_to
    )
