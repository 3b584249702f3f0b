"""Creating an account and signing in (password, emailed code), signing out, and the quiet
refresh of the session cookies."""

from __future__ import annotations

from contextlib import suppress
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from gatehouse_web import captcha as bot_check
from gatehouse_web.api import ApiError
from gatehouse_web.session import REFRESH_PATH
from gatehouse_web.web import MFA_EXPIRED, Form, WebDep, client_of, explain, field

router = APIRouter(include_in_schema=False)

ACCOUNT_PENDING_DELETION = "account-pending-deletion"  # a sign-in the person may turn into a cancellation

ReturnTo = Annotated[str | None, Query(max_length=2048)]


@router.get("/")
async def home() -> Response:
    return RedirectResponse("/account", status.HTTP_303_SEE_OTHER)


@router.get("/register")
async def register_page(request: Request, web: WebDep) -> Response:
    return web.renderer.page(request, "register.html", captcha=await web.captcha.upfront(web.api, "register"))


@router.post("/register")
async def register(request: Request, web: WebDep, form: Form) -> Response:
    _ = web.renderer.gettext_for(request)
    values = {name: field(form, name) for name in ("email", "username")}
    password = field(form, "password", 4096)
    missing = {}
    if not values["email"]:
        missing["email"] = _("Enter your email address.")
    if not values["username"]:
        missing["username"] = _("Choose a username.")
    if not password:
        missing["password"] = _("Choose a password.")
    body = bot_check.with_token({**values, "password": password}, form)
    try:
        # Sent even with a field missing, so the answer names every other field that needs work.
        await web.api.call("POST", "/auth/register", json=body, caller=client_of(request))
    except ApiError as exc:
        fields = {"email": "email", "username": "username", "password": "password"}
        if exc.slug == "username-taken":
            errors, alert = {"username": _("This username is taken. Try another one.")}, None
        else:
            errors, alert = explain(exc, _, fields)
        return web.renderer.page(
            request,
            "register.html",
            status.HTTP_400_BAD_REQUEST,
            errors={**errors, **missing},
            values=values,
            alert=bot_check.message(exc, _) or alert,
            captcha=web.captcha.asked_by(exc, "register") or await web.captcha.upfront(web.api, "register"),
        )
    # The same page whether the address was new or already had an account: the email says which.
    return web.renderer.page(
        request,
        "message.html",
        heading=_("Check your email"),
        paragraphs=[
            _(
                "We have sent an email to %(email)s. Open it to go on: it has a link to confirm "
                "your address or, if the address already has an account, a way to sign in.",
                email=values["email"],
            ),
        ],
        action_url="/login",
        action_label=_("Sign in"),
    )


@router.get("/login")
async def login_page(request: Request, web: WebDep, return_to: ReturnTo = None) -> Response:
    _ = web.renderer.gettext_for(request)
    notice = _("You have signed out.") if "signed_out" in request.query_params else None
    alert = (
        _("That sign-in took too long or was already finished. Please sign in again.")
        if MFA_EXPIRED in request.query_params
        else None
    )
    return web.renderer.page(
        request,
        "login.html",
        return_to=web.return_to(return_to),
        notice=notice,
        alert=alert,
        captcha=await web.captcha.upfront(web.api, "login"),
    )


async def _with_password(
    request: Request, web: WebDep, path: str, login_name: str, password: str, form: Form
) -> Any:
    """A password sign-in call (`/auth/login`, or the cancellation of a deletion, which answers alike)."""
    identifier = {"email": login_name} if "@" in login_name else {"username": login_name}
    body = bot_check.with_token({**identifier, "password": password}, form)
    return await web.api.call("POST", path, json=body, caller=client_of(request))


@router.post("/login")
async def login(request: Request, web: WebDep, form: Form) -> Response:
    _ = web.renderer.gettext_for(request)
    login_name, password = field(form, "login", 320), field(form, "password", 4096)
    return_to = web.return_to(field(form, "return_to", 2048))
    errors: dict[str, str] = {}
    alert = None
    widget = None
    if not login_name:
        errors["login"] = _("Enter your email address or username.")
    if not password:
        errors["password"] = _("Enter your password.")
    if not errors:
        try:
            tokens = await _with_password(request, web, "/auth/login", login_name, password, form)
        except ApiError as exc:
            widget = web.captcha.asked_by(exc, "login")
            if bot_check.message(exc, _):
                alert = bot_check.message(exc, _)
            elif exc.status == 401:
                alert = _("That email, username or password is not right.")
            elif exc.slug == "account-deactivated":
                alert = _("This account is deactivated.")
            elif exc.slug == ACCOUNT_PENDING_DELETION:
                return web.renderer.page(
                    request, "cancel_deletion.html", values={"login": login_name}, return_to=return_to
                )
            else:
                errors, alert = explain(
                    exc, _, {"email": "login", "username": "login", "password": "password"}
                )
        else:
            return web.signed_in(tokens, return_to)
    return web.renderer.page(
        request,
        "login.html",
        status.HTTP_400_BAD_REQUEST,
        errors=errors,
        alert=alert,
        values={"login": login_name},
        return_to=return_to,
        captcha=widget or await web.captcha.upfront(web.api, "login"),
    )


