"""What every page handler uses, built once per process (the composition root is main.create_app),
and the typed dependencies that hand it out: the form after its CSRF check, the signed-in person."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request, status
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from gatehouse_platform.clientip import TrustedProxies
from gatehouse_web.api import Api, ApiError, Caller
from gatehouse_web.captcha import BotCheck
from gatehouse_web.rendering import Renderer
from gatehouse_web.security import safe_return_to
from gatehouse_web.session import MFA_PATH, Sessions
from gatehouse_web.settings import Settings

MFA_STEP = MFA_PATH  # the page of the second step of a sign-in
MFA_EXPIRED = "mfa_expired"  # /login?mfa_expired: the pending sign-in is gone, sign in again


@dataclass
class Web:
    settings: Settings
    api: Api
    sessions: Sessions
    renderer: Renderer
    proxies: TrustedProxies  # WEB_TRUSTED_PROXIES: whose X-Forwarded-For names the person
    captcha: BotCheck  # the bot check's widget, when auth-service asks for one

    def return_to(self, value: str | None) -> str:
        return safe_return_to(value, self.settings.allowed_origins)

    def signed_in(self, answer: dict[str, Any], return_to: str) -> Response:
        """After a sign-in call: with tokens, the session cookies and on to `return_to`; with
        `mfa_required`, the token kept (sealed) and on to the second-factor step."""
        if answer.get("mfa_required"):
            response = RedirectResponse(MFA_STEP, status.HTTP_303_SEE_OTHER)
            self.sessions.await_second_factor(response, answer, return_to)
            return response
        response = RedirectResponse(return_to, status.HTTP_303_SEE_OTHER)
        self.sessions.sign_in(response, answer)
        return response


def get_web(request: Request) -> Web:
    web: Web = request.app.state.web
    return web


WebDep = Annotated[Web, Depends(get_web)]


class CsrfRefused(Exception):
    """A state-changing form arrived without a valid CSRF token (a 403 page)."""


class SignInNeeded(Exception):
    """No usable access token: the browser goes through the quiet refresh, else to /login."""


async def checked_form(request: Request, web: WebDep) -> FormData:
    form = await request.form(max_files=0, max_fields=50, max_part_size=64 * 1024)
    token = form.get("csrf_token")
    if not web.sessions.csrf_valid(request, token if isinstance(token, str) else None):
        raise CsrfRefused
    return form


Form = Annotated[FormData, Depends(checked_form)]


@dataclass
class Viewer:
    """The signed-in person: their access token (server-side only) and their account."""

    token: str
    user: dict[str, Any]


async def signed_in(request: Request, web: WebDep) -> Viewer:
    access = web.sessions.access_token(request)
    if access is None:
        raise SignInNeeded
    try:
        user = await web.api.call("GET", "/auth/me", token=access.token, caller=client_of(request))
    except ApiError as exc:
        if exc.status in (401, 403):
            raise SignInNeeded from exc
        raise
    profile = user.get("profile") or {}
    request.state.locale = web.renderer.locale_for(request, profile.get("locale"))
    return Viewer(access.token, user)


SignedIn = Annotated[Viewer, Depends(signed_in)]


def client_of(request: Request) -> Caller:
    """What the API should know of the browser behind this call: its address and request id."""
    web: Web = request.app.state.web
    return Caller(
        ip=web.proxies.client_of(request).ip if request.client is not None else None,
        request_id=request.headers.get("x-request-id") or None,
        user_agent=(request.headers.get("user-agent") or "")[:400] or None,
    )


def app_code(form: FormData, name: str = "code") -> str:
    """A code from an authenticator app as typed (spaces dropped): check it with `is_app_code`."""
    return field(form, name, 20).replace(" ", "")


def is_app_code(value: str) -> bool:
    """Six digits, as every authenticator app shows: anything else is refused before the API."""
    return len(value) == 6 and value.isdigit()


def field(form: FormData, name: str, limit: int = 1000) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def explain(
    error: ApiError, gettext: Callable[..., str], fields: Mapping[str, str] | None = None
) -> tuple[dict[str, str], str | None]:
    """A failed call as messages for a form: field errors (the API's 422 `errors`, renamed to the
    form's field names by `fields`) and one alert for what belongs to no field."""
    if error.status == 429:
        seconds = error.retry_after or 60
        return {}, gettext(
            "Too many attempts. Please wait %(seconds)s seconds, then try again.", seconds=seconds
        )
    fields = fields or {}
    if error.status == 422 and error.errors:
        on_fields = {
            fields.get(name, name): message for name, message in error.errors.items() if name in fields
        }
        rest = [message for name, message in error.errors.items() if name not in fields]
        return on_fields, " ".join(rest) or None
    return {}, error.detail or error.title or gettext("Something went wrong. Please try again.")
