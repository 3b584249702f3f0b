"""The signed-in person's own pages."""

from __future__ import annotations

from datetime import datetime

from babel.dates import format_date
from fastapi import APIRouter, Request, status
from fastapi.responses import Response

from gatehouse_web.api import ApiError
from gatehouse_web.web import Form, SignedIn, WebDep, client_of, explain

router = APIRouter(include_in_schema=False)


def _account(
    request: Request, web: WebDep, viewer: SignedIn, status_code: int = 200, **context: object
) -> Response:
    locale = getattr(request.state, "locale", "en")
    created = datetime.fromisoformat(str(viewer.user["created_at"]))
    return web.renderer.page(
        request,
        "account.html",
        status_code,
        user=viewer.user,
        member_since=format_date(created, format="long", locale=locale),
        **context,
    )


@router.get("/account")
async def account(request: Request, web: WebDep, viewer: SignedIn) -> Response:
    return _account(request, web, viewer)


@router.post("/account/resend-verification")
async def resend_verification(request: Request, web: WebDep, form: Form, viewer: SignedIn) -> Response:
    _ = web.renderer.gettext_for(request)
    try:
        await web.api.call("POST", "/auth/request/verify", token=viewer.token, caller=client_of(request))
    except ApiError as exc:
        if exc.slug == "already-verified":
            return _account(request, web, viewer, notice=_("Your email address is already confirmed."))
        _errors, alert = explain(exc, _)
        return _account(request, web, viewer, status.HTTP_400_BAD_REQUEST, alert=alert)
    return _account(
        request,
        web,
        viewer,
        notice=_("We have sent the email again to %(email)s.", email=viewer.user["email"]),
    )