@router.post("/login/cancel-deletion")
async def cancel_deletion(request: Request, web: WebDep, form: Form) -> Response:
    """The sign-in answered that the account is scheduled for deletion: the password again cancels
    the deletion and signs in (through the second step, when the account has one)."""
    _ = web.renderer.gettext_for(request)
    login_name, password = field(form, "login", 320), field(form, "password", 4096)
    return_to = web.return_to(field(form, "return_to", 2048))
    errors: dict[str, str] = {}
    alert = None
    widget = None
    if not password:
        errors["password"] = _("Enter your password.")
    else:
        try:
            answer = await _with_password(
                request, web, "/auth/me/deletion/cancel", login_name, password, form
            )
        except ApiError as exc:
            widget = web.captcha.asked_by(exc, "login")
            if bot_check.message(exc, _):
                alert = bot_check.message(exc, _)
            elif exc.status == 401:
                errors["password"] = _("Your password is not right.")
            elif exc.slug == "account-deactivated":
                alert = _("This account is deactivated.")
            else:
                errors, alert = explain(exc, _, {"password": "password"})
        else:
            return web.signed_in(answer, return_to)
    return web.renderer.page(
        request,
        "cancel_deletion.html",
        status.HTTP_400_BAD_REQUEST,
        errors=errors,
        alert=alert,
        values={"login": login_name},
        return_to=return_to,
        captcha=widget or await web.captcha.upfront(web.api, "login"),
    )


@router.get("/login/code")
async def login_code_page(request: Request, web: WebDep, return_to: ReturnTo = None) -> Response:
    return web.renderer.page(request, "login_code.html", step="email", return_to=web.return_to(return_to))


@router.post("/login/code/send")
async def send_login_code(request: Request, web: WebDep, form: Form) -> Response:
    _ = web.renderer.gettext_for(request)
    email, return_to = field(form, "email", 320), web.return_to(field(form, "return_to", 2048))
    errors: dict[str, str] = {}
    alert = None
    if not email:
        errors["email"] = _("Enter your email address.")
    else:
        try:
            await web.api.call(
                "POST", "/auth/request/login-code", json={"email": email}, caller=client_of(request)
            )
        except ApiError as exc:
            errors, alert = explain(exc, _, {"email": "email"})
        else:
            return web.renderer.page(
                request, "login_code.html", step="code", values={"email": email}, return_to=return_to
            )
    return web.renderer.page(
        request,
        "login_code.html",
        status.HTTP_400_BAD_REQUEST,
        step="email",
        errors=errors,
        alert=alert,
        values={"email": email},
        return_to=return_to,
    )


@router.post("/login/code")
async def login_with_code(request: Request, web: WebDep, form: Form) -> Response:
    _ = web.renderer.gettext_for(request)
    email, code = field(form, "email", 320), field(form, "code", 20).replace(" ", "")
    return_to = web.return_to(field(form, "return_to", 2048))
    errors: dict[str, str] = {}
    alert = None
    if not code:
        errors["code"] = _("Enter the code from the email.")
    else:
        try:
            tokens = await web.api.call(
                "POST", "/auth/login/code", json={"email": email, "code": code}, caller=client_of(request)
            )
        except ApiError as exc:
            if exc.status == 401:
                errors = {"code": _("That code is not right, or it has expired.")}
            elif exc.status == 422 and "code" in exc.errors:
                errors = {"code": _("The code is the six digits from the email.")}
            else:
                errors, alert = explain(exc, _, {"code": "code"})
        else:
            return web.signed_in(tokens, return_to)
    return web.renderer.page(
        request,
        "login_code.html",
        status.HTTP_400_BAD_REQUEST,
        step="code",
        errors=errors,
        alert=alert,
        values={"email": email},
        return_to=return_to,
    )


