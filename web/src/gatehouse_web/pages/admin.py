"""The admin console (/admin): who may open it (the `admin` role, and a sign-in that proved a
second factor), what the others see instead, and the API call every console page makes. The pages
are admin_users.py (users) and admin_email.py (email deliveries and dead letters).

Every action in the console is a form that first shows what it will do ("Sign out this session of
…?") and acts only when that confirmation is sent (`confirmed`), with the CSRF token like every
form; the service that does it audits it."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, status
from fastapi.responses import Response

from gatehouse_web.api import ApiError
from gatehouse_web.web import SignedIn, Viewer, Web, WebDep, client_of

HOME = "/admin"
USERS = "/admin/users"
MULTI_FACTOR_AMR = "mfa"  # RFC 8176: the session's sign-in used more than one factor
# auth-service's refusals of an admin call whose caller lacks the second factor (admins_need_mfa)
NO_FACTOR, FACTOR_NOT_PROVEN = "mfa-enrollment-required", "mfa-sign-in-required"


class AdminRefused(Exception):
    """Not an admin, or an admin whose second factor is missing (`NO_FACTOR`) or was not proven by
    this sign-in (`FACTOR_NOT_PROVEN`): a page saying which, never the console."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


def token_amr(token: str) -> list[str]:
    """The `amr` claim of our own access token (kept sealed in the session cookie, from auth-service
    directly): what this sign-in proved. Read, not verified: the API verifies every call."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return []
    amr = claims.get("amr") if isinstance(claims, dict) else None
    return [str(value) for value in amr] if isinstance(amr, list) else []


async def admin(request: Request, web: WebDep, viewer: SignedIn) -> Viewer:
    """The signed-in admin, with a second factor that this session's sign-in proved."""
    if "admin" not in (viewer.user.get("roles") or []):
        raise AdminRefused
    mfa = await web.api.call("GET", "/auth/mfa", token=viewer.token, caller=client_of(request))
    if not (mfa.get("totp") or mfa.get("passkeys")):
        raise AdminRefused(NO_FACTOR)
    if MULTI_FACTOR_AMR not in token_amr(viewer.token):
        raise AdminRefused(FACTOR_NOT_PROVEN)
    return viewer


Admin = Annotated[Viewer, Depends(admin)]


def install(app: FastAPI, web: Web) -> None:
    """The console's pages, and what a refused visitor sees instead."""

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, AdminRefused)
        _ = web.renderer.gettext_for(request)
        if exc.reason == NO_FACTOR:
            return web.renderer.page(
                request,
                "message.html",
                status.HTTP_403_FORBIDDEN,
                heading=_("Set up a second factor first"),
                paragraphs=[
                    _(
                        "The admin console needs a second factor: an authenticator app or a passkey. "
                        "Set one up, sign out, then sign in with it."
                    )
                ],
                action_url="/account/security",
                action_label=_("Go to security"),
            )
        if exc.reason == FACTOR_NOT_PROVEN:
            return web.renderer.page(
                request,
                "admin_sign_in_again.html",
                status.HTTP_403_FORBIDDEN,
                heading=_("Sign in again with your second factor"),
            )
        return web.renderer.page(
            request,
            "errors/error.html",
            status.HTTP_403_FORBIDDEN,
            heading=_("Administrators only"),
            message=_("This page is for administrators. Your account cannot open it."),
        )

    app.add_exception_handler(AdminRefused, refused)


async def admin_call(
    request: Request, web: Web, viewer: Viewer, method: str, path: str, **kwargs: Any
) -> Any:
    """An admin API call; auth's own second-factor refusals become the console's pages."""
    try:
        return await web.api.call(method, path, token=viewer.token, caller=client_of(request), **kwargs)
    except ApiError as exc:
        if exc.status == status.HTTP_403_FORBIDDEN:
            raise AdminRefused(exc.slug if exc.slug in (NO_FACTOR, FACTOR_NOT_PROVEN) else "") from exc
        raise


def confirm_action(
    request: Request,
    web: Web,
    viewer: Viewer,
    action_url: str,
    back_url: str,
    question: str,
    hidden: dict[str, str] | None = None,
    danger: bool = False,
) -> Response:
    """The console's "are you sure?" page: `question`, and a form that posts `hidden` with
    confirmed=yes to `action_url` (or goes back to `back_url`). Every console action asks first."""
    return web.renderer.page(
        request,
        "admin_confirm.html",
        user=viewer.user,
        action_url=action_url,
        back_url=back_url,
        hidden=hidden or {},
        question=question,
        danger=danger,
    )
