"""The signed-in person's own pages: who they are, their profile, their email address (changed,
then confirmed again from the new address), their password, the Google/GitHub accounts they sign
in with (linked through the provider's consent page, unlinked unless it is the last way in), their
sessions, a download of their data, and deactivating or deleting the account. Changes that need a
recent sign-in go through "confirm it's you" (stepup.py) first."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from gatehouse_platform.downloads import dated_filename, download_headers
from gatehouse_web.api import ApiError
from gatehouse_web.devices import device_name
from gatehouse_web.i18n import long_date, moment, profile_zone
from gatehouse_web.session import REFRESH_PATH
from gatehouse_web.settings import LOCALES
from gatehouse_web.stepup import confirm_page, confirmed_notice, needs_reauthentication
from gatehouse_web.web import CsrfRefused, Form, SignedIn, Viewer, WebDep, client_of, explain, field

router = APIRouter(include_in_schema=False)

PROFILE_FIELDS = ("display_name", "first_name", "last_name", "avatar_url", "locale", "timezone")
PROVIDER_NAMES = {"google": "Google", "github": "GitHub"}
LINKED, LINK_FAILED = "linked", "link_failed"  # /account?linked=<provider>, ?link_failed=<provider>:<slug>
DEACTIVATE, DEACTIVATED = "/account/deactivate", "/account/deactivated"
DELETE, DELETED = "/account/delete", "/account/deleted"
EXPORT, EXPORT_FORMAT = "/account/export", "gatehouse-data-export/1"


async def _account(
    request: Request, web: WebDep, viewer: Viewer, status_code: int = 200, **context: Any
) -> Response:
    locale = getattr(request.state, "locale", "en")
    profile = viewer.user.get("profile") or {}
    values = {name: profile.get(name) or "" for name in PROFILE_FIELDS}
    identities = await web.api.call("GET", "/auth/identities", token=viewer.token, caller=client_of(request))
    linked = {str(item["provider"]): item for item in identities["items"]}
    providers = [
        {"key": key, "name": PROVIDER_NAMES[key], "identity": linked.get(key)}
        for key in PROVIDER_NAMES
        if key in web.settings.oauth_providers or key in linked
    ]
    return web.renderer.page(
        request,
        "account.html",
        status_code,
        user=viewer.user,
        member_since=long_date(datetime.fromisoformat(str(viewer.user["created_at"])).date(), locale),
        locales=LOCALES,
        providers=providers,
        has_password=bool(identities.get("has_password")),
        **{"values": values, **context},
    )


def _provider_notice(request: Request, web: WebDep) -> dict[str, str]:
    """After a link at Google/GitHub (the landing below sends the browser here): what happened."""
    _ = web.renderer.gettext_for(request)
    provider = PROVIDER_NAMES.get(request.query_params.get(LINKED, ""))
    if provider:
        return {"notice": _("%(provider)s is linked: you can sign in with it.", provider=provider)}
    failed = request.query_params.get(LINK_FAILED)
    if failed is None:
        return {}
    key, _sep, slug = failed.partition(":")
    provider = PROVIDER_NAMES.get(key, "")
    if slug == "identity-in-use":
        alert = _("That %(provider)s account is already linked to another account here.", provider=provider)
    elif slug == "oauth-denied":
        alert = _("The link was cancelled at %(provider)s.", provider=provider)
    else:
        alert = _("Linking did not complete. Please try again.")
    return {"alert": alert}


@router.get("/account")
async def account(request: Request, web: WebDep, viewer: SignedIn) -> Response:
    context: dict[str, Any] = {"notice": confirmed_notice(request, web), **_provider_notice(request, web)}
    return await _account(request, web, viewer, **context)


@router.post("/account/resend-verification")
async def resend_verification(request: Request, web: WebDep, form: Form, viewer: SignedIn) -> Response:
    _ = web.renderer.gettext_for(request)
    try:
        await web.api.call("POST", "/auth/request/verify", token=viewer.token, caller=client_of(request))
    except ApiError as exc:
        if exc.slug == "already-verified":
            return await _account(request, web, viewer, notice=_("Your email address is already confirmed."))
        _errors, alert = explain(exc, _)
        return await _account(request, web, viewer, status.HTTP_400_BAD_REQUEST, alert=alert)
    return await _account(
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
        return await _account(
            request, web, viewer, status.HTTP_400_BAD_REQUEST, errors=errors, alert=alert, values=values
        )
    updated = Viewer(viewer.token, user)
    request.state.locale = web.renderer.locale_for(request, (user.get("profile") or {}).get("locale"))
    _ = web.renderer.gettext_for(request)  # the page answers in the language just chosen
    return await _account(request, web, updated, notice=_("Your profile is saved."))


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
            return await _account(
                request,
                web,
                viewer,
                notice=_("Your password is changed. Your other devices were signed out."),
            )
    return await _account(request, web, viewer, status.HTTP_400_BAD_REQUEST, errors=errors, alert=alert)


async def _sessions_page(
    request: Request, web: WebDep, viewer: Viewer, status_code: int = 200, **context: Any
) -> Response:
    listed = await web.api.call("GET", "/auth/sessions", token=viewer.token, caller=client_of(request))
    locale = getattr(request.state, "locale", "en")
    recent_first = sorted(listed["items"], key=lambda s: str(s["last_used_at"]), reverse=True)
    sessions = sorted(recent_first, key=lambda s: not s["current"])  # this device on top
    zone = profile_zone(viewer.user)
    _ = web.renderer.gettext_for(request)
    for item in sessions:
        item["device"] = device_name(item.get("user_agent"), _)
        item["created"] = moment(item["created_at"], locale, zone)
        item["last_used"] = moment(item["last_used_at"], locale, zone)
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


@router.post("/account/email")
async def change_email(request: Request, web: WebDep, form: Form, viewer: SignedIn) -> Response:
    """The new address is the account's at once, unconfirmed: a link to confirm it goes there (and
    a note to the old one). Needs a recent sign-in, and the password when the account has one."""
    _ = web.renderer.gettext_for(request)
    new_email, password = field(form, "new_email", 320), field(form, "password", 4096)
    errors: dict[str, str] = {}
    alert = None
    if "@" not in new_email:
        errors["new_email"] = _("Enter the new email address, like name@example.com.")
    if not errors:
        try:
            user = await web.api.call(
                "POST",
                "/auth/change-email",
                json={"new_email": new_email, "password": password or None},
                token=viewer.token,
                caller=client_of(request),
            )
        except ApiError as exc:
            if needs_reauthentication(exc):  # signed in too long ago: confirm, then change it again
                return await confirm_page(request, web, viewer, "/account")
            if exc.slug == "invalid-credentials":
                errors["password"] = (
                    _("Your current password is not right.") if password else _("Enter your password.")
                )
            elif exc.slug == "email-taken":
                errors["new_email"] = _("Another account already uses this email address.")
            else:
                errors, alert = explain(exc, _, {"new_email": "new_email", "password": "password"})
        else:
            return await _account(
                request,
                web,
                Viewer(viewer.token, user),
                notice=_(
                    "Your email address is now %(email)s. We have sent a link to it: "
                    "open it to confirm the address.",
                    email=user["email"],
                ),
            )
    return await _account(
        request,
        web,
        viewer,
        status.HTTP_400_BAD_REQUEST,
        errors=errors,
        alert=alert,
        email_values={"new_email": new_email},
    )


def _offered(provider: str) -> str:
    if provider not in PROVIDER_NAMES:
        raise StarletteHTTPException(status.HTTP_404_NOT_FOUND)
    return provider


@router.get("/account/identities/{provider}/link")
async def link_identity(provider: str, request: Request, web: WebDep, viewer: SignedIn) -> Response:
    """To the provider's consent page; auth-service's callback links the account and sends the
    browser to the landing below. auth's state cookie (on /auth/<provider>) is passed on to the
    browser, which brings it to the callback. A link, not a form: the CSP's form-action would stop
    a form's redirect to the provider, as it should. So another site cannot start it in this
    browser (a top-level GET carries Lax cookies), it is refused unless the browser says it came
    from this site (Sec-Fetch-Site; a browser too old to send it is let through)."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        raise CsrfRefused
    if _offered(provider) not in web.settings.oauth_providers:
        raise StarletteHTTPException(status.HTTP_404_NOT_FOUND)
    landing = f"{web.settings.public_url}{REFRESH_PATH}/oauth/{provider}/linked"
    response = RedirectResponse("/account", status.HTTP_303_SEE_OTHER)
    try:
        start = await web.api.call(
            "POST",
            f"/auth/{provider}/link",
            params={"redirect_to": landing},
            token=viewer.token,
            caller=client_of(request),
            cookies_to=response,
        )
    except ApiError:
        return RedirectResponse(f"/account?{urlencode({LINK_FAILED: provider})}", status.HTTP_303_SEE_OTHER)
    response.headers["location"] = str(start["authorization_url"])
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get(f"{REFRESH_PATH}/oauth/{{provider}}/linked")
async def identity_linked(
    provider: str,
    linked: Annotated[str | None, Query(max_length=50)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Back from auth-service's callback (`?linked=<provider>` or `?error=<slug>`): to the account
    page, which says what happened (the query carries only names we know)."""
    _offered(provider)
    if error is None and linked == provider:
        query = {LINKED: provider}
    else:
        slug = error if error in ("identity-in-use", "oauth-denied") else "failed"
        query = {LINK_FAILED: f"{provider}:{slug}"}
    return RedirectResponse(f"/account?{urlencode(query)}", status.HTTP_303_SEE_OTHER)


@router.post("/account/identities/{provider}/unlink")
async def unlink_identity(
    provider: str, request: Request, web: WebDep, form: Form, viewer: SignedIn
) -> Response:
    _ = web.renderer.gettext_for(request)
    name = PROVIDER_NAMES[_offered(provider)]
    try:
        await web.api.call(
            "DELETE", f"/auth/identities/{provider}", token=viewer.token, caller=client_of(request)
        )
    except ApiError as exc:
        alert: str | None
        if exc.slug == "last-sign-in-method":
            alert = _(
                "%(provider)s is the only way you can sign in, so it stays linked. Set a password "
                "(“Forgot your password?” on the sign-in page) or link another account first.",
                provider=name,
            )
        elif exc.slug == "identity-not-found":
            alert = _("%(provider)s was not linked.", provider=name)
        else:
            _errors, alert = explain(exc, _)
        return await _account(request, web, viewer, status.HTTP_400_BAD_REQUEST, alert=alert)
    return await _account(
        request,
        web,
        viewer,
        notice=_("%(provider)s is unlinked: it no longer signs you in.", provider=name),
    )


async def _deactivate_page(
    request: Request, web: WebDep, viewer: Viewer, status_code: int = 200, **context: Any
) -> Response:
    identities = await web.api.call("GET", "/auth/identities", token=viewer.token, caller=client_of(request))
    return web.renderer.page(
        request,
        "deactivate.html",
        status_code,
        user=viewer.user,
        has_password=bool(identities.get("has_password")),
        **context,
    )


@router.get(DEACTIVATE)
async def deactivate_page(request: Request, web: WebDep, viewer: SignedIn) -> Response:
    return await _deactivate_page(request, web, viewer, notice=confirmed_notice(request, web))


@router.post(DEACTIVATE)
async def deactivate(request: Request, web: WebDep, form: Form, viewer: SignedIn) -> Response:
    """Every session ends at auth-service; this browser forgets its cookies and is told so."""
    _ = web.renderer.gettext_for(request)
    password = field(form, "password", 4096)
    errors: dict[str, str] = {}
    alert = None
    try:
        await web.api.call(
            "POST",
            "/auth/deactivate",
            json={"password": password or None},
            token=viewer.token,
            caller=client_of(request),
        )
    except ApiError as exc:
        if needs_reauthentication(exc):
            return await confirm_page(request, web, viewer, DEACTIVATE)
        if exc.slug == "invalid-credentials":
            errors["password"] = _("Your password is not right.") if password else _("Enter your password.")
        else:
            errors, alert = explain(exc, _, {"password": "password"})
        return await _deactivate_page(
            request, web, viewer, status.HTTP_400_BAD_REQUEST, errors=errors, alert=alert
        )
    response = RedirectResponse(DEACTIVATED, status.HTTP_303_SEE_OTHER)
    web.sessions.sign_out(response)
    return response


@router.get(DEACTIVATED)
async def deactivated(request: Request, web: WebDep) -> Response:
    _ = web.renderer.gettext_for(request)
    return web.renderer.page(
        request,
        "message.html",
        heading=_("Your account is deactivated"),
        paragraphs=[
            _("You are signed out on every device, and the account can no longer sign in."),
            _("Changed your mind? Write to %(email)s.", email=web.settings.support_email),
        ],
    )


async def _delete_page(
    request: Request, web: WebDep, viewer: Viewer, status_code: int = 200, **context: Any
) -> Response:
    return web.renderer.page(request, "delete_account.html", status_code, user=viewer.user, **context)


@router.get(DELETE)
async def delete_page(request: Request, web: WebDep, viewer: SignedIn) -> Response:
    return await _delete_page(request, web, viewer, notice=confirmed_notice(request, web))


@router.post(DELETE)
async def delete_account(request: Request, web: WebDep, form: Form, viewer: SignedIn) -> Response:
    """The person types their email address (as GitHub has one type the name of what goes), so a
    slip of the mouse deletes nothing; then every session ends and this browser forgets its cookies."""
    _ = web.renderer.gettext_for(request)
    typed = field(form, "confirm_email", 320)
    if typed.strip().lower() != str(viewer.user["email"]).lower():
        message = (
            _("Type your email address to confirm.") if not typed else _("That is not your email address.")
        )
        return await _delete_page(
            request, web, viewer, status.HTTP_400_BAD_REQUEST, errors={"confirm_email": message}
        )
    try:
        answer = await web.api.call("DELETE", "/auth/me", token=viewer.token, caller=client_of(request))
    except ApiError as exc:
        if needs_reauthentication(exc):
            return await confirm_page(request, web, viewer, DELETE)
        errors, alert = explain(exc, _)
        return await _delete_page(
            request, web, viewer, status.HTTP_400_BAD_REQUEST, errors=errors, alert=alert
        )
    response = RedirectResponse(
        f"{DELETED}?{urlencode({'until': answer['erase_at']})}", status.HTTP_303_SEE_OTHER
    )
    web.sessions.sign_out(response)
    return response


@router.get(DELETED)
async def deleted(
    request: Request, web: WebDep, until: Annotated[str, Query(max_length=64)] = ""
) -> Response:
    _ = web.renderer.gettext_for(request)
    locale = getattr(request.state, "locale", "en")
    try:
        day = long_date(datetime.fromisoformat(until).date(), locale) if until else None
    except ValueError:
        day = None
    paragraphs = [_("You are signed out on every device, and a subscription you had is cancelled.")]
    if day:
        paragraphs.append(_("On %(day)s your account and your personal data are erased.", day=day))
    paragraphs.append(_("Changed your mind? Sign in with your password before then to cancel the deletion."))
    return web.renderer.page(
        request, "message.html", heading=_("Your account is scheduled for deletion"), paragraphs=paragraphs
    )


@router.post(EXPORT)
async def export_my_data(request: Request, web: WebDep, form: Form, viewer: SignedIn) -> Response:
    """ "Download my data": auth's and billing's exports, fetched with the person's session and
    served as one JSON file."""
    _ = web.renderer.gettext_for(request)
    caller = client_of(request)
    try:
        account_data = await web.api.call("GET", "/auth/me/export", token=viewer.token, caller=caller)
        billing_data = await web.api.call("GET", "/billing/me/export", token=viewer.token, caller=caller)
    except ApiError as exc:
        if exc.status == 429:
            _errors, alert = explain(exc, _)
        else:
            alert = _("We could not gather your data just now. Please try again in a few minutes.")
        return await _account(request, web, viewer, status.HTTP_503_SERVICE_UNAVAILABLE, alert=alert)
    exported_at = datetime.now(UTC)
    bundle = {
        "format": EXPORT_FORMAT,
        "exported_at": exported_at.isoformat(),
        "account": account_data,
        "billing": billing_data,
    }
    return Response(
        json.dumps(bundle, ensure_ascii=False, indent=2),
        media_type="application/json",
        headers=download_headers(dated_filename("gatehouse-my-data", exported_at)),
    )
