"""The second step of a sign-in: a code from the authenticator app, a recovery code, or a passkey
(its ceremony by static/passkeys.js, see pages/passkeys.py).

The sign-in's `mfa_token` stays server-side in the sealed `gh_mfa` cookie (session.py); a Google or
GitHub sign-in brings it in the URL fragment, which only the page's own script can read: it posts
it here at once and removes it from the address bar."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, status
from fastapi.responses import RedirectResponse, Response

from gatehouse_web.api import ApiError
from gatehouse_web.pages.passkeys import CREDENTIAL_LIMIT, credential_of, rejected_message
from gatehouse_web.session import MFA_PATH, PendingSignIn
from gatehouse_web.web import MFA_EXPIRED, Form, WebDep, client_of, explain, field, is_app_code

router = APIRouter(include_in_schema=False)

CODE, RECOVERY, PASSKEY = "code", "recovery", "passkey"


def _back_to_login(web: WebDep, return_to: str) -> Response:
    """The pending sign-in is gone (expired, spent, killed by wrong codes): start again."""
    query = {MFA_EXPIRED: "1", **({"return_to": return_to} if return_to != "/account" else {})}
    response = RedirectResponse(f"/login?{urlencode(query)}", status.HTTP_303_SEE_OTHER)
    web.sessions.forget_second_factor(response)
    return response


def _use(pending: PendingSignIn, asked: str | None) -> str:
    """Which form the step shows: the app's code unless a recovery code is asked for (or the app
    is not among the methods); a passkey when it is asked for or the only method. The passkey's
    button shows beside the code whenever the account has one."""
    if asked == PASSKEY and "passkey" in pending.methods:
        return PASSKEY
    if asked == RECOVERY and "recovery_code" in pending.methods:
        return RECOVERY
    if "totp" in pending.methods:
        return CODE
    return RECOVERY if "recovery_code" in pending.methods else PASSKEY


def _step(
    request: Request, web: WebDep, pending: PendingSignIn, use: str, status_code: int = 200, **context: Any
) -> Response:
    return web.renderer.page(
        request,
        "login_mfa.html",
        status_code,
        use=use,
        can_switch="totp" in pending.methods and "recovery_code" in pending.methods,
        has_passkey="passkey" in pending.methods,
        **context,
    )


@router.get(MFA_PATH)
async def second_factor_page(request: Request, web: WebDep) -> Response:
    pending = web.sessions.pending_sign_in(request)
    if pending is None:
        return _back_to_login(web, "/account")
    return _step(request, web, pending, _use(pending, request.query_params.get("use")))


@router.post(MFA_PATH)
async def second_factor(request: Request, web: WebDep, form: Form) -> Response:
    _ = web.renderer.gettext_for(request)
    pending = web.sessions.pending_sign_in(request)
    if pending is None:
        return _back_to_login(web, "/account")
    use = _use(pending, field(form, "use", 20))
    if use == PASSKEY:
        return await _with_passkey(request, web, pending, field(form, "credential", CREDENTIAL_LIMIT))
    name = "code" if use == CODE else "recovery_code"
    value = field(form, name, 64).replace(" ", "")
    if use == RECOVERY:
        value = value.lower()
    errors: dict[str, str] = {}
    alert = None
    if not value:
        errors[name] = (
            _("Enter the code from your authenticator app.") if use == CODE else _("Enter a recovery code.")
        )
    elif use == CODE and not is_app_code(value):
        errors[name] = _("The code is the six digits your authenticator app shows.")
    else:
        try:
            tokens = await web.api.call(
                "POST",
                "/auth/login/mfa",
                json={"mfa_token": pending.token, name: value},
                caller=client_of(request),
            )
        except ApiError as exc:
            if exc.slug == "invalid-mfa-token":
                return _back_to_login(web, pending.return_to)
            if exc.status == 401:
                errors[name] = (
                    _("That code is not right. Check the app and try again.")
                    if use == CODE
                    else _("That recovery code is not right, or it was already used.")
                )
            else:
                errors, alert = explain(exc, _, {name: name})
        else:
            response = web.signed_in(tokens, pending.return_to)
            web.sessions.forget_second_factor(response)
            return response
    return _step(request, web, pending, use, status.HTTP_400_BAD_REQUEST, errors=errors, alert=alert)


async def _with_passkey(request: Request, web: WebDep, pending: PendingSignIn, posted: str) -> Response:
    _ = web.renderer.gettext_for(request)
    credential = credential_of(posted)
    if credential is None:
        errors: dict[str, str] = {}
        alert: str | None = _("Passkeys need JavaScript. Turn it on for this site, or use another way.")
    else:
        try:
            tokens = await web.api.call(
                "POST",
                "/auth/login/mfa",
                json={"mfa_token": pending.token, "passkey": credential},
                caller=client_of(request),
            )
        except ApiError as exc:
            if exc.slug == "invalid-mfa-token":
                return _back_to_login(web, pending.return_to)
            errors, alert = rejected_message(request, web, exc)
        else:
            response = web.signed_in(tokens, pending.return_to)
            web.sessions.forget_second_factor(response)
            return response
    use = _use(pending, None)
    return _step(request, web, pending, use, status.HTTP_400_BAD_REQUEST, errors=errors, alert=alert)


@router.post(f"{MFA_PATH}/provider")
async def second_factor_after_provider(request: Request, web: WebDep, form: Form) -> Response:
    """The landing page's script posts the fragment's mfa_token here: kept like a password
    sign-in's, then the same second step."""
    token, methods = field(form, "mfa_token", 200), field(form, "methods", 200)
    return_to = web.return_to(field(form, "return_to", 2048))
    if not token:
        return _back_to_login(web, return_to)
    challenge = {"mfa_required": True, "mfa_token": token, "methods": [m for m in methods.split(",") if m]}
    return web.signed_in(challenge, return_to)
