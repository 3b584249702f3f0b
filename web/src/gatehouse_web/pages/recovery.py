"""Getting back in and proving an address: forgotten password, the reset link, the verification
link (a button confirms it, so a mail scanner that fetches the link spends nothing)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import Response

from gatehouse_web import captcha as bot_check
from gatehouse_web.api import ApiError
from gatehouse_web.web import Form, WebDep, client_of, explain, field

router = APIRouter(include_in_schema=False)

Token = Annotated[str, Query(max_length=200)]


def _link_expired(request: Request, web: WebDep, action_url: str, action_label: str) -> Response:
    _ = web.renderer.gettext_for(request)
    return web.renderer.page(
        request,
        "message.html",
        status.HTTP_400_BAD_REQUEST,
        heading=_("This link no longer works"),
        paragraphs=[_("It has expired, or it was already used. Links work once, for a limited time.")],
        action_url=action_url,
        action_label=action_label,
    )


@router.get("/forgot-password")
async def forgot_password_page(request: Request, web: WebDep) -> Response:
    return web.renderer.page(
        request, "forgot_password.html", captcha=await web.captcha.upfront(web.api, "reset")
    )


@router.post("/forgot-password")
async def forgot_password(request: Request, web: WebDep, form: Form) -> Response:
    _ = web.renderer.gettext_for(request)
    email = field(form, "email", 320)
    errors: dict[str, str] = {}
    alert = None
    widget = None
    if not email:
        errors["email"] = _("Enter your email address.")
    else:
        body = bot_check.with_token({"email": email}, form)
        try:
            await web.api.call("POST", "/auth/forget-password", json=body, caller=client_of(request))
        except ApiError as exc:
            widget = web.captcha.asked_by(exc, "reset")
            errors, alert = explain(exc, _, {"email": "email"})
            alert = bot_check.message(exc, _) or alert
        else:
            return web.renderer.page(
                request,
                "message.html",
                heading=_("Check your email"),
                paragraphs=[
                    _(
                        "If an account uses %(email)s, we have sent it a link to choose a new password.",
                        email=email,
                    ),
                    _("The link works once, for one hour."),
                ],
                action_url="/login",
                action_label=_("Back to sign in"),
            )
    return web.renderer.page(
        request,
        "forgot_password.html",
        status.HTTP_400_BAD_REQUEST,
        errors=errors,
        alert=alert,
        values={"email": email},
        captcha=widget or await web.captcha.upfront(web.api, "reset"),
    )


@router.get("/reset-password")
async def reset_password_page(request: Request, web: WebDep, token: Token = "") -> Response:
    if not token:
        _ = web.renderer.gettext_for(request)
        return _link_expired(request, web, "/forgot-password", _("Ask for a new link"))
    return web.renderer.page(request, "reset_password.html", token=token)


@router.post("/reset-password")
async def reset_password(request: Request, web: WebDep, form: Form) -> Response:
    _ = web.renderer.gettext_for(request)
    token = field(form, "token", 200)
    new_password, confirm = field(form, "new_password", 4096), field(form, "confirm_password", 4096)
    errors: dict[str, str] = {}
    alert = None
    if not new_password:
        errors["new_password"] = _("Choose a new password.")
    elif new_password != confirm:
        errors["confirm_password"] = _("The two passwords are not the same.")
    else:
        try:
            await web.api.call(
                "POST",
                "/auth/new-password",
                json={"token": token, "new_password": new_password},
                caller=client_of(request),
            )
        except ApiError as exc:
            if exc.slug == "invalid-token" or (exc.status == 422 and "token" in exc.errors):
                return _link_expired(request, web, "/forgot-password", _("Ask for a new link"))
            errors, alert = explain(exc, _, {"password": "new_password", "new_password": "new_password"})
        else:
            return web.renderer.page(
                request,
                "message.html",
                heading=_("Your password is changed"),
                paragraphs=[_("Every device was signed out. Sign in with your new password.")],
                action_url="/login",
                action_label=_("Sign in"),
            )
    return web.renderer.page(
        request, "reset_password.html", status.HTTP_400_BAD_REQUEST, errors=errors, alert=alert, token=token
    )


@router.get("/verify-email")
async def verify_email_page(request: Request, web: WebDep, token: Token = "") -> Response:
    if not token:
        _ = web.renderer.gettext_for(request)
        return _link_expired(request, web, "/account", _("Go to your account"))
    return web.renderer.page(request, "verify_email.html", token=token)


@router.post("/verify-email")
async def verify_email(request: Request, web: WebDep, form: Form) -> Response:
    _ = web.renderer.gettext_for(request)
    try:
        await web.api.call(
            "POST", "/auth/verify", json={"token": field(form, "token", 200)}, caller=client_of(request)
        )
    except ApiError as exc:
        if exc.slug == "invalid-token" or exc.status == 422:
            return _link_expired(request, web, "/account", _("Go to your account"))
        _errors, alert = explain(exc, _)
        return web.renderer.page(
            request,
            "verify_email.html",
            status.HTTP_400_BAD_REQUEST,
            alert=alert,
            token=field(form, "token", 200),
        )
    return web.renderer.page(
        request,
        "message.html",
        heading=_("Your email address is confirmed"),
        paragraphs=[_("Thank you. You can use everything now.")],
        action_url="/account",
        action_label=_("Go to your account"),
    )
