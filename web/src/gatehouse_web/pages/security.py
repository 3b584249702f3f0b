"""The security page (/account/security): set up an authenticator app (QR code and manual key,
confirmed with a code), its recovery codes (shown once, downloadable as text), new recovery codes
and turning the app off (both need a recent sign-in); passkeys (add, rename, remove: pages/passkeys.py
does the calls); the "confirm it's you" step those ask for; and the security activity page
(/account/security/activity): the person's audit trail, newest first, a page at a time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from gatehouse_web.api import ApiError
from gatehouse_web.devices import device_name
from gatehouse_web.i18n import moment, profile_zone
from gatehouse_web.pages import passkeys
from gatehouse_web.qrcode import safe_qr_svg
from gatehouse_web.stepup import (
    CONFIRMED,
    THEN_RECOVERY_CODES,
    THEN_REMOVE_PASSKEY,
    THEN_TOTP_OFF,
    confirm_page,
    confirmed_notice,
    needs_reauthentication,
)
from gatehouse_web.web import Form, SignedIn, Viewer, WebDep, app_code, client_of, explain, field, is_app_code

router = APIRouter(include_in_schema=False)

PAGE = "/account/security"
ACTIVITY_PAGE = f"{PAGE}/activity"
ACTIVITY_PAGE_SIZE = 25


async def _security(
    request: Request, web: WebDep, viewer: Viewer, status_code: int = 200, **context: Any
) -> Response:
    mfa = await web.api.call("GET", "/auth/mfa", token=viewer.token, caller=client_of(request))
    keys = await passkeys.listed(request, web, viewer)
    return web.renderer.page(
        request, "security.html", status_code, user=viewer.user, mfa=mfa, passkeys=keys, **context
    )


def _setup(
    request: Request,
    web: WebDep,
    viewer: Viewer,
    secret: str,
    qr_svg: str,
    status_code: int = 200,
    **context: Any,
) -> Response:
    _ = web.renderer.gettext_for(request)
    return web.renderer.page(
        request,
        "security_setup.html",
        status_code,
        user=viewer.user,
        secret=secret,
        qr_svg=qr_svg,
        qr=safe_qr_svg(qr_svg, _("QR code for your authenticator app")),
        **context,
    )


def _codes(request: Request, web: WebDep, viewer: Viewer, codes: list[str], heading: str) -> Response:
    return web.renderer.page(request, "security_codes.html", user=viewer.user, codes=codes, heading=heading)


@router.get(PAGE)
async def security(request: Request, web: WebDep, viewer: SignedIn) -> Response:
    return await _security(request, web, viewer, notice=confirmed_notice(request, web))


@router.post(f"{PAGE}/totp/setup")
async def totp_setup(request: Request, web: WebDep, form: Form, viewer: SignedIn) -> Response:
    _ = web.renderer.gettext_for(request)
    try:
        setup = await web.api.call(
            "POST", "/auth/mfa/totp/setup", token=viewer.token, caller=client_of(request)
        )
    except ApiError as exc:
        if exc.slug == "totp-already-enabled":
            return await _security(request, web, viewer, notice=_("Your authenticator app is already on."))
        _errors, alert = explain(exc, _)
        return await _security(request, web, viewer, status.HTTP_400_BAD_REQUEST, alert=alert)
    return _setup(request, web, viewer, str(setup["secret"]), str(setup["qr_svg"]))


@router.post(f"{PAGE}/totp/confirm")
async def totp_confirm(request: Request, web: WebDep, form: Form, viewer: SignedIn) -> Response:
    _ = web.renderer.gettext_for(request)
    code = app_code(form)
    secret, qr_svg = field(form, "secret", 200), field(form, "qr_svg", 200_000)
    errors: dict[str, str] = {}
    alert = None
    if not is_app_code(code):
        errors["code"] = _("The code is the six digits your authenticator app shows.")
    else:
        try:
            answer = await web.api.call(
                "POST",
                "/auth/mfa/totp/confirm",
                json={"code": code},
                token=viewer.token,
                caller=client_of(request),
            )
        except ApiError as exc:
            if exc.slug == "totp-setup-not-started":
                return await _security(
                    request, web, viewer, status.HTTP_400_BAD_REQUEST, alert=_("Start the setup again.")
                )
            if exc.status == 422 and "code" in exc.errors:
                errors["code"] = _("That code does not match. Check the app's clock and try again.")
            else:
                errors, alert = explain(exc, _, {"code": "code"})
        else:
            return _codes(
                request, web, viewer, list(answer["recovery_codes"]), _("Your authenticator app is on")
            )
    return _setup(
        request, web, viewer, secret, qr_svg, status.HTTP_400_BAD_REQUEST, errors=errors, alert=alert
    )


async def _new_recovery_codes(request: Request, web: WebDep, viewer: Viewer) -> Response:
    _ = web.renderer.gettext_for(request)
    answer = await web.api.call(
        "POST", "/auth/mfa/recovery-codes", token=viewer.token, caller=client_of(request)
    )
    return _codes(request, web, viewer, list(answer["recovery_codes"]), _("Your new recovery codes"))


async def _app_off(request: Request, web: WebDep, viewer: Viewer) -> Response:
    _ = web.renderer.gettext_for(request)
    await web.api.call("DELETE", "/auth/mfa/totp", token=viewer.token, caller=client_of(request))
    return await _security(request, web, viewer, notice=_("Your authenticator app is off."))


@router.post(f"{PAGE}/recovery-codes")
async def recovery_codes(request: Request, web: WebDep, form: Form, viewer: SignedIn) -> Response:
    try:
        return await _new_recovery_codes(request, web, viewer)
    except ApiError as exc:
        if not needs_reauthentication(exc):
            raise
        return await confirm_page(request, web, viewer, PAGE, THEN_RECOVERY_CODES)


@router.post(f"{PAGE}/totp/off")
async def totp_off(request: Request, web: WebDep, form: Form, viewer: SignedIn) -> Response:
    try:
        return await _app_off(request, web, viewer)
    except ApiError as exc:
        if not needs_reauthentication(exc):
            raise
        return await confirm_page(request, web, viewer, PAGE, THEN_TOTP_OFF)


@router.post(f"{PAGE}/recovery-codes.txt")
async def download_codes(request: Request, web: WebDep, form: Form, viewer: SignedIn) -> Response:
    """The codes just shown, as a text file (posted back from the page that shows them once)."""
    _ = web.renderer.gettext_for(request)
    codes = [str(code).strip()[:64] for code in form.getlist("code")][:20]
    lines = [
        _(
            "Recovery codes for %(product)s (%(email)s)",
            product=web.settings.product_name,
            email=viewer.user["email"],
        ),
        _("Each code works once, instead of a code from your authenticator app."),
        "",
        *codes,
        "",
    ]
    return PlainTextResponse(
        "\n".join(lines),
        headers={
            "Content-Disposition": 'attachment; filename="recovery-codes.txt"',
            "Cache-Control": "no-store",
        },
    )


@router.post(f"{PAGE}/passkeys")
async def add_passkey(request: Request, web: WebDep, form: Form, viewer: SignedIn) -> Response:
    _ = web.renderer.gettext_for(request)
    name = field(form, "passkey_name", passkeys.NAME_LIMIT)
    errors, alert = await passkeys.add(
        request, web, viewer, name, field(form, "credential", passkeys.CREDENTIAL_LIMIT)
    )
    if errors or alert:
        values = {"passkey_name": name}
        return await _security(
            request, web, viewer, status.HTTP_400_BAD_REQUEST, errors=errors, alert=alert, values=values
        )
    return await _security(request, web, viewer, notice=_("Your passkey “%(name)s” is added.", name=name))


@router.post(f"{PAGE}/passkeys/{{key}}/rename")
async def rename_passkey(request: Request, web: WebDep, form: Form, viewer: SignedIn, key: str) -> Response:
    _ = web.renderer.gettext_for(request)
    passkey = passkeys.passkey_id(key)
    name = field(form, "name", passkeys.NAME_LIMIT)
    if passkey is None:
        errors: dict[str, str] = {}
        alert: str | None = _("That passkey is no longer on your account.")
    else:
        errors, alert = await passkeys.rename(request, web, viewer, passkey, name)
    if errors or alert:
        return await _security(request, web, viewer, status.HTTP_400_BAD_REQUEST, errors=errors, alert=alert)
    return await _security(request, web, viewer, notice=_("The passkey is renamed “%(name)s”.", name=name))


async def _remove_passkey(request: Request, web: WebDep, viewer: Viewer, passkey: str) -> Response:
    _ = web.renderer.gettext_for(request)
    alert = await passkeys.remove(request, web, viewer, passkey)
    if alert:
        return await _security(request, web, viewer, status.HTTP_400_BAD_REQUEST, alert=alert)
    return await _security(request, web, viewer, notice=_("The passkey is removed."))


@router.post(f"{PAGE}/passkeys/{{key}}/remove")
async def remove_passkey(request: Request, web: WebDep, form: Form, viewer: SignedIn, key: str) -> Response:
    passkey = passkeys.passkey_id(key)
    if passkey is None:
        _ = web.renderer.gettext_for(request)
        alert = _("That passkey is no longer on your account.")
        return await _security(request, web, viewer, status.HTTP_400_BAD_REQUEST, alert=alert)
    try:
        return await _remove_passkey(request, web, viewer, passkey)
    except ApiError as exc:
        if not needs_reauthentication(exc):
            raise
        return await confirm_page(request, web, viewer, PAGE, f"{THEN_REMOVE_PASSKEY}:{passkey}")


PROOFS = ("password", "code", "passkey")


async def _then(request: Request, web: WebDep, confirmed: Viewer, then: str, return_to: str) -> Response:
    """After "confirm it's you": finish what it was shown for, or go back to the page."""
    action, _sep, argument = then.partition(":")
    if action == THEN_RECOVERY_CODES:
        return await _new_recovery_codes(request, web, confirmed)
    if action == THEN_TOTP_OFF:
        return await _app_off(request, web, confirmed)
    if action == THEN_REMOVE_PASSKEY and (passkey := passkeys.passkey_id(argument)) is not None:
        return await _remove_passkey(request, web, confirmed, passkey)
    separator = "&" if "?" in return_to else "?"
    return RedirectResponse(f"{return_to}{separator}{CONFIRMED}", status.HTTP_303_SEE_OTHER)


@router.post("/account/reauthenticate")
async def reauthenticate(request: Request, web: WebDep, form: Form, viewer: SignedIn) -> Response:
    _ = web.renderer.gettext_for(request)
    asked = field(form, "proof", 20)
    proof = asked if asked in PROOFS else "password"
    value = field(form, proof, 4096) if proof != "passkey" else ""
    return_to, then = web.return_to(field(form, "return_to", 2048)), field(form, "then", 80)
    if not return_to.startswith("/"):
        return_to = "/account"
    if proof == "code":
        value = value.replace(" ", "")
    errors: dict[str, str] = {}
    alert = None
    answer: Any = passkeys.credential_of(field(form, "credential", passkeys.CREDENTIAL_LIMIT))
    if proof == "passkey" and answer is None:
        alert = _("Passkeys need JavaScript. Turn it on for this site, or confirm another way.")
    elif proof != "passkey" and not value:
        errors[proof] = (
            _("Enter your password.")
            if proof == "password"
            else _("Enter the code from your authenticator app.")
        )
    elif proof == "code" and not is_app_code(value):
        errors[proof] = _("The code is the six digits your authenticator app shows.")
    else:
        try:
            tokens = await web.api.call(
                "POST",
                "/auth/reauthenticate",
                json={proof: answer if proof == "passkey" else value},
                token=viewer.token,
                caller=client_of(request),
            )
        except ApiError as exc:
            if proof == "passkey":
                errors, alert = passkeys.rejected_message(request, web, exc)
            elif exc.status == 401:
                errors[proof] = (
                    _("That password is not right.")
                    if proof == "password"
                    else _("That code is not right. Check the app and try again.")
                )
            else:
                errors, alert = explain(exc, _, {proof: proof})
        else:
            confirmed = Viewer(str(tokens["access_token"]), viewer.user)
            response = await _then(request, web, confirmed, then, return_to)
            web.sessions.sign_in(response, tokens, keep_csrf=request.cookies.get("gh_csrf"))
            return response
    return await confirm_page(
        request,
        web,
        viewer,
        return_to,
        then,
        status.HTTP_400_BAD_REQUEST,
        errors=errors,
        alert=alert,
        proof=proof,
    )


def _what(kind: str, _: Callable[..., str]) -> str:
    """What an audit event says happened, in the person's words."""
    labels = {
        "sign_in.succeeded": _("Signed in"),
        "sign_in.failed": _("Failed sign-in"),
        "password.changed": _("Password changed"),
        "email.changed": _("Email address changed"),
        "mfa.totp_enabled": _("Authenticator app turned on"),
        "mfa.totp_disabled": _("Authenticator app turned off"),
        "mfa.recovery_codes_regenerated": _("New recovery codes made"),
        "mfa.passkey_added": _("Passkey added"),
        "mfa.passkey_removed": _("Passkey removed"),
        "sessions.revoked": _("Signed out"),
        "identity.linked": _("Sign-in account linked"),
        "identity.unlinked": _("Sign-in account unlinked"),
        "account.deactivated": _("Account deactivated"),
        "account.deletion_requested": _("Account deletion asked for"),
        "account.deletion_cancelled": _("Account deletion cancelled"),
        "admin.user_deactivated": _("Account deactivated by an administrator"),
        "admin.user_reactivated": _("Account reactivated by an administrator"),
        "admin.roles_changed": _("Roles changed by an administrator"),
        "admin.mfa_reset": _("Two-step sign-in removed by an administrator"),
        "admin.user_deleted": _("Account deleted by an administrator"),
        "api_key.created": _("API key created"),
        "api_key.revoked": _("API key revoked"),
        "org.created": _("Organization created"),
        "org.updated": _("Organization settings changed"),
        "org.deleted": _("Organization deleted"),
        "org.joined": _("Joined an organization"),
        "org.left": _("Left an organization"),
        "org.member_removed": _("Member removed from an organization"),
        "org.member_role_changed": _("Role in an organization changed"),
        "org.invitation_sent": _("Invitation to an organization sent"),
        "org.invitation_revoked": _("Invitation to an organization withdrawn"),
        "org.domain_added": _("Domain claimed for an organization"),
        "org.domain_verified": _("Domain of an organization verified"),
        "org.domain_removed": _("Domain of an organization removed"),
        "org.switched": _("Switched organization"),
    }
    return labels.get(kind, kind)