@router.get("/login/{provider}")
async def continue_with(provider: str, request: Request, web: WebDep, return_to: ReturnTo = None) -> Response:
    """To auth-service's sign-in with the provider, which brings the browser back to
    /session/oauth/<provider> (AUTH_OAUTH_REDIRECT_ALLOWLIST must allow it)."""
    if provider not in web.settings.oauth_providers:
        raise StarletteHTTPException(status.HTTP_404_NOT_FOUND)
    back = urlencode({"return_to": web.return_to(return_to)})
    landing = f"{web.settings.public_url}{REFRESH_PATH}/oauth/{provider}?{back}"
    return RedirectResponse(
        f"/auth/{provider}/login?{urlencode({'redirect_to': landing})}", status.HTTP_303_SEE_OTHER
    )


@router.get(f"{REFRESH_PATH}/oauth/{{provider}}")
async def provider_landing(
    provider: str,
    request: Request,
    web: WebDep,
    return_to: ReturnTo = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
    mfa_required: Annotated[str | None, Query(max_length=50)] = None,
) -> Response:
    """Back from auth-service with its refresh cookie (scoped to /session): exchanged at once for
    this site's own session (rotated, so the cookie's token is spent), and the cookie removed."""
    _ = web.renderer.gettext_for(request)
    back = web.return_to(return_to)
    if mfa_required is not None and error is None:  # the mfa_token is in the fragment: see app.js
        return web.renderer.page(request, "login_mfa_provider.html", return_to=back)
    refresh_token = request.cookies.get(web.settings.oauth_cookie_name)
    if error is None and refresh_token:
        try:
            tokens = await web.api.call(
                "POST",
                "/auth/refresh-token",
                json={"refresh_token": refresh_token},
                caller=client_of(request),
            )
        except ApiError:
            pass
        else:
            response = web.signed_in(tokens, back)
            response.delete_cookie(
                web.settings.oauth_cookie_name,
                path=REFRESH_PATH,
                httponly=True,
                samesite="lax",
                secure=web.settings.secure_cookies,
            )
            return response
    if error in ("provider-email-unusable", "email-taken"):
        alert = _(
            "This email address already has an account. Sign in with your password, then link the provider."
        )
    else:
        alert = _("The sign-in with the provider did not complete. Please try again.")
    return web.renderer.page(request, "login.html", status.HTTP_400_BAD_REQUEST, alert=alert, return_to=back)


@router.post("/logout")
async def logout(request: Request, web: WebDep, form: Form) -> Response:
    """Ends the session at auth-service (its refresh token dies), then forgets the cookies. The
    access token goes along when we still have one; otherwise the session dies by its refresh."""
    access = web.sessions.access_token(request)
    if access is None:  # renew it first (the refresh token is only sent to /session): then here again
        return RedirectResponse(
            f"{REFRESH_PATH}/refresh?return_to=/logout", status.HTTP_307_TEMPORARY_REDIRECT
        )
    response = RedirectResponse("/login?signed_out", status.HTTP_303_SEE_OTHER)
    with suppress(ApiError):  # already ended (revoked elsewhere): nothing left to end
        await web.api.call("POST", "/auth/logout", token=access.token, caller=client_of(request))
    web.sessions.sign_out(response)
    return response


@router.api_route(f"{REFRESH_PATH}/refresh", methods=["GET", "POST"])
async def refresh(request: Request, web: WebDep, return_to: ReturnTo = None) -> Response:
    """Rotates the refresh token and comes back: 303 after a page view, 307 after a form, so the
    browser posts the same form again (its CSRF token stays valid: the CSRF cookie is kept).
    Without a usable refresh token: to the sign-in page, which returns here afterwards."""
    back = web.return_to(return_to) if (return_to or "").startswith("/") else "/account"
    code = status.HTTP_307_TEMPORARY_REDIRECT if request.method == "POST" else status.HTTP_303_SEE_OTHER
    refresh_token = web.sessions.refresh_token(request)
    if refresh_token:
        try:
            tokens = await web.api.call(
                "POST",
                "/auth/refresh-token",
                json={"refresh_token": refresh_token},
                caller=client_of(request),
            )
        except ApiError:
            pass
        else:
            response = RedirectResponse(back, code)
            csrf = request.cookies.get("gh_csrf")
            web.sessions.sign_in(response, tokens, keep_csrf=csrf)
            return response
    target = "/login?signed_out" if back == "/logout" else f"/login?{urlencode({'return_to': back})}"
    response = RedirectResponse(target, status.HTTP_303_SEE_OTHER)
    web.sessions.sign_out(response)
    return response