def _how(method: str | None, _: Callable[..., str]) -> str | None:
    labels = {
        "password": _("Password"),
        "email_code": _("Emailed code"),
        "google": "Google",
        "github": "GitHub",
        "passkey": _("Passkey"),
        "totp": _("Authenticator app"),
        "recovery_code": _("Recovery code"),
        "change": _("Changed while signed in"),
        "reset": _("Reset by an emailed link"),
        "captcha": _("Bot check not passed"),  # a sign-in stopped at the CAPTCHA
    }
    return labels.get(method, method) if method else None


def activity_entries(
    request: Request, web: WebDep, viewer: Viewer, items: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Audit events as a page shows them, in the viewer's language and time zone (this page, and
    a user's trail in the admin console)."""
    _ = web.renderer.gettext_for(request)
    locale = getattr(request.state, "locale", "en")
    zone = profile_zone(viewer.user)
    return [
        {
            "what": _what(item["type"], _),
            "how": _how(item.get("method"), _),
            "when": moment(item["occurred_at"], locale, zone),
            "device": device_name(item.get("user_agent"), _),
            "ip": item.get("ip"),
            "place": item.get("place"),
            "by_admin": item.get("actor_id") is not None,
            "actor_id": item.get("actor_id"),
        }
        for item in items
    ]


@router.get(ACTIVITY_PAGE)
async def activity(
    request: Request,
    web: WebDep,
    viewer: SignedIn,
    cursor: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    params = {"limit": str(ACTIVITY_PAGE_SIZE), **({"cursor": cursor} if cursor else {})}
    try:
        page = await web.api.call(
            "GET", "/auth/audit-events/me", token=viewer.token, caller=client_of(request), params=params
        )
    except ApiError as exc:
        if exc.status == status.HTTP_400_BAD_REQUEST:  # a cursor we never gave: start from the newest
            return RedirectResponse(ACTIVITY_PAGE, status_code=status.HTTP_303_SEE_OTHER)
        raise
    events = activity_entries(request, web, viewer, page["items"])
    return web.renderer.page(
        request, "security_activity.html", user=viewer.user, events=events, next_cursor=page["next_cursor"]
    )
